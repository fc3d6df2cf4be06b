"""Finding a member by name or phone on a staff form (a service record's volunteer, an adjustment's member)."""

from __future__ import annotations

from django.db.models import Q

from timebank.members.access import visible_members
from timebank.members.models import Member
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, User

SHOWN = 20  # enough to pick from; a longer list asks for more of the name or phone


def find_members(user: User, q: str, *, volunteers: bool = False) -> list[Member]:
    """Members whose name or phone holds `q` that the caller manages (staff and admins of their home subtree),
    at most SHOWN; volunteers only when `volunteers`. Anonymised members are never offered."""
    q = q.strip()
    if not q:
        return []
    qs = (
        visible_members(user)
        .filter(Q(name__contains=q) | Q(phone__contains=q), anonymised_at__isnull=True)
        .select_related("home_org")
        .order_by("name", "pk")
    )
    if volunteers:
        qs = qs.filter(is_volunteer=True)
    return [m for m in qs[: SHOWN * 2] if has_role(user, MANAGING_ROLES, m.home_org)][:SHOWN]
