"""The combined score (综合评分) of an org or a volunteer for one year.

Three parts, each 0..100:
- third party: the mean of the assessors' totals for the org (each total is the indicator-weighted mean
  of its scores); volunteers have no third-party part;
- self: the year's self-assessment;
- satisfaction: the mean of recipients' ratings (order reviews and return-visit satisfaction, 1..5) × 20.
The combined score is the weighted mean of the parts present (the head office's weights; a missing part
is left out and the others re-weighed), less `complaint_deduction` points per upheld complaint of the
year, never below 0. Everything is rounded half up to 2 decimals.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Count, Sum
from django.utils import timezone

from timebank.evaluation.models import Assessment, Complaint, ComplaintStatus, EvaluationRules, SelfAssessment
from timebank.evaluation.rules import evaluation_rules
from timebank.evaluation.stars import credited_minutes, ratings, upheld_complaints
from timebank.hotline.models import ReturnVisit
from timebank.orders.models import Order, ServiceRecord
from timebank.orgs.models import Org

CENT = Decimal("0.01")
STARS_TO_POINTS = Decimal(20)


def q2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass
class Combined:
    third_party: Decimal | None
    self_score: Decimal | None
    satisfaction: Decimal | None
    rating_count: int
    upheld_complaints: int
    weighted: Decimal | None  # before deductions
    deduction: Decimal
    total: Decimal | None  # None when no part is known
    credited_minutes: int = 0
    year: int = 0  # the year scored (set by volunteer_scores / org_scores)


def combine(
    parts: Sequence[tuple[Decimal | None, int]], *, upheld: int, per_complaint: Decimal
) -> tuple[Decimal | None, Decimal, Decimal | None]:
    """(weighted, deduction, total) from (score, weight) pairs. Pure arithmetic."""
    present = [(score, weight) for score, weight in parts if score is not None and weight > 0]
    deduction = q2(per_complaint * upheld)
    if not present:
        return None, deduction, None
    weights = sum(w for _s, w in present)
    weighted = q2(sum((s * w for s, w in present), Decimal(0)) / weights)
    return weighted, deduction, max(q2(weighted - deduction), Decimal(0))


def year_bounds(year: int) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    return dt.datetime(year, 1, 1, tzinfo=tz), dt.datetime(year + 1, 1, 1, tzinfo=tz)


def satisfaction_points(total: int, count: int) -> Decimal | None:
    return q2(Decimal(total) * STARS_TO_POINTS / count) if count else None


def _result(
    rules: EvaluationRules, third: Decimal | None, own: Decimal | None, rated: tuple[int, int], upheld: int
) -> Combined:
    sat = satisfaction_points(*rated)
    weighted, deduction, total = combine(
        [(third, rules.third_party_weight), (own, rules.self_weight), (sat, rules.satisfaction_weight)],
        upheld=upheld,
        per_complaint=rules.complaint_deduction,
    )
    return Combined(third, own, sat, rated[1], upheld, weighted, deduction, total)


def volunteer_scores(bank_id: int, ids: Iterable[int], year: int) -> dict[int, Combined]:
    """Combined scores of several volunteers of one bank for `year`, in a fixed number of queries."""
    ids = list(ids)
    start, end = year_bounds(year)
    rules = evaluation_rules(bank_id)
    own = dict(SelfAssessment.objects.filter(member_id__in=ids, year=year).values_list("member_id", "score"))
    rated = ratings(ids, start=start, end=end)
    upheld = upheld_complaints(ids, since=start, end=end)
    minutes = credited_minutes(ids, start=start, end=end)
    out = {}
    for vid in ids:
        result = _result(rules, None, own.get(vid), rated[vid], upheld[vid])
        result.credited_minutes = minutes[vid]
        result.year = year
        out[vid] = result
    return out


def _roll_up(orgs: Sequence[Org], per_org: dict[int, int], paths: dict[int, str]) -> dict[int, int]:
    """Sum values kept per org over each target org's subtree."""
    out = {}
    for org in orgs:
        out[org.pk] = sum(v for oid, v in per_org.items() if paths.get(oid, "").startswith(org.path))
    return out


