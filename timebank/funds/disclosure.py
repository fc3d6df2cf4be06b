"""公示: an org's money and service totals for a period, for anyone to read.

Only totals leave this module, plus the names of donating enterprises. No person's name, phone or
ID number is ever read here: the queries below select amounts, categories, org names and counts only."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils.translation import gettext_lazy as _

from timebank.funds.actions import EARLIEST
from timebank.funds.models import Direction, ExpenseKind, Fund, FundEntry, Source
from timebank.funds.money import ZERO, yuan
from timebank.lib import clock
from timebank.lib.errors import Invalid
from timebank.orders.models import Order, ServiceRecord
from timebank.orgs.models import Org

LATEST = dt.date(2100, 12, 31)


@dataclass(frozen=True)
class Period:
    """Inclusive dates in the bank's time zone; None means open-ended."""

    start: dt.date | None = None
    end: dt.date | None = None

    def start_at(self) -> dt.datetime | None:
        return clock.day_bounds(self.start, self.end)[0]

    def end_before(self) -> dt.datetime | None:
        return clock.day_bounds(self.start, self.end)[1]


def check_period(start: dt.date | None, end: dt.date | None) -> Period:
    for day, field in ((start, "from"), (end, "to")):
        if day is not None and not EARLIEST <= day <= LATEST:
            raise Invalid(_("日期应在 1990 年到 2100 年之间。"), fields={field: "out_of_range"})
    if start is not None and end is not None and start > end:
        raise Invalid(_("开始日期不能晚于结束日期。"), fields={"from": "after_to"})
    return Period(start, end)


def _in_period(field: str, period: Period) -> Q:
    q = Q()
    if period.start is not None:
        q &= Q(**{f"{field}__gte": period.start})
    if period.end is not None:
        q &= Q(**{f"{field}__lte": period.end})
    return q


def _at_in_period(field: str, period: Period) -> Q:
    q = Q()
    if (start := period.start_at()) is not None:
        q &= Q(**{f"{field}__gte": start})
    if (end := period.end_before()) is not None:
        q &= Q(**{f"{field}__lt": end})
    return q


@dataclass
class Flows:
    """Money in and out: income split cash / in kind; the balance counts cash only (goods are not money)."""

    cash_in: Decimal = ZERO
    in_kind: Decimal = ZERO
    out: Decimal = ZERO

    def add(self, direction: str, in_kind: bool, amount: Decimal) -> None:
        if direction == Direction.EXPENSE:
            self.out += amount
        elif in_kind:
            self.in_kind += amount
        else:
            self.cash_in += amount

    @property
    def net(self) -> Decimal:
        return self.cash_in - self.out


def _child_of(path: str, children: list[Org]) -> Org | None:
    return next((c for c in children if path.startswith(c.path)), None)


def fund_report(org: Org, period: Period) -> dict[str, Any]:
    """Totals of the org's subtree. Summed in Python from one query: Decimal stays exact on SQLite too."""
    subtree = FundEntry.objects.filter(org__path__startswith=org.path)
    rows = subtree.filter(_in_period("occurred_on", period)).values_list(
        "direction", "source", "kind", "fund", "in_kind", "amount", "org__path", "donor_name"
    )
    children = list(Org.objects.filter(parent=org).order_by("path"))
    by_source: dict[str, Flows] = defaultdict(Flows)
    by_kind: dict[str, Decimal] = defaultdict(lambda: ZERO)
    by_fund: dict[str, Flows] = defaultdict(Flows)
    by_child: dict[int, Flows] = defaultdict(Flows)
    donors: dict[str, Decimal] = defaultdict(lambda: ZERO)
    total = Flows()
    entries = 0
    for direction, source, kind, fund, in_kind, amount, path, donor in rows.iterator():
        entries += 1
        total.add(direction, in_kind, amount)
        by_fund[fund].add(direction, in_kind, amount)
        if direction == Direction.INCOME:
            by_source[source].add(direction, in_kind, amount)
            if source == Source.ENTERPRISE and donor:
                donors[donor] += amount
        else:
            by_kind[kind] += amount
        child = _child_of(path, children)
        if child is not None:
            by_child[child.pk].add(direction, in_kind, amount)
    opening = Flows()
    if period.start is not None:
        for direction, in_kind, amount in subtree.filter(occurred_on__lt=period.start).values_list(
            "direction", "in_kind", "amount"
        ):
            opening.add(direction, in_kind, amount)
    return {
        "entries": entries,
        "income": {
            "by_source": [
                {
                    "source": s.value,
                    "label": str(s.label),
                    "cash": by_source[s].cash_in,
                    "in_kind": by_source[s].in_kind,
                    "total": by_source[s].cash_in + by_source[s].in_kind,
                }
                for s in Source
            ],
            "cash": total.cash_in,
            "in_kind": total.in_kind,
            "total": total.cash_in + total.in_kind,
        },
        "expense": {
            "by_kind": [{"kind": k.value, "label": str(k.label), "amount": by_kind[k]} for k in ExpenseKind],
            "total": total.out,
        },
        "opening_balance": opening.net,
        "net": total.net,
        "closing_balance": opening.net + total.net,
        "funds": [
            {
                "fund": f.value,
                "label": str(f.label),
                "income": by_fund[f].cash_in,
                "in_kind": by_fund[f].in_kind,
                "expense": by_fund[f].out,
                "net": by_fund[f].net,
            }
            for f in Fund
        ],
        # Largest first; ties by name so the page and the PDF list them in the same order.
        "donors": [
            {"name": name, "amount": amount}
            for name, amount in sorted(donors.items(), key=lambda d: (-d[1], d[0]))
            if amount > 0
        ],
        "children": [
            {
                "org_id": c.pk,
                "name": c.name,
                "kind": c.kind,
                "income": by_child[c.pk].cash_in + by_child[c.pk].in_kind,
                "expense": by_child[c.pk].out,
                "net": by_child[c.pk].net,
            }
            for c in children
        ],
    }


