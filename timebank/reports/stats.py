"""The bank's own measures for any org subtree and period, computed from the same rows the ledger keeps.

Every figure is a query over orders, service records and ledger rows — nothing is counted twice or kept
separately — so the numbers always reconcile with the ledger.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from timebank.ledger.models import Account, Leg, Transaction
from timebank.members.models import Member, MemberStatus
from timebank.orders.models import Order, OrderState, ServiceRecord
from timebank.orgs.models import Org, OrgKind

SHANGHAI = ZoneInfo("Asia/Shanghai")


@dataclass
class Stats:
    org_id: int
    date_from: dt.date | None
    date_to: dt.date | None
    members: int
    volunteers: int
    recipients: int
    referred_members: int
    new_members: int
    referred_volunteers: int
    orders_completed: int
    services_completed: int
    service_minutes: int
    credited_minutes: int
    service_records: int
    ledger_transactions: int
    outstanding_minutes: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def day_bounds(date_from: dt.date | None, date_to: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """[start of `from`, start of the day after `to`) in Asia/Shanghai."""
    start = dt.datetime.combine(date_from, dt.time(), tzinfo=SHANGHAI) if date_from else None
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tzinfo=SHANGHAI) if date_to else None
    return start, end


def _in(field: str, start: dt.datetime | None, end: dt.datetime | None) -> Q:
    q = Q()
    if start is not None:
        q &= Q(**{f"{field}__gte": start})
    if end is not None:
        q &= Q(**{f"{field}__lt": end})
    return q


def scope_q(org: Org, bank_field: str, path_field: str) -> Q:
    """Rows of the org's subtree. A head office's rows are found by their bank id (indexed, no join to the
    org tree); a lower org's by the materialised path prefix."""
    if org.kind == OrgKind.HEAD_OFFICE:
        return Q(**{bank_field: org.pk})
    return Q(**{f"{path_field}__path__startswith": org.path})


def confirmed_orders(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> QuerySet[Order]:
    """Orders of the subtree confirmed (credits posted) in [start, end)."""
    return Order.objects.filter(
        scope_q(org, "bank_id", "org"),
        state__in=(OrderState.CONFIRMED, OrderState.REVIEWED),
        transaction__isnull=False,
    ).filter(_in("confirmed_at", start, end))


def posted_records(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> QuerySet[ServiceRecord]:
    """Service records of the subtree posted to the ledger in [start, end)."""
    return ServiceRecord.objects.filter(scope_q(org, "bank_id", "org")).filter(
        _in("transaction__created_at", start, end)
    )


def credited_minutes(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> int:
    """Weighted minutes credited for service in the subtree in [start, end): the stats' `credited_minutes`."""
    a = confirmed_orders(org, start, end).aggregate(s=Sum("credited_minutes"))["s"] or 0
    b = posted_records(org, start, end).aggregate(s=Sum("credited_minutes"))["s"] or 0
    return int(a) + int(b)


def compute(org: Org, date_from: dt.date | None = None, date_to: dt.date | None = None) -> Stats:
    start, end = day_bounds(date_from, date_to)
    home = Member.objects.filter(scope_q(org, "bank_id", "home_org"))
    active = home.filter(status=MemberStatus.ACTIVE)
    joined = active.filter(_in("created_at", start, end))
    orders = confirmed_orders(org, start, end)
    order_sums = orders.aggregate(actual=Sum("actual_minutes"), credited=Sum("credited_minutes"), n=Count("pk"))
    records = posted_records(org, start, end)
    record_sums = records.aggregate(actual=Sum("minutes"), credited=Sum("credited_minutes"), n=Count("pk"))
    # Transactions with a leg on a member of the subtree: a semi-join, each transaction counted once.
    member_leg = Leg.objects.filter(transaction=OuterRef("pk")).filter(
        scope_q(org, "account__bank_id", "account__member__home_org"), account__member__isnull=False
    )
    transactions = (
        Transaction.objects.filter(bank_id=org.pk if org.kind == OrgKind.HEAD_OFFICE else org.head_office_id)
        .filter(_in("created_at", start, end))
        .filter(Exists(member_leg))
        .count()
    )
    outstanding = Account.objects.filter(
        scope_q(org, "member__bank_id", "member__home_org"), member__isnull=False
    ).aggregate(s=Sum("balance_minutes"))["s"]
    return Stats(
        org_id=org.pk,
        date_from=date_from,
        date_to=date_to,
        members=active.count(),
        volunteers=active.filter(is_volunteer=True).count(),
        recipients=active.filter(is_recipient=True).count(),
        referred_members=active.filter(referred_by__isnull=False).count(),
        new_members=joined.count(),
        referred_volunteers=joined.filter(is_volunteer=True, referred_by__isnull=False).count(),
        orders_completed=order_sums["n"],
        services_completed=order_sums["n"] + record_sums["n"],
        service_minutes=(order_sums["actual"] or 0) + (record_sums["actual"] or 0),
        credited_minutes=(order_sums["credited"] or 0) + (record_sums["credited"] or 0),
        service_records=record_sums["n"],
        ledger_transactions=transactions,
        outstanding_minutes=outstanding or 0,
    )
