"""Ranking the year's award candidates from the data (the head office then confirms the winners).

Volunteers: active volunteers of the bank who served (credited time) in the year, not under a penalty in
force and without an upheld complaint that year, at the kind's minimum star level or above.
Orgs: the grassroots orgs (sub-branches and outlets).
By `combined_score` (the three-way score) or `credited_hours` (time credited in the year); ties go to
more credited time, then the older record.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from timebank.evaluation.dispatch import blocking_penalties
from timebank.evaluation.models import AwardBasis, AwardKind, AwardSubject, Complaint, ComplaintStatus
from timebank.evaluation.scoring import Combined, org_scores, q2, volunteer_scores, year_bounds
from timebank.evaluation.stars import star_levels
from timebank.members.models import Member, MemberStatus
from timebank.orders.models import Order, ServiceRecord
from timebank.orgs.models import Org, OrgKind


@dataclass
class Candidate:
    member_id: int | None
    org_id: int | None
    name: str
    score: Decimal
    credited_minutes: int
    combined: Combined


def _served_in_year(bank_id: int, year: int) -> set[int]:
    start, end = year_bounds(year)
    ids: set[int] = set()
    for qs in (
        Order.objects.filter(bank_id=bank_id, transaction__created_at__gte=start, transaction__created_at__lt=end),
        ServiceRecord.objects.filter(
            bank_id=bank_id, transaction__created_at__gte=start, transaction__created_at__lt=end
        ),
    ):
        ids |= set(
            qs.filter(transaction__reversed_by__isnull=True)
            .order_by()
            .values("volunteer_id")
            .annotate(m=Sum("credited_minutes"))
            .filter(m__gt=0)
            .values_list("volunteer_id", flat=True)
        )
    return ids


def _score(kind: AwardKind, c: Combined) -> Decimal | None:
    if kind.basis == AwardBasis.CREDITED_HOURS:
        return q2(Decimal(c.credited_minutes) / 60) if c.credited_minutes > 0 else None
    return c.total


def candidates(kind: AwardKind, year: int) -> list[Candidate]:
    bank_id = kind.bank_id
    out: list[Candidate] = []
    if kind.subject == AwardSubject.VOLUNTEER:
        start, end = year_bounds(year)
        served = _served_in_year(bank_id, year)
        excluded = set(blocking_penalties().filter(member_id__in=served).values_list("member_id", flat=True))
        excluded |= set(
            Complaint.objects.filter(
                volunteer_id__in=served, status=ComplaintStatus.UPHELD, decided_at__gte=start, decided_at__lt=end
            ).values_list("volunteer_id", flat=True)
        )
        names = dict(
            Member.objects.filter(
                pk__in=served - excluded, bank_id=bank_id, is_volunteer=True, status=MemberStatus.ACTIVE
            ).values_list("pk", "name")
        )
        ids = sorted(names)
        if kind.min_star_level:
            levels = star_levels(bank_id, ids)
            ids = [i for i in ids if levels[i].level >= kind.min_star_level]
        for vid, combined in volunteer_scores(bank_id, ids, year).items():
            score = _score(kind, combined)
            if score is not None:
                out.append(Candidate(vid, None, names[vid], score, combined.credited_minutes, combined))
        out.sort(key=lambda c: (-c.score, -c.credited_minutes, c.member_id or 0))
    else:
        orgs = list(Org.objects.filter(head_office_id=bank_id, kind__in=(OrgKind.SUB_BRANCH, OrgKind.OUTLET)))
        by_id = {o.pk: o for o in orgs}
        for oid, combined in org_scores(bank_id, orgs, year).items():
            score = _score(kind, combined)
            if score is not None:
                out.append(Candidate(None, oid, by_id[oid].name, score, combined.credited_minutes, combined))
        out.sort(key=lambda c: (-c.score, -c.credited_minutes, c.org_id or 0))
    return out
