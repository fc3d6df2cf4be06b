"""Subscriptions to other apps' events. The service loop calls these inside its transition's transaction."""

from __future__ import annotations

import logging

from timebank.audit.actions import Note
from timebank.notify.actions import do_notify_order, notifies
from timebank.orders.actions import transition_hooks
from timebank.orders.models import Order

logger = logging.getLogger(__name__)


def on_order_transition(order: Order, action: str) -> list[Note]:
    """Queue the transition's notifications; answer their audit note for the order's chain lock.

    A notification problem must never fail the order's action: `do_notify_order` is atomic, so inside the
    transition it runs in a savepoint, and a failure undoes only the notifications."""
    if not notifies(order, action):
        return []  # no savepoint for nothing
    notes: list[Note] = []
    try:
        do_notify_order(order, action, notes=notes)
    except Exception:
        logger.exception("queueing notifications for order %s (%s) failed", order.pk, action)
        return []
    return notes


if on_order_transition not in transition_hooks:
    transition_hooks.append(on_order_transition)
