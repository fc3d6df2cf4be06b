"""供不应求: will the bank be able to honour the credits it owes?

Three measures for any org subtree, each a few aggregate queries over the same rows the ledger and the orders keep:

1. Credits owed and months to honour them. Owed = the balances of the members' earned, goods and reserve
   buckets. Capacity = credited service minutes per month over the last `window_months` months (the stats'
   `credited_minutes` for that window, divided by the months). Months to honour = owed / capacity.
2. The volunteers' ages, now and 5 and 10 years ahead: how many of today's active volunteers will have reached
   the age at which they may spend their reserve (Rules.reserve_min_age, else RiskRules.default_reserve_age),
   against the new volunteers the bank would gain at the current rate: the active volunteers who joined in the
   window, per year of the time they were counted over. The volunteers a bank opens with (those registered in
   its first FOUNDING_DAYS, when the paper records move in) are its base, not an inflow: in a young bank the
   count starts after them, and the rate is over the days since then, not over the whole window.
3. The unfilled-order rate per month over the window, and its trend (second half of the window minus first).

Thresholds in RiskRules turn these into alerts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

from django.db.models import Count, Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from timebank.ledger.models import MEMBER_BUCKETS, Account
from timebank.lib import clock
from timebank.members.models import Member, MemberStatus
from timebank.orders.models import Order, OrderState, waiting_since_q
from timebank.orgs.models import Org, OrgKind, Rules
from timebank.reports.actions import risk_rules_for
from timebank.reports.models import RiskRules
from timebank.reports.stats import credited_minutes

HORIZONS = (5, 10)
# A bank's first days of registrations (its paper records moved in, the opening drive) make its base, not inflow.
FOUNDING_DAYS = 30
# Age bands of the structure table: [low, high) years; None = no upper bound.
AGE_BANDS: tuple[tuple[int, int | None], ...] = ((0, 40), (40, 50), (50, 60), (60, 70), (70, 80), (80, None))


def years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` earlier (29 February becomes the 28th)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def months_before(day: dt.date, months: int) -> dt.date:
    """The same day `months` calendar months earlier, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for d in (day.day, 30, 29, 28):
        try:
            return dt.date(year, month, d)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def born_by(day: dt.date, age: int) -> dt.date:
    """Anyone born on or before this date is at least `age` years old on `day`."""
    return years_before(day, age)


def ratio(numerator: int, denominator: int, places: str = "0.1") -> Decimal | None:
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def percent(numerator: int, denominator: int) -> Decimal | None:
    return ratio(numerator * 100, denominator)


def round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)).__floor__())


def one_place(value: Fraction) -> Decimal:
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def _scope(org: Org, prefix: str) -> Q:
    """A head office's rows carry its bank id (indexed, no join); a lower org is a path prefix."""
    if org.kind == OrgKind.HEAD_OFFICE:
        return Q(**{f"{prefix}bank_id": org.pk})
    return Q(**{f"{prefix}home_org__path__startswith": org.path})


@dataclass
class Projection:
    years: int
    reaching_age: int  # today's volunteers who will be at or above the reserve age by then (including those already)
    newly_reaching: int  # of them, those below the age today
    new_volunteers: int  # volunteers gained over those years at the current rate
    alert: bool


@dataclass
class MonthRate:
    month: str  # "2026-03"
    orders: int
    unfilled: int
    percent: Decimal | None


@dataclass
class Alert:
    code: str
    message: str


@dataclass
class Risk:
    org_id: int
    org_name: str
    today: dt.date
    window_months: int
    # 1. Owed and capacity
    earned_minutes: int
    goods_minutes: int
    reserve_minutes: int
    outstanding_minutes: int
    window_credited_minutes: int
    capacity_minutes_per_month: Decimal
    months_to_honour: Decimal | None  # None: no capacity at all
    # 2. Ages
    reserve_age: int
    volunteers: int
    volunteers_unknown_age: int
    at_age_now: int
    joined_in_window: int
    new_volunteers_per_year: Decimal
    age_bands: list[dict[str, Any]]
    projections: list[Projection]
    # 3. Unfilled orders
    months: list[MonthRate]
    window_orders: int
    window_unfilled: int
    unfilled_percent: Decimal | None
    unfilled_trend_points: Decimal | None
    # Thresholds and what they raise
    max_months_to_honour: int
    max_unfilled_percent: int
    max_ageing_percent: int
    alerts: list[Alert] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _owed(org: Org) -> dict[str, int]:
    rows = (
        Account.objects.filter(kind__in=MEMBER_BUCKETS, member__isnull=False)
        .filter(Q(bank_id=org.pk) if org.kind == OrgKind.HEAD_OFFICE else _scope(org, "member__"))
        .values("kind")
        .annotate(s=Sum("balance_minutes"))
    )
    found = {r["kind"]: int(r["s"] or 0) for r in rows}
    return {k: found.get(k, 0) for k in MEMBER_BUCKETS}