def org_scores(bank_id: int, orgs: Sequence[Org], year: int) -> dict[int, Combined]:
    """Combined scores of orgs of one bank. Satisfaction, complaints and hours cover each org's subtree
    (the orders of the recipients living there, the complaints about it and its volunteers, its volunteers'
    credited time); assessments and self-assessments are the org's own."""
    start, end = year_bounds(year)
    rules = evaluation_rules(bank_id)
    ids = [o.pk for o in orgs]
    paths = dict(Org.objects.filter(head_office_id=bank_id).values_list("pk", "path"))
    third: dict[int, Decimal] = {}
    for oid, s, n in (
        Assessment.objects.filter(org_id__in=ids, year=year)
        .order_by()
        .values("org_id")
        .annotate(s=Sum("total"), n=Count("pk"))
        .values_list("org_id", "s", "n")
    ):
        third[oid] = q2(s / n)
    own = dict(SelfAssessment.objects.filter(org_id__in=ids, year=year).values_list("org_id", "score"))

    def grouped(qs: object, key: str, value: str) -> tuple[dict[int, int], dict[int, int]]:
        sums: dict[int, int] = {}
        counts: dict[int, int] = {}
        for oid, s, n in qs.order_by().values(key).annotate(s=Sum(value), n=Count("pk")).values_list(key, "s", "n"):  # type: ignore[attr-defined]
            sums[oid] = sums.get(oid, 0) + (s or 0)
            counts[oid] = counts.get(oid, 0) + n
        return sums, counts

    rs, rn = grouped(
        Order.objects.filter(bank_id=bank_id, rating__isnull=False, reviewed_at__gte=start, reviewed_at__lt=end),
        "org_id",
        "rating",
    )
    vs, vn = grouped(
        ReturnVisit.objects.filter(
            bank_id=bank_id, satisfaction__isnull=False, created_at__gte=start, created_at__lt=end
        ),
        "order__org_id",
        "satisfaction",
    )
    _cs, cn = grouped(
        Complaint.objects.filter(
            bank_id=bank_id, status=ComplaintStatus.UPHELD, decided_at__gte=start, decided_at__lt=end
        ),
        "org_id",
        "pk",
    )
    om, _on = grouped(
        Order.objects.filter(
            bank_id=bank_id,
            transaction__isnull=False,
            transaction__reversed_by__isnull=True,
            transaction__created_at__gte=start,
            transaction__created_at__lt=end,
        ),
        "volunteer__home_org_id",
        "credited_minutes",
    )
    sm, _sn = grouped(
        ServiceRecord.objects.filter(
            bank_id=bank_id,
            transaction__reversed_by__isnull=True,
            transaction__created_at__gte=start,
            transaction__created_at__lt=end,
        ),
        "org_id",
        "credited_minutes",
    )
    rating_sum = _roll_up(orgs, {k: rs.get(k, 0) + vs.get(k, 0) for k in {*rs, *vs}}, paths)
    rating_n = _roll_up(orgs, {k: rn.get(k, 0) + vn.get(k, 0) for k in {*rn, *vn}}, paths)
    upheld = _roll_up(orgs, cn, paths)
    minutes = _roll_up(orgs, {k: om.get(k, 0) + sm.get(k, 0) for k in {*om, *sm}}, paths)
    out = {}
    for org in orgs:
        result = _result(
            rules, third.get(org.pk), own.get(org.pk), (rating_sum[org.pk], rating_n[org.pk]), upheld[org.pk]
        )
        result.credited_minutes = minutes[org.pk]
        result.year = year
        out[org.pk] = result
    return out


def org_score(org: Org, year: int) -> Combined:
    assert org.head_office_id is not None
    return org_scores(org.head_office_id, [org], year)[org.pk]


def volunteer_score(bank_id: int, member_id: int, year: int) -> Combined:
    return volunteer_scores(bank_id, [member_id], year)[member_id]
