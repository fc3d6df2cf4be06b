"""Subscriptions to other apps' events. The service loop calls these after its transaction commits."""

from __future__ import annotations

import logging

from timebank.notify.actions import do_notify_order
from timebank.orders.actions import after_transition
from timebank.orders.models import Order

logger = logging.getLogger(__name__)


def on_order_transition(order: Order, action: str) -> None:
    # The order has committed; a notification problem must never surface as an error to its caller.
    try:
        do_notify_order(order, action)
    except Exception:
        logger.exception("queueing notifications for order %s (%s) failed", order.pk, action)


if on_order_transition not in after_transition:
    after_transition.append(on_order_transition)
