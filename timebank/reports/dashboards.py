"""What the dashboards show, as plain data: each chart's series and the table that says the same in words.

Head office and branch: activity per month, orders by category and tier, time from order to service done,
overdue and unfilled orders, the sub-orgs side by side, and the volunteers who served most.
Sub-branch: today's orders, overdue orders, needs nobody has ordered a service for yet, and insurance and
certificates that end soon.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils.translation import gettext as _

from timebank.catalogue.models import Category, Tier
from timebank.ledger.models import MEMBER_BUCKETS, Account
from timebank.lib import clock
from timebank.members.models import Member, MemberStatus
from timebank.needs.models import OPEN_STATUSES, Need
from timebank.orders.models import Order, OrderState, overdue_q
from timebank.orgs.models import Org, OrgKind
from timebank.reports.risk import months_before
from timebank.reports.stats import confirmed_orders, posted_records
from timebank.safety import lists

MAX_MONTHS = 36
TOP_VOLUNTEERS = 10
LIST_ROWS = 20
SOON_DAYS = 30


@dataclass
class Chart:
    """One chart: `kind` line | bar | pie; `labels` along the axis; `series` [{"name", "data"}]."""

    id: str
    title: str
    kind: str
    labels: list[str]
    series: list[dict[str, Any]]
    unit: str = ""
    stacked: bool = False

    def spec(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "labels": self.labels,
            "series": self.series,
            "unit": self.unit,
            "stacked": self.stacked,
        }

    @property
    def data_id(self) -> str:
        return f"{self.id}-data"

    def rows(self) -> list[tuple[str, list[Any]]]:
        """The same numbers as a table: one row per label, one column per series."""
        return [(label, [s["data"][i] for s in self.series]) for i, label in enumerate(self.labels)]


def hours(minutes: int | None) -> float:
    return round((minutes or 0) / 60, 1)


def in_scope(org: Org, prefix: str = "", via: str = "org") -> Q:
    """Rows of the subtree: a head office's by bank id (indexed, no join), lower orgs by path prefix."""
    if org.kind == OrgKind.HEAD_OFFICE:
        return Q(**{f"{prefix}bank_id": org.pk})
    return Q(**{f"{prefix}{via}__path__startswith": org.path})


def month_starts(date_from: dt.date, date_to: dt.date) -> list[dt.date]:
    first, last = date_from.replace(day=1), date_to.replace(day=1)
    found: list[dt.date] = []
    while first <= last and len(found) < MAX_MONTHS:
        found.append(first)
        first = months_before(first, -1)
    return found


