"""刚性兑付 (the guarantee): under a head office's `guarantee_after_days`, an order paid from stored time that
finds no volunteer within that many days is served by buying the service from the emergency fund, exactly as
staff do by hand (`do_buy_market_service`, `POST /orders/{id}/buy-service`): the recipient's minutes are redeemed,
`guarantee_yuan_per_hour` x the planned time is paid to `guarantee_provider` from the emergency fund of the order's
org, or of the first org above it whose fund has enough. Run by a scheduled job (`manage.py guarantee_orders`, or
the django-tasks task `timebank.funds.tasks.guarantee_orders`); an order served is confirmed, so a second run (or
two at once: the action locks the order and checks its state) never buys it twice.

An order is due once it has waited N days (made N days ago or earlier) in a state `buy-service` may leave (the
transition table's, orders.rules: still requested, no volunteer on it).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from timebank.funds.actions import do_buy_market_service
from timebank.funds.money import CENT
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.orders.models import Order, Payer
from timebank.orders.rules import TRANSITIONS
from timebank.orgs.models import Org, Rules

logger = logging.getLogger(__name__)


def guarantee_amount(rules: Rules, order: Order) -> Decimal:
    """What the provider is paid: the rules' price per hour for the order's planned time, to the fen."""
    assert rules.guarantee_yuan_per_hour is not None
    return (Decimal(rules.guarantee_yuan_per_hour) * order.planned_minutes / 60).quantize(CENT, ROUND_HALF_UP)


def due_orders(rules: Rules, now: dt.datetime) -> list[Order]:
    """The bank's orders paid from stored time still waiting for a volunteer after `guarantee_after_days`."""
    if rules.guarantee_after_days is None:
        return []
    qs = Order.objects.filter(
        bank_id=rules.head_office_id,
        payer=Payer.RECIPIENT,
        state__in=TRANSITIONS["buy-service"].sources,
        created_at__lte=now - dt.timedelta(days=rules.guarantee_after_days),
    ).select_related("org")
    return list(qs.order_by("created_at", "pk"))


def _funds_upwards(org: Org) -> list[Org]:
    """The order's org, then each org above it up to the head office."""
    chain = [org]
    while chain[-1].parent_id is not None:
        chain.append(Org.objects.get(pk=chain[-1].parent_id))
    return chain


@dataclass
class GuaranteeReport:
    served: list[int] = field(default_factory=list)  # order ids bought by this run
    refused: dict[int, str] = field(default_factory=dict)  # order id -> the action's refusal code


def run_guarantee(now: dt.datetime | None = None, *, bank_id: int | None = None) -> GuaranteeReport:
    now = now or clock.now()
    report = GuaranteeReport()
    banks = Rules.objects.filter(guarantee_after_days__isnull=False)
    if bank_id is not None:
        banks = banks.filter(head_office_id=bank_id)
    for rules in banks.order_by("head_office_id"):
        days = rules.guarantee_after_days
        for order in due_orders(rules, now):
            code = ""
            for fund_org in _funds_upwards(order.org):
                try:
                    do_buy_market_service(
                        None,
                        order,
                        fund_org=fund_org,
                        provider=rules.guarantee_provider,
                        amount=guarantee_amount(rules, order),
                        note=f"刚性兑付：{days} 天无人接单",
                        unfillable=True,
                    )
                except ApiError as exc:
                    code = exc.code or "refused"
                    if code == "insufficient_fund":
                        continue  # try the emergency fund of the org above
                    break
                else:
                    report.served.append(order.pk)
                    code = ""
                    break
            if code:
                # Left for staff: the workbench still lists it as overdue, and they may buy it by hand.
                logger.warning("guarantee: order %s not bought (%s)", order.pk, code)
                report.refused[order.pk] = code
    return report