def _ages(org: Org, today: dt.date, reserve_age: int, joined_since: dt.datetime) -> dict[str, int]:
    """One pass over the subtree's active volunteers: counts at or above each age boundary, now and ahead, and
    those who joined since `joined_since`."""
    volunteers = Member.objects.filter(_scope(org, ""), status=MemberStatus.ACTIVE, is_volunteer=True)
    aggregates: dict[str, Any] = {
        "total": Count("pk"),
        "unknown": Count("pk", filter=Q(birth_date__isnull=True)),
        "joined": Count("pk", filter=Q(created_at__gte=joined_since)),
    }
    for years in (0, *HORIZONS):
        day = years_before(today, -years)
        aggregates[f"reserve_{years}"] = Count("pk", filter=Q(birth_date__lte=born_by(day, reserve_age)))
        for low, _high in AGE_BANDS:
            if low:
                aggregates[f"age{low}_{years}"] = Count("pk", filter=Q(birth_date__lte=born_by(day, low)))
    return {k: int(v) for k, v in volunteers.aggregate(**aggregates).items()}


def _month_starts(today: dt.date, months: int) -> list[dt.date]:
    first = today.replace(day=1)
    return [months_before(first, n) for n in range(months - 1, -1, -1)]


def _unfilled(org: Org, today: dt.date, months: int, dispatch_within_hours: int) -> list[MonthRate]:
    """Per calendar month of the window: orders made, and those no volunteer was ever dispatched to (cancelled
    before dispatch, or still waiting past the rules' dispatch time)."""
    starts = _month_starts(today, months)
    bounds = [clock.start_of_day(d) for d in [*starts, months_before(starts[-1], -1)]]
    late = waiting_since_q(dispatch_within_hours, clock.now())  # overdue
    unfilled = Q(dispatched_at__isnull=True) & (Q(state=OrderState.CANCELLED) | late)
    scope = Q(bank_id=org.pk) if org.kind == OrgKind.HEAD_OFFICE else Q(org__path__startswith=org.path)
    aggregates: dict[str, Any] = {}
    for i in range(months):
        span = Q(created_at__gte=bounds[i], created_at__lt=bounds[i + 1])
        aggregates[f"n{i}"] = Count("pk", filter=span)
        aggregates[f"u{i}"] = Count("pk", filter=span & unfilled)
    got = Order.objects.filter(scope, created_at__gte=bounds[0], created_at__lt=bounds[-1]).aggregate(**aggregates)
    return [
        MonthRate(
            month=starts[i].strftime("%Y-%m"),
            orders=int(got[f"n{i}"]),
            unfilled=int(got[f"u{i}"]),
            percent=percent(int(got[f"u{i}"]), int(got[f"n{i}"])),
        )
        for i in range(months)
    ]


def inflow_since(bank: Org, window_start: dt.date) -> dt.date:
    """The first day whose new volunteers count as inflow: the window's first day, or the first day after the
    bank's founding days (from its first registration) when that is later."""
    first = Member.objects.filter(bank_id=bank.pk).aggregate(first=Min("created_at"))["first"]
    if first is None:
        return window_start
    return max(window_start, timezone.localdate(first) + dt.timedelta(days=FOUNDING_DAYS))


def per_year(joined: int, since: dt.date, window_start: dt.date, today: dt.date, months: int) -> Fraction:
    """New volunteers a year at the rate of those who joined from `since` to the end of today: over the window's
    months, or over the days counted when the count started later (a young bank)."""
    if since <= window_start:
        return Fraction(joined * 12, months)
    days = (today - since).days + 1
    return Fraction(joined * 365, days) if days > 0 else Fraction(0)


def reserve_age_of(rules: Rules | None, risk_rules: RiskRules) -> int:
    if rules is not None and rules.reserve_min_age is not None:
        return rules.reserve_min_age
    return risk_rules.default_reserve_age


