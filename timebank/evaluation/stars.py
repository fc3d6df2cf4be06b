"""Star levels (星级评定): credited hours against the head office's thresholds, held back by low ratings
or upheld complaints as the evaluation rules say.

`star_level(member)` is the one function others call (dashboards list top volunteers with it);
`star_levels(ids)` answers for many volunteers in a fixed number of queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Sum

from timebank.evaluation.models import Complaint, ComplaintStatus, EvaluationRules
from timebank.evaluation.rules import evaluation_rules, star_thresholds
from timebank.hotline.models import ReturnVisit
from timebank.lib import clock
from timebank.members.models import Member
from timebank.orders.models import Order, ServiceRecord

LOW_RATING = "low_rating"
UPHELD_COMPLAINTS = "upheld_complaints"
COMPLAINT_WINDOW_DAYS = 365


@dataclass
class StarLevel:
    member_id: int
    level: int  # after any hold-back
    earned_level: int  # by credited hours alone
    credited_minutes: int
    thresholds_hours: list[int]
    next_threshold_hours: int | None  # the next level's threshold, None at the top
    minutes_to_next: int | None
    held_back: list[str] = field(default_factory=list)
    average_rating: Decimal | None = None
    rating_count: int = 0
    upheld_complaints: int = 0

    @property
    def credited_hours(self) -> Decimal:
        return (Decimal(self.credited_minutes) / 60).quantize(Decimal("0.1"))

    @property
    def progress_percent(self) -> int:
        """How far from the current threshold towards the next one (100 at the top)."""
        if self.next_threshold_hours is None:
            return 100
        low = self.thresholds_hours[self.earned_level - 1] * 60 if self.earned_level else 0
        high = self.next_threshold_hours * 60
        return max(0, min(100, (self.credited_minutes - low) * 100 // max(high - low, 1)))


def level_for_minutes(minutes: int, thresholds_hours: Sequence[int]) -> int:
    """Level n is reached at the n-th threshold exactly: 100 h with [100, 300, …] is one star, 99 h 59 min none."""
    return sum(1 for t in thresholds_hours if minutes >= t * 60)


def hold_back(
    earned: int, *, rules: EvaluationRules, average_rating: Decimal | None, rating_count: int, upheld: int
) -> tuple[int, list[str]]:
    """Each reason the rules name costs one level (never below none)."""
    reasons = []
    if (
        average_rating is not None
        and rating_count >= max(rules.star_min_reviews, 1)
        and average_rating < rules.star_hold_rating_below
    ):
        reasons.append(LOW_RATING)
    if rules.star_hold_complaints and upheld >= rules.star_hold_complaints:
        reasons.append(UPHELD_COMPLAINTS)
    return max(earned - len(reasons), 0), reasons


def credited_minutes(
    ids: Sequence[int], *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[int, int]:
    """Minutes credited for service (orders and service records), leaving out anything reversed; over a whole
    lifetime (no `start`), with the minutes carried in by a move from another node."""
    totals = dict.fromkeys(ids, 0)
    if not ids:
        return totals
    orders = Order.objects.filter(
        volunteer_id__in=ids, transaction__isnull=False, transaction__reversed_by__isnull=True
    )
    records = ServiceRecord.objects.filter(volunteer_id__in=ids, transaction__reversed_by__isnull=True)
    if start is not None:
        orders = orders.filter(transaction__created_at__gte=start)
        records = records.filter(transaction__created_at__gte=start)
    if end is not None:
        orders = orders.filter(transaction__created_at__lt=end)
        records = records.filter(transaction__created_at__lt=end)
    for qs in (orders, records):
        for vid, minutes in (
            qs.order_by().values("volunteer_id").annotate(m=Sum("credited_minutes")).values_list("volunteer_id", "m")
        ):
            totals[vid] += minutes or 0
    if start is None:
        # Lifetime minutes a member brought when they moved here from another node (federation/moves.py).
        from timebank.federation.models import FederatedMove

        carried = FederatedMove.objects.filter(member_id__in=ids, direction="in", state="completed")
        if end is not None:
            carried = carried.filter(completed_at__lt=end)
        for mid, minutes in (
            carried.order_by().values("member_id").annotate(m=Sum("carried_minutes")).values_list("member_id", "m")
        ):
            totals[mid] += minutes or 0
    return totals


def ratings(
    ids: Sequence[int], *, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> dict[int, tuple[int, int]]:
    """(sum, count) of recipients' ratings per volunteer: order reviews and return-visit satisfaction (1..5)."""
    totals = dict.fromkeys(ids, (0, 0))
    if not ids:
        return totals
    reviews = Order.objects.filter(volunteer_id__in=ids, rating__isnull=False)
    visits = ReturnVisit.objects.filter(order__volunteer_id__in=ids, satisfaction__isnull=False)
    if start is not None:
        reviews = reviews.filter(reviewed_at__gte=start)
        visits = visits.filter(created_at__gte=start)
    if end is not None:
        reviews = reviews.filter(reviewed_at__lt=end)
        visits = visits.filter(created_at__lt=end)
    for qs, key, value in ((reviews, "volunteer_id", "rating"), (visits, "order__volunteer_id", "satisfaction")):
        for vid, s, n in qs.order_by().values(key).annotate(s=Sum(value), n=Count("pk")).values_list(key, "s", "n"):
            old = totals[vid]
            totals[vid] = (old[0] + (s or 0), old[1] + n)
    return totals


def upheld_complaints(ids: Sequence[int], *, since: dt.datetime, end: dt.datetime | None = None) -> dict[int, int]:
    qs = Complaint.objects.filter(volunteer_id__in=ids, status=ComplaintStatus.UPHELD, decided_at__gte=since)
    if end is not None:
        qs = qs.filter(decided_at__lt=end)
    counts = dict.fromkeys(ids, 0)
    for vid, n in qs.order_by().values("volunteer_id").annotate(n=Count("pk")).values_list("volunteer_id", "n"):
        counts[vid] = n
    return counts


def _average(total: int, count: int) -> Decimal | None:
    return (Decimal(total) / count).quantize(Decimal("0.01")) if count else None


def star_levels(bank_id: int, ids: Iterable[int], *, now: dt.datetime | None = None) -> dict[int, StarLevel]:
    """Star levels of several volunteers of one bank: seven queries, however many."""
    ids = list(ids)
    now = now or clock.now()
    thresholds = star_thresholds(bank_id)
    rules = evaluation_rules(bank_id)
    minutes = credited_minutes(ids)
    rated = ratings(ids)
    upheld = upheld_complaints(ids, since=now - dt.timedelta(days=COMPLAINT_WINDOW_DAYS))
    out = {}
    for vid in ids:
        earned = level_for_minutes(minutes[vid], thresholds)
        s, n = rated[vid]
        avg = _average(s, n)
        level, reasons = hold_back(earned, rules=rules, average_rating=avg, rating_count=n, upheld=upheld[vid])
        nxt = thresholds[earned] if earned < len(thresholds) else None
        out[vid] = StarLevel(
            member_id=vid,
            level=level,
            earned_level=earned,
            credited_minutes=minutes[vid],
            thresholds_hours=thresholds,
            next_threshold_hours=nxt,
            minutes_to_next=None if nxt is None else nxt * 60 - minutes[vid],
            held_back=reasons,
            average_rating=avg,
            rating_count=n,
            upheld_complaints=upheld[vid],
        )
    return out


def star_level(member: Member, *, now: dt.datetime | None = None) -> StarLevel:
    """One volunteer's star level and progress to the next."""
    return star_levels(member.bank_id, [member.pk], now=now)[member.pk]
