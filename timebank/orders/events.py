"""What the service loop tells other apps. Subscribers register in their `AppConfig.ready()`."""

from __future__ import annotations

from dataclasses import dataclass

from timebank.orders.models import Order


@dataclass(frozen=True)
class OrderTransitioned:
    """An order moved (`action` is the transition's name: "create", "accept", "check-out"...).

    Published inside the transition's transaction, after the order is written. Subscribers answer audit
    `Note`s, appended with the order's own entry under one lock of the bank's chain (the notify app answers
    the note of the messages it queued)."""

    order: Order
    action: str
