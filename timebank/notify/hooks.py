"""Subscriptions to other apps' events, registered from NotifyConfig.ready()."""

from __future__ import annotations

import logging

from timebank.audit.actions import Note
from timebank.lib.events import subscribe
from timebank.notify.actions import do_notify_order, notifies
from timebank.orders.events import OrderTransitioned

logger = logging.getLogger(__name__)


@subscribe(OrderTransitioned)
def on_order_transition(event: OrderTransitioned) -> list[Note]:
    """Queue the transition's notifications; answer their audit note for the order's chain lock.

    A notification problem must never fail the order's action: `do_notify_order` is atomic, so inside the
    transition it runs in a savepoint, and a failure undoes only the notifications."""
    order, action = event.order, event.action
    if not notifies(order, action):
        return []  # no savepoint for nothing
    notes: list[Note] = []
    try:
        do_notify_order(order, action, notes=notes)
    except Exception:
        logger.exception("queueing notifications for order %s (%s) failed", order.pk, action)
        return []
    return notes
