"""The dispatch rule of penalties: a volunteer under a suspension (or removed) is not dispatched or matched.

The orders ask through their events (timebank.orders.events), answered in `timebank.evaluation.subscribers`:
`VolunteerVetted` (orders.actions.check_volunteer_eligible) is `check_dispatchable`, `VolunteersMatched`
(orders.matching.eligible_volunteers) is `not_blocked`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.evaluation.models import Penalty
from timebank.lib import clock
from timebank.lib.errors import Conflict
from timebank.members.models import Member


def blocking_penalties(today: dt.date | None = None) -> QuerySet[Penalty]:
    return Penalty.objects.in_force(today or clock.localdate())


def is_dispatch_blocked(member_id: int, today: dt.date | None = None) -> bool:
    return blocking_penalties(today).filter(member_id=member_id).exists()


def check_dispatchable(volunteer: Member, today: dt.date | None = None) -> None:
    """409 `volunteer_suspended` while a suspension or removal is in force."""
    # Only the fields the answer names: ordered, the query's CPU grows with its columns.
    penalty = (
        blocking_penalties(today)
        .filter(member_id=volunteer.pk)
        .only("pk", "kind", "ends_on")
        .order_by("ends_on")
        .first()
    )
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


def not_blocked(today: dt.date | None = None) -> Any:
    """A filter on members: nobody under a suspension (a NOT EXISTS probe per row)."""
    return ~Exists(blocking_penalties(today).filter(member_id=OuterRef("pk")))
