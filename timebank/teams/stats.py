"""A team's figures (members, activities, hours) and a school team's hours per student and term."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils.translation import gettext_lazy as _

from timebank.ledger.models import AccountKind, Leg, TransactionKind
from timebank.lib import clock
from timebank.lib.errors import Invalid
from timebank.teams.models import ActivitySignup, ActivityState, Team, TeamMembership, TeamRole

# Credits for service done: what a moral-education record counts as volunteer hours.
SERVICE_KINDS = (TransactionKind.DEPOSIT, TransactionKind.SERVICE_RECORD)


def team_stats(team: Team, year: int | None = None) -> dict[str, Any]:
    members = TeamMembership.objects.filter(team=team, active=True)
    activities = team.activities.all()
    credited = ActivitySignup.objects.filter(activity__team=team, service_record__isnull=False)
    if year is not None:
        activities = activities.filter(starts_at__year=year)
        credited = credited.filter(activity__starts_at__year=year)
    sums = credited.aggregate(
        service=Sum("service_record__minutes"),
        credited=Sum("service_record__credited_minutes"),
        people=Count("member", distinct=True),
    )
    by_state = dict(activities.values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    return {
        "team_id": team.pk,
        "year": year,
        "members": members.count(),
        "leaders": members.filter(role=TeamRole.LEADER).count(),
        "activities": sum(by_state.values()),
        "activities_closed": by_state.get(ActivityState.CLOSED, 0),
        "attendances": credited.count(),
        "volunteers_served": sums["people"] or 0,
        "service_minutes": sums["service"] or 0,
        "credited_minutes": sums["credited"] or 0,
    }


@dataclass(frozen=True)
class Term:
    """A school term: `2024-2025-1` is the autumn term (September to January), `-2` the spring (February to August)."""

    code: str
    start: dt.date
    end: dt.date  # exclusive


TERM_RE = re.compile(r"^(\d{4})-(\d{4})-([12])$")


def parse_term(code: str) -> Term:
    m = TERM_RE.match(code or "")
    if not m or int(m.group(2)) != int(m.group(1)) + 1 or not 2000 <= int(m.group(1)) <= 2100:
        raise Invalid(_("学期格式应为 2024-2025-1（秋季）或 2024-2025-2（春季）。"), fields={"term": "invalid"})
    first, second = int(m.group(1)), int(m.group(2))
    if m.group(3) == "1":
        return Term(code, dt.date(first, 9, 1), dt.date(second, 2, 1))
    return Term(code, dt.date(second, 2, 1), dt.date(second, 9, 1))


def current_term(today: dt.date | None = None) -> Term:
    today = today or clock.localdate()
    if today.month >= 9:
        return parse_term(f"{today.year}-{today.year + 1}-1")
    if today.month == 1:
        return parse_term(f"{today.year - 1}-{today.year}-1")
    return parse_term(f"{today.year - 1}-{today.year}-2")


def _local_midnight(day: dt.date) -> dt.datetime:
    return clock.start_of_day(day)


def student_rows(team: Team, term: Term) -> list[dict[str, Any]]:
    """One row per active member of the team: the service credits the ledger posted to them in the term.

    Counted from the legs on the member's `earned` bucket, by posting time: deposits and service records,
    less any reversal of them. The same figures as their statement for those dates."""
    memberships = list(
        TeamMembership.objects.filter(team=team, active=True).select_related("member").order_by("external_id", "pk")
    )
    member_ids = [m.member_id for m in memberships]
    start, end = _local_midnight(term.start), _local_midnight(term.end)
    legs = Leg.objects.filter(
        account__member_id__in=member_ids,
        account__kind=AccountKind.EARNED,
        transaction__created_at__gte=start,
        transaction__created_at__lt=end,
    ).filter(
        Q(transaction__kind__in=SERVICE_KINDS)
        | Q(transaction__kind=TransactionKind.REVERSAL, transaction__reverses__kind__in=SERVICE_KINDS)
    )
    totals = {
        row["account__member_id"]: row
        for row in legs.values("account__member_id").annotate(
            total=Sum("minutes"), services=Count("pk", filter=Q(minutes__gt=0))
        )
    }
    rows = []
    for n, ms in enumerate(memberships, start=1):
        t = totals.get(ms.member_id, {})
        minutes = int(t.get("total") or 0)
        rows.append(
            {
                "n": n,
                "member_id": ms.member_id,
                "external_id": ms.external_id,
                "name": ms.member.name,
                "gender": ms.member.get_gender_display() if ms.member.gender else "",
                "services": int(t.get("services") or 0),
                "minutes": minutes,
                "hours": round(minutes / 60, 2),
            }
        )
    return rows