def service_report(org: Org, period: Period) -> dict[str, Any]:
    """Orders confirmed in the period (by the recipient's org when ordered) and service records (by the
    volunteer's org when posted, dated by when the service was done)."""
    orders = (
        Order.objects.credited()
        .filter(_at_in_period("confirmed_at", period), org__path__startswith=org.path)
        .aggregate(
            n=Count("pk"),
            minutes=Sum("actual_minutes"),
            credited=Sum("credited_minutes"),
            bought=Count("pk", filter=Q(volunteer__isnull=True)),
        )
    )
    records = ServiceRecord.objects.filter(
        _at_in_period("served_at", period), org__path__startswith=org.path
    ).aggregate(n=Count("pk"), minutes=Sum("minutes"), credited=Sum("credited_minutes"))
    order_minutes = orders["minutes"] or 0
    record_minutes = records["minutes"] or 0
    return {
        "orders_completed": orders["n"],
        "orders_bought_by_fund": orders["bought"],
        "order_minutes": order_minutes,
        "service_records": records["n"],
        "service_record_minutes": record_minutes,
        "service_minutes": order_minutes + record_minutes,
        "credited_minutes": (orders["credited"] or 0) + (records["credited"] or 0),
    }


def disclose(org: Org, period: Period) -> dict[str, Any]:
    bank = org.head_office or org
    return {
        "org": {"id": org.pk, "name": org.name, "kind": org.kind, "kind_label": str(org.get_kind_display())},
        "bank": {"id": bank.pk, "name": bank.name},
        "from": period.start,
        "to": period.end,
        "currency": "CNY",
        **fund_report(org, period),
        "services": service_report(org, period),
        "generated_at": clock.now(),
    }


@dataclass(frozen=True)
class Bar:
    label: str
    amount: Decimal
    group: str  # "income" or "expense"
    share: float  # of the largest bar, 0..1: drawing only, never money


def chart_bars(report: dict[str, Any]) -> list[Bar]:
    """The bars of the chart: income by source (cash and in kind), then expenses by kind."""
    rows = [(str(s["label"]), s["total"], "income") for s in report["income"]["by_source"]]
    rows += [(str(k["label"]), k["amount"], "expense") for k in report["expense"]["by_kind"]]
    top = max((max(amount, ZERO) for _label, amount, _group in rows), default=ZERO)
    return [
        Bar(label, amount, group, float(max(amount, ZERO) / top) if top > 0 else 0.0) for label, amount, group in rows
    ]


def hours_text(minutes: int) -> str:
    """Service time in hours with one decimal (1 time credit = 1 hour)."""
    return f"{(Decimal(minutes) / 60).quantize(Decimal('0.1')):f}"


def as_text(value: Any) -> Any:
    """Decimals become fixed two-place strings ("0.30"), all the way down."""
    if isinstance(value, Decimal):
        return yuan(value)
    if isinstance(value, dict):
        return {k: as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_text(v) for v in value]
    return value
