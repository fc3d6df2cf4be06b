"""What the service loop tells other apps. Subscribers register in their `AppConfig.ready()`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from timebank.members.models import Member
from timebank.orders.models import Order


@dataclass(frozen=True)
class OrderTransitioned:
    """An order moved (`action` is the transition's name: "create", "accept", "check-out"...).

    Published inside the transition's transaction, after the order is written. Subscribers answer audit
    `Note`s, appended with the order's own entry under one lock of the bank's chain (the notify app answers
    the note of the messages it queued)."""

    order: Order
    action: str


@dataclass(frozen=True)
class VolunteerVetted:
    """A volunteer is about to be dispatched to an order, accept one, or be credited for a service (the
    dispatch rules, `check_volunteer_eligible`), on `today`. An app with a rule that bars them raises its
    Conflict (evaluation: 409 `volunteer_suspended` while a suspension from dispatch is in force). A question
    rather than news: nothing is written; subscribers answer nothing."""

    volunteer: Member
    today: dt.date


@dataclass(frozen=True)
class VolunteersMatched:
    """Matching builds its pool of volunteers for `today` (the same rules as `VolunteerVetted`, as a query).
    Subscribers answer the filter expressions their rule keeps (evaluation: nobody under a suspension, a
    NOT EXISTS probe per row), ANDed into the pool's queryset."""

    today: dt.date