def _bounds(starts: list[dt.date], date_from: dt.date, date_to: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
    spans = []
    for i, month in enumerate(starts):
        lo = max(month, date_from)
        hi = min(months_before(month, -1), date_to + dt.timedelta(days=1))
        if i == len(starts) - 1:
            hi = date_to + dt.timedelta(days=1)
        spans.append((clock.start_of_day(lo), clock.start_of_day(hi)))
    return spans


def activity(org: Org, date_from: dt.date, date_to: dt.date) -> tuple[Chart, Chart]:
    """Per month: services completed (orders confirmed + service records) and credited hours."""
    starts = month_starts(date_from, date_to)
    spans = _bounds(starts, date_from, date_to)
    start, end = clock.day_bounds(date_from, date_to)

    def per_month(qs: QuerySet[Any], when: str, minutes: str) -> dict[str, Any]:
        aggregates: dict[str, Any] = {}
        for i, (lo, hi) in enumerate(spans):
            span = Q(**{f"{when}__gte": lo, f"{when}__lt": hi})
            aggregates[f"n{i}"] = Count("pk", filter=span)
            aggregates[f"m{i}"] = Sum(minutes, filter=span)
        return qs.aggregate(**aggregates) if aggregates else {}

    o = per_month(confirmed_orders(org, start, end), "confirmed_at", "credited_minutes")
    r = per_month(posted_records(org, start, end), "transaction__created_at", "credited_minutes")
    labels = [m.strftime("%Y-%m") for m in starts]
    orders = [int(o[f"n{i}"] or 0) for i in range(len(starts))]
    records = [int(r[f"n{i}"] or 0) for i in range(len(starts))]
    credited = [hours(int(o[f"m{i}"] or 0) + int(r[f"m{i}"] or 0)) for i in range(len(starts))]
    services = Chart(
        "chart-activity",
        _("每月完成的服务"),
        "bar",
        labels,
        [{"name": _("订单"), "data": orders}, {"name": _("服务记录"), "data": records}],
        unit=_("次"),
        stacked=True,
    )
    time = Chart("chart-hours", _("每月记入的服务时间"), "line", labels, [{"name": _("小时"), "data": credited}])
    time.unit = _("小时")
    return services, time


def by_category(org: Org, date_from: dt.date, date_to: dt.date) -> Chart:
    """Orders made in the period, by category and tier (stacked)."""
    start, end = clock.day_bounds(date_from, date_to)
    rows = (
        Order.objects.filter(in_scope(org), created_at__gte=start, created_at__lt=end)
        .values("service_item__category", "service_item__tier")
        .annotate(n=Count("pk"))
    )
    counts: dict[tuple[str, str], int] = {(r["service_item__category"], r["service_item__tier"]): r["n"] for r in rows}
    categories = [c for c in Category if any(k[0] == c for k in counts)]
    series = [
        {"name": str(tier.label), "data": [counts.get((c.value, tier.value), 0) for c in categories]} for tier in Tier
    ]
    return Chart(
        "chart-categories",
        _("各类服务的订单（按等级）"),
        "bar",
        [str(c.label) for c in categories],
        series,
        unit=_("单"),
        stacked=True,
    )


FULFILMENT_BUCKETS: tuple[tuple[int, int | None], ...] = ((0, 1), (1, 3), (3, 7), (7, None))


def fulfilment(org: Org, date_from: dt.date, date_to: dt.date) -> Chart:
    """Orders whose service ended in the period, by days from the order to the volunteer checking out."""
    start, end = clock.day_bounds(date_from, date_to)
    qs = Order.objects.filter(in_scope(org), check_out_at__gte=start, check_out_at__lt=end)
    aggregates: dict[str, Any] = {}
    labels: list[str] = []
    for i, (lo, hi) in enumerate(FULFILMENT_BUCKETS):
        q = Q(check_out_at__gte=F("created_at") + dt.timedelta(days=lo)) if lo else Q()
        if hi is not None:
            q &= Q(check_out_at__lt=F("created_at") + dt.timedelta(days=hi))
        aggregates[f"b{i}"] = Count("pk", filter=q)
        labels.append(_("%(lo)s–%(hi)s 天") % {"lo": lo, "hi": hi} if hi else _("%(lo)s 天以上") % {"lo": lo})
    got = qs.aggregate(**aggregates)
    data = [int(got[f"b{i}"] or 0) for i in range(len(FULFILMENT_BUCKETS))]
    return Chart("chart-fulfilment", _("从下单到服务完成用了多久"), "bar", labels, [{"name": _("订单"), "data": data}])


def unfilled(org: Org, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
    """Orders waiting past the dispatch time now, and orders of the period no volunteer was dispatched to."""
    start, end = clock.day_bounds(date_from, date_to)
    late = overdue_q(bank_id=org.bank_pk)
    never = Q(dispatched_at__isnull=True) & (Q(state=OrderState.CANCELLED) | late)
    made = Order.objects.filter(in_scope(org), created_at__gte=start, created_at__lt=end).aggregate(
        n=Count("pk"), u=Count("pk", filter=never)
    )
    open_now = Order.objects.filter(in_scope(org), state=OrderState.REQUESTED).aggregate(
        waiting=Count("pk"), overdue=Count("pk", filter=late)
    )
    n, u = int(made["n"]), int(made["u"])
    return {
        "orders": n,
        "unfilled": u,
        "percent": round(u * 100 / n, 1) if n else None,
        "waiting": int(open_now["waiting"]),
        "overdue": int(open_now["overdue"]),
    }


@dataclass
class SubOrg:
    org: Org
    members: int = 0
    volunteers: int = 0
    services: int = 0
    credited_minutes: int = 0
    overdue: int = 0
    outstanding_minutes: int = 0

    @property
    def credited_hours(self) -> float:
        return hours(self.credited_minutes)

    @property
    def outstanding_hours(self) -> float:
        return hours(self.outstanding_minutes)


def sub_orgs(org: Org, date_from: dt.date, date_to: dt.date) -> list[SubOrg]:
    """The org's direct children side by side (a sub-branch without children: its outlets are not shown).
    Each measure is one query grouped by org, rolled up to the child whose subtree holds it."""
    children = list(org.children.exclude(kind=OrgKind.OUTLET).order_by("name"))
    if not children:
        return []
    rows = {c.pk: SubOrg(c) for c in children}
    owner: dict[int, int] = {}
    for o in Org.objects.filter(path__startswith=org.path).only("pk", "path"):
        for c in children:
            if o.path.startswith(c.path):
                owner[o.pk] = c.pk
                break
    start, end = clock.day_bounds(date_from, date_to)

    def add(qs: QuerySet[Any], key: str, fill: Callable[[SubOrg, dict[str, Any]], None]) -> None:
        for r in qs:
            child = owner.get(r[key])
            if child is not None:
                fill(rows[child], r)

    def people(s: SubOrg, r: dict[str, Any]) -> None:
        s.members += r["n"]
        s.volunteers += r["v"]

    members = Member.objects.filter(in_scope(org, via="home_org"), status=MemberStatus.ACTIVE)
    add(
        members.values("home_org_id").annotate(n=Count("pk"), v=Count("pk", filter=Q(is_volunteer=True))),
        "home_org_id",
        people,
    )

    def served(s: SubOrg, r: dict[str, Any]) -> None:
        s.services += r["n"]
        s.credited_minutes += int(r["m"] or 0)

    add(
        confirmed_orders(org, start, end).values("org_id").annotate(n=Count("pk"), m=Sum("credited_minutes")),
        "org_id",
        served,
    )
    add(
        posted_records(org, start, end).values("org_id").annotate(n=Count("pk"), m=Sum("credited_minutes")),
        "org_id",
        served,
    )
    add(
        Order.objects.filter(in_scope(org), overdue_q(bank_id=org.bank_pk)).values("org_id").annotate(n=Count("pk")),
        "org_id",
        lambda s, r: setattr(s, "overdue", s.overdue + r["n"]),
    )
    add(
        Account.objects.filter(in_scope(org, "member__", via="home_org"), kind__in=MEMBER_BUCKETS)
        .values("member__home_org_id")
        .annotate(m=Sum("balance_minutes")),
        "member__home_org_id",
        lambda s, r: setattr(s, "outstanding_minutes", s.outstanding_minutes + int(r["m"] or 0)),
    )
    return [rows[c.pk] for c in children]


def sub_org_chart(subs: list[SubOrg]) -> Chart:
    return Chart(
        "chart-suborgs",
        _("下级机构完成的服务"),
        "bar",
        [s.org.name for s in subs],
        [{"name": _("服务次数"), "data": [s.services for s in subs]}],
        unit=_("次"),
    )


@dataclass
class TopVolunteer:
    member: Member
    credited_minutes: int
    services: int
    star_level: int | None = None
    name: str = ""

    @property
    def credited_hours(self) -> float:
        return hours(self.credited_minutes)


def star_level_function() -> Callable[[int, list[int]], dict[int, Any]] | None:
    """The evaluation app's star levels for several volunteers of one bank, if that app is installed (it is
    written alongside this one)."""
    if importlib.util.find_spec("timebank.evaluation") is None:
        return None
    if importlib.util.find_spec("timebank.evaluation.stars") is None:
        return None
    module = importlib.import_module("timebank.evaluation.stars")
    found = getattr(module, "star_levels", None)
    return found if callable(found) else None


def top_volunteers(org: Org, date_from: dt.date, date_to: dt.date, limit: int = TOP_VOLUNTEERS) -> list[TopVolunteer]:
    """Ranked by credited minutes in the period, from orders and service records of the subtree."""
    start, end = clock.day_bounds(date_from, date_to)
    minutes: dict[int, int] = defaultdict(int)
    services: dict[int, int] = defaultdict(int)
    for qs in (
        confirmed_orders(org, start, end).filter(volunteer__isnull=False),
        posted_records(org, start, end),
    ):
        for r in qs.values("volunteer_id").annotate(m=Sum("credited_minutes"), n=Count("pk")):
            minutes[r["volunteer_id"]] += int(r["m"] or 0)
            services[r["volunteer_id"]] += int(r["n"])
    ranked = sorted(minutes, key=lambda pk: (-minutes[pk], pk))[:limit]
    people = Member.objects.select_related("home_org").in_bulk(ranked)
    star = star_level_function()
    levels: dict[int, Any] = {}
    if star is not None and ranked:
        levels = star(people[ranked[0]].bank_id, ranked)
    found = []
    for pk in ranked:
        got = levels.get(pk)
        level = int(getattr(got, "level", got)) if got is not None else None
        found.append(TopVolunteer(people[pk], minutes[pk], services[pk], level))
    return found


# The sub-branch's day ---------------------------------------------------------------------------------


@dataclass
class Today:
    today: dt.date
    orders: list[Order]
    orders_count: int
    overdue: list[Order]
    overdue_count: int
    needs: list[Need]
    needs_count: int
    insurance: list[Member]
    insurance_count: int
    certificates: list[Any]
    certificates_count: int
    extra: dict[str, Any] = field(default_factory=dict)


def today_for(org: Org, today: dt.date | None = None) -> Today:
    today = today or clock.localdate()
    start, end = clock.day_bounds(today, today)
    base = Order.objects.filter(in_scope(org)).select_related("service_item", "recipient", "volunteer")
    todays = base.filter(scheduled_start__gte=start, scheduled_start__lt=end).exclude(state=OrderState.CANCELLED)
    overdue = base.filter(overdue_q(bank_id=org.bank_pk))
    needs = (
        Need.objects.filter(in_scope(org, "recipient__", via="home_org"), status__in=OPEN_STATUSES)
        .filter(orders__isnull=True)
        .select_related("recipient")
        .order_by("created_at", "pk")
    )
    insurance = lists.insurance_alerts(org, today=today, days=SOON_DAYS).order_by("pk")
    certificates = lists.expiring_certificates(org, today=today, days=SOON_DAYS).order_by("valid_until", "pk")
    return Today(
        today=today,
        orders=list(todays.order_by("scheduled_start", "pk")[:LIST_ROWS]),
        orders_count=todays.count(),
        overdue=list(overdue.order_by("created_at", "pk")[:LIST_ROWS]),
        overdue_count=overdue.count(),
        needs=list(needs[:LIST_ROWS]),
        needs_count=needs.count(),
        insurance=list(insurance[:LIST_ROWS]),
        insurance_count=insurance.count(),
        certificates=list(certificates[:LIST_ROWS]),
        certificates_count=certificates.count(),
    )