def compute_risk(org: Org, today: dt.date | None = None) -> Risk:
    today = today or clock.localdate()
    bank = org.bank
    risk_rules = risk_rules_for(bank)
    rules = Rules.objects.filter(head_office=bank).first()
    months = risk_rules.window_months
    reserve_age = reserve_age_of(rules, risk_rules)

    # 1. Owed against capacity over [same day `months` ago, end of today).
    owed = _owed(org)
    outstanding = sum(owed.values())
    window_start, window_end = clock.day_bounds(months_before(today, months), today)
    credited = credited_minutes(org, window_start, window_end)
    capacity = ratio(credited, months) or Decimal(0)
    if outstanding <= 0:
        to_honour: Decimal | None = Decimal(0)
    else:
        # owed / (credited / months), exact until the final rounding.
        to_honour = ratio(outstanding * months, credited)

    # 2. Ages now and ahead, against the inflow at the current rate (not the volunteers the bank opened with).
    first_day = months_before(today, months)
    since = inflow_since(bank, first_day)
    ages = _ages(org, today, reserve_age, clock.start_of_day(since))
    joined = ages["joined"]
    yearly = per_year(joined, since, first_day, today, months)
    projections = []
    for years in HORIZONS:
        reaching = ages[f"reserve_{years}"]
        newly = reaching - ages["reserve_0"]
        inflow = round_half_up(yearly * years)
        alert = newly > 0 and newly * 100 > inflow * risk_rules.max_ageing_percent
        projections.append(Projection(years, reaching, newly, inflow, alert))
    known = ages["total"] - ages["unknown"]
    bands = []
    for low, high in AGE_BANDS:
        row: dict[str, Any] = {"low": low, "high": high}
        for years in (0, *HORIZONS):
            above_low = known if low == 0 else ages[f"age{low}_{years}"]
            above_high = ages[f"age{high}_{years}"] if high is not None else 0
            row[f"in_{years}"] = above_low - above_high
        bands.append(row)

    # 3. Unfilled orders.
    dispatch_hours = rules.dispatch_within_hours if rules is not None else 24
    month_rates = _unfilled(org, today, months, dispatch_hours)
    n = sum(m.orders for m in month_rates)
    u = sum(m.unfilled for m in month_rates)
    half = months // 2
    trend: Decimal | None = None
    if half:
        early, late = month_rates[: months - half], month_rates[months - half :]
        p_early = percent(sum(m.unfilled for m in early), sum(m.orders for m in early))
        p_late = percent(sum(m.unfilled for m in late), sum(m.orders for m in late))
        if p_early is not None and p_late is not None:
            trend = p_late - p_early

    risk = Risk(
        org_id=org.pk,
        org_name=org.name,
        today=today,
        window_months=months,
        earned_minutes=owed["earned"],
        goods_minutes=owed["goods"],
        reserve_minutes=owed["reserve"],
        outstanding_minutes=outstanding,
        window_credited_minutes=credited,
        capacity_minutes_per_month=capacity,
        months_to_honour=to_honour,
        reserve_age=reserve_age,
        volunteers=ages["total"],
        volunteers_unknown_age=ages["unknown"],
        at_age_now=ages["reserve_0"],
        joined_in_window=joined,
        new_volunteers_per_year=one_place(yearly) or Decimal(0),
        age_bands=bands,
        projections=projections,
        months=month_rates,
        window_orders=n,
        window_unfilled=u,
        unfilled_percent=percent(u, n),
        unfilled_trend_points=trend,
        max_months_to_honour=risk_rules.max_months_to_honour,
        max_unfilled_percent=risk_rules.max_unfilled_percent,
        max_ageing_percent=risk_rules.max_ageing_percent,
    )
    risk.alerts = alerts_for(risk)
    return risk


def alerts_for(risk: Risk) -> list[Alert]:
    found: list[Alert] = []
    if risk.outstanding_minutes > 0 and risk.months_to_honour is None:
        found.append(
            Alert(
                "no_capacity",
                _("最近 %(months)s 个月没有记入任何服务时间，欠会员的 %(hours)s 小时无人能兑付。")
                % {"months": risk.window_months, "hours": hours(risk.outstanding_minutes)},
            )
        )
    elif risk.months_to_honour is not None and risk.months_to_honour > risk.max_months_to_honour:
        found.append(
            Alert(
                "months_to_honour",
                _("按目前的服务能力，兑付欠会员的时间需要 %(months)s 个月，超过了 %(limit)s 个月的警戒线。")
                % {"months": risk.months_to_honour, "limit": risk.max_months_to_honour},
            )
        )
    for p in risk.projections:
        if p.alert:
            found.append(
                Alert(
                    f"ageing_{p.years}",
                    _("%(years)s 年后将有 %(newly)s 位志愿者新到可支取年龄，而按目前速度只会新增 %(inflow)s 位志愿者。")
                    % {"years": p.years, "newly": p.newly_reaching, "inflow": p.new_volunteers},
                )
            )
    if risk.unfilled_percent is not None and risk.unfilled_percent >= risk.max_unfilled_percent:
        found.append(
            Alert(
                "unfilled",
                _("最近 %(months)s 个月有 %(percent)s%% 的订单没有派出志愿者，达到了 %(limit)s%% 的警戒线。")
                % {"months": risk.window_months, "percent": risk.unfilled_percent, "limit": risk.max_unfilled_percent},
            )
        )
    return found


def hours(minutes: int) -> str:
    """Minutes as hours with one decimal, for sentences."""
    return str((Decimal(minutes) / 60).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
