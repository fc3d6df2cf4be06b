"""The dispatch rule of penalties: a volunteer under a suspension (or removed) is not dispatched or matched.

orders.actions.check_volunteer_for and orders.matching.eligible_volunteers each make one call here.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.evaluation.models import BLOCKING_KINDS, Penalty
from timebank.lib.errors import Conflict
from timebank.members.models import Member


def blocking_penalties(today: dt.date | None = None) -> QuerySet[Penalty]:
    today = today or timezone.localdate()
    return Penalty.objects.filter(
        Q(ends_on__isnull=True) | Q(ends_on__gte=today),
        kind__in=BLOCKING_KINDS,
        lifted_at__isnull=True,
        starts_on__lte=today,
    )


def is_dispatch_blocked(member_id: int, today: dt.date | None = None) -> bool:
    return blocking_penalties(today).filter(member_id=member_id).exists()


def check_dispatchable(volunteer: Member, today: dt.date | None = None) -> None:
    """409 `volunteer_suspended` while a suspension or removal is in force."""
    penalty = blocking_penalties(today).filter(member_id=volunteer.pk).order_by("ends_on").first()
    if penalty is not None:
        raise Conflict(
            _("该志愿者正被暂停派单，解除前不能派单或接单。"),
            code="volunteer_suspended",
            fields={
                "penalty_id": penalty.pk,
                "kind": penalty.kind,
                "ends_on": penalty.ends_on.isoformat() if penalty.ends_on else None,
            },
        )


def exclude_blocked(qs: QuerySet[Member], today: dt.date | None = None) -> QuerySet[Member]:
    """Matching's queryset without volunteers under a suspension (a NOT EXISTS probe per row)."""
    return qs.filter(~Exists(blocking_penalties(today).filter(member_id=OuterRef("pk"))))
