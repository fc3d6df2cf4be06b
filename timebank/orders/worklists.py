"""The workbench's named lists of orders, each filter written once: the staff home counts it and its counter links
to the orders list filtered by the same name (`/staff/orders/?state=<name>`), so the number shown is the number
of orders listed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from timebank.orders.models import OrderQuerySet, OrderState


@dataclass(frozen=True)
class Worklist:
    label: Any
    pick: Callable[[OrderQuerySet], OrderQuerySet]


# In the order the counters are shown on the staff home.
WORKLISTS: dict[str, Worklist] = {
    "overdue": Worklist(_("超时未派的订单"), lambda qs: qs.overdue()),
    "urgent": Worklist(_("紧急订单"), lambda qs: qs.open().filter(urgent=True)),
    "requested": Worklist(_("等待派单"), lambda qs: qs.filter(state=OrderState.REQUESTED)),
    "completed": Worklist(_("等待确认"), lambda qs: qs.filter(state=OrderState.COMPLETED)),
    "disputed": Worklist(_("有争议"), lambda qs: qs.filter(state=OrderState.DISPUTED)),
}


def counters(orders: OrderQuerySet) -> list[dict[str, Any]]:
    """Each named list with its label and how many of `orders` it holds."""
    return [{"name": name, "label": w.label, "count": w.pick(orders).count()} for name, w in WORKLISTS.items()]


def pick(orders: OrderQuerySet, name: str) -> OrderQuerySet:
    """The orders of the named list; `open` is every order not yet credited nor cancelled, any other name a state."""
    if name in WORKLISTS:
        return WORKLISTS[name].pick(orders)
    if name == "open":
        return orders.open()
    return orders.filter(state=name) if name else orders
