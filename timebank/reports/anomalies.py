"""The anomaly report (异常提醒): credits that a careful bank looks at twice.

Three kinds, each read from the ledger's own rows so nothing can be credited around it:
- `daily_over`: more than the head office's daily limit credited to one member on one day (Asia/Shanghai,
  by ledger posting time);
- `yearly_over`: more than the yearly cap credited to one member in a calendar year;
- `record_without_source`: a service record that is not an activity's attendance and credits more than the
  approval threshold (a service record never belongs to an order).

"Credited" is every positive leg on a member's account from a deposit, an order's confirmation, a service
record or an adjustment; transfers, donations and settlement only move minutes already credited. A credit
that was later reversed still shows: the report is about what happened.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, Sum
from django.db.models.functions import ExtractYear, TruncDate

from timebank.approvals.actions import threshold_for
from timebank.ledger.models import Leg, TransactionKind
from timebank.lib.clock import day_bounds
from timebank.members.models import Member
from timebank.orders.models import ServiceRecord
from timebank.orgs.models import Org
from timebank.reports.actions import risk_rules_for
from timebank.reports.stats import SHANGHAI, scope_q

CREDIT_KINDS = (
    TransactionKind.DEPOSIT,
    TransactionKind.SERVICE_REDEMPTION,
    TransactionKind.SERVICE_RECORD,
    TransactionKind.ADJUSTMENT,
)
# A threshold of null turns approvals off; the report still flags records above the contract's default.
DEFAULT_RECORD_THRESHOLD = 600
MAX_ROWS = 200


@dataclass
class Anomaly:
    kind: str
    member_id: int
    minutes: int
    limit_minutes: int
    day: dt.date | None = None
    year: int | None = None
    service_record_id: int | None = None
    member: Member | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "member_id": self.member_id,
            "minutes": self.minutes,
            "limit_minutes": self.limit_minutes,
            "day": self.day,
            "year": self.year,
            "service_record_id": self.service_record_id,
        }


def _member_scope(org: Org, prefix: str) -> Q:
    """Members whose home is in the org's subtree now."""
    return scope_q(org, f"{prefix}bank_id", f"{prefix}home_org")


def _credits(org: Org, start: dt.datetime, end: dt.datetime) -> Any:
    return Leg.objects.filter(
        _member_scope(org, "account__member__"),
        account__member__isnull=False,
        minutes__gt=0,
        transaction__kind__in=CREDIT_KINDS,
        transaction__created_at__gte=start,
        transaction__created_at__lt=end,
    )


def find_anomalies(org: Org, date_from: dt.date, date_to: dt.date) -> list[Anomaly]:
    """The anomalies of the org's subtree in [date_from, date_to] (yearly: the calendar years it touches)."""
    bank = org.bank
    risk_rules = risk_rules_for(bank)
    daily_limit = risk_rules.anomaly_daily_hours * 60
    yearly_limit = risk_rules.anomaly_yearly_hours * 60
    record_limit = threshold_for(bank.pk) or DEFAULT_RECORD_THRESHOLD

    start, end = day_bounds(date_from, date_to)
    assert start is not None and end is not None
    found: list[Anomaly] = []
    daily = (
        _credits(org, start, end)
        .annotate(day=TruncDate("transaction__created_at", tzinfo=SHANGHAI))
        .values("account__member_id", "day")
        .annotate(total=Sum("minutes"))
        .filter(total__gt=daily_limit)
        .order_by("-total", "account__member_id")[:MAX_ROWS]
    )
    found += [Anomaly("daily_over", r["account__member_id"], int(r["total"]), daily_limit, day=r["day"]) for r in daily]

    year_start, _ = day_bounds(date_from.replace(month=1, day=1), None)
    _, year_end = day_bounds(None, date_to.replace(month=12, day=31))
    assert year_start is not None and year_end is not None
    yearly = (
        _credits(org, year_start, year_end)
        .annotate(year=ExtractYear("transaction__created_at", tzinfo=SHANGHAI))
        .values("account__member_id", "year")
        .annotate(total=Sum("minutes"))
        .filter(total__gt=yearly_limit)
        .order_by("-total", "account__member_id")[:MAX_ROWS]
    )
    found += [
        Anomaly("yearly_over", r["account__member_id"], int(r["total"]), yearly_limit, year=int(r["year"]))
        for r in yearly
    ]

    records = (
        ServiceRecord.objects.filter(
            _member_scope(org, "volunteer__"),
            transaction__created_at__gte=start,
            transaction__created_at__lt=end,
            credited_minutes__gt=record_limit,
            activity_signup__isnull=True,
        )
        .values_list("pk", "volunteer_id", "credited_minutes", "served_at")
        .order_by("-credited_minutes", "pk")[:MAX_ROWS]
    )
    found += [
        Anomaly(
            "record_without_source",
            volunteer_id,
            minutes,
            record_limit,
            day=served_at.astimezone(SHANGHAI).date(),
            service_record_id=pk,
        )
        for pk, volunteer_id, minutes, served_at in records
    ]
    people = Member.objects.select_related("home_org").in_bulk({a.member_id for a in found})
    for a in found:
        a.member = people.get(a.member_id)
    return found
