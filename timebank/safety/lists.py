"""The lists staff work from: volunteers whose insurance ends soon or is missing, and certificates that end
soon. Each is one query over the caller's subtree, paginated by primary key."""

from __future__ import annotations

import datetime as dt

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from timebank.members.models import Certificate, InsurancePolicy, Member, MemberStatus
from timebank.orgs.models import Org

EXPIRING = "expiring"
UNINSURED = "uninsured"


def _in(scope: Org | None, prefix: str) -> Q:
    return Q(**{f"{prefix}home_org__path__startswith": scope.path}) if scope is not None else Q()


def insurance_alerts(scope: Org | None, *, today: dt.date, days: int, status: str | None = None) -> QuerySet[Member]:
    """Active volunteers of the subtree with no policy in force today (`uninsured`), or whose cover ends
    within `days` with nothing after it (`expiring`). Rows carry `insured_now` and `covered_until`."""
    in_force = InsurancePolicy.objects.in_force(today).filter(member=OuterRef("pk"))
    cover_end = (
        InsurancePolicy.objects.filter(member=OuterRef("pk"), ends_on__gte=today).order_by("-ends_on").values("ends_on")
    )
    qs = (
        Member.objects.filter(_in(scope, ""), is_volunteer=True, status=MemberStatus.ACTIVE)
        .annotate(insured_now=Exists(in_force), covered_until=Subquery(cover_end[:1]))
        .only("id", "name", "home_org_id")
    )
    horizon = today + dt.timedelta(days=days)
    uninsured = Q(insured_now=False)
    expiring = Q(insured_now=True, covered_until__lte=horizon)
    if status == UNINSURED:
        return qs.filter(uninsured)
    if status == EXPIRING:
        return qs.filter(expiring)
    return qs.filter(uninsured | expiring)


def current_policies(member_ids: list[int], today: dt.date) -> dict[int, InsurancePolicy]:
    """For each member, the policy in force today that runs longest."""
    found: dict[int, InsurancePolicy] = {}
    for p in (
        InsurancePolicy.objects.in_force(today)
        .filter(member_id__in=member_ids)
        .order_by("member_id", "-ends_on", "-pk")
    ):
        found.setdefault(p.member_id, p)
    return found


def expiring_certificates(scope: Org | None, *, today: dt.date, days: int) -> QuerySet[Certificate]:
    """Certificates of active members of the subtree that end within `days` and have not been renewed
    (no other certificate of the same kind lasts longer)."""
    renewed = (
        Certificate.objects.filter(member=OuterRef("member"), kind=OuterRef("kind"))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=OuterRef("valid_until")))
        .exclude(pk=OuterRef("pk"))
    )
    return (
        Certificate.objects.filter(
            _in(scope, "member__"),
            member__status=MemberStatus.ACTIVE,
            valid_until__gte=today,
            valid_until__lte=today + dt.timedelta(days=days),
        )
        .exclude(Exists(renewed))
        .select_related("member")
    )
