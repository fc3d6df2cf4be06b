"""The bank's own measures for any org subtree and period, computed from the same rows the ledger keeps.

Every figure is a query over members, orders, service records and ledger rows, so the numbers always reconcile
with the ledger. For a head office and whole days three summaries are read instead, each kept in the same database
transaction as the rows it counts and recounted by `verify`: the ledger's daily summary (`timebank.ledger.summary`,
kept by the posting path), the services' daily summary (`timebank.orders.summary`, kept where orders are credited
and service records posted) and the active members by join day (`timebank.members.counts`, kept by triggers on the
members' table). Partial days and lower orgs count the rows, as before.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from timebank.ledger.models import Account, Leg, Transaction, TransactionKind
from timebank.ledger.summary import summed, whole_days
from timebank.lib.clock import day_bounds
from timebank.members.counts import counted
from timebank.members.models import Member, MemberStatus
from timebank.orders.models import Order, ServiceRecord, ServiceSource
from timebank.orders.summary import summed as summed_services
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
    return (
        Order.objects.credited()
        .filter(scope_q(org, "bank_id", "org"), transaction__isnull=False)
        .filter(_in("confirmed_at", start, end))
    )


def posted_records(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> QuerySet[ServiceRecord]:
    """Service records of the subtree posted to the ledger in [start, end)."""
    # Every service record's transaction is of kind service_record: saying so lets the planner use that.
    same_bank = Q(transaction__bank_id=org.pk) if org.kind == OrgKind.HEAD_OFFICE else Q()
    return ServiceRecord.objects.filter(scope_q(org, "bank_id", "org"), same_bank).filter(
        _in("transaction__created_at", start, end), transaction__kind=TransactionKind.SERVICE_RECORD
    )


def credited_minutes(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> int:
    """Weighted minutes credited for service in the subtree in [start, end): the stats' `credited_minutes`.

    For a head office the service records' part is read from their ledger transactions (kind service_record,
    one per record, moving exactly the credited minutes) without joining the records; tests check both agree."""
    a = confirmed_orders(org, start, end).aggregate(s=Sum("credited_minutes"))["s"] or 0
    days = whole_days(start, end)
    if org.kind == OrgKind.HEAD_OFFICE and days is not None:
        b = summed(org.pk, *days, kind=TransactionKind.SERVICE_RECORD)[1]  # the same sum, kept per day
    elif org.kind == OrgKind.HEAD_OFFICE:
        posted = Transaction.objects.filter(bank_id=org.pk, kind=TransactionKind.SERVICE_RECORD)
        b = posted.filter(_in("created_at", start, end)).aggregate(s=Sum("minutes"))["s"] or 0
    else:
        b = posted_records(org, start, end).aggregate(s=Sum("credited_minutes"))["s"] or 0
    return int(a) + int(b)


def compute(org: Org, date_from: dt.date | None = None, date_to: dt.date | None = None) -> Stats:
    start, end = day_bounds(date_from, date_to)
    people = head_counts(org, start, end)
    order_sums = service_sums(org, start, end, ServiceSource.ORDER)
    record_sums = service_sums(org, start, end, ServiceSource.RECORD)
    outstanding = outstanding_minutes(org)
    return Stats(
        org_id=org.pk,
        date_from=date_from,
        date_to=date_to,
        members=people["members"],
        volunteers=people["volunteers"],
        recipients=people["recipients"],
        referred_members=people["referred"],
        new_members=people["joined"],
        referred_volunteers=people["referred_volunteers"],
        orders_completed=order_sums["n"],
        services_completed=order_sums["n"] + record_sums["n"],
        service_minutes=order_sums["actual"] + record_sums["actual"],
        credited_minutes=order_sums["credited"] + record_sums["credited"],
        service_records=record_sums["n"],
        ledger_transactions=ledger_transactions(org, start, end),
        outstanding_minutes=outstanding or 0,
    )


def head_counts(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> dict[str, int]:
    """The subtree's active members: members, volunteers, recipients, referred, and of those who joined in
    [start, end) `joined` and `referred_volunteers`. A head office's, for whole days, from the counts the members'
    triggers keep per join day (`timebank.members.counts`); otherwise one pass over the members."""
    days = whole_days(start, end)
    if org.kind == OrgKind.HEAD_OFFICE and days is not None:
        return counted(org.pk, *days)
    joined = _in("created_at", start, end)
    return Member.objects.filter(scope_q(org, "bank_id", "home_org"), status=MemberStatus.ACTIVE).aggregate(
        members=Count("pk"),
        volunteers=Count("pk", filter=Q(is_volunteer=True)),
        recipients=Count("pk", filter=Q(is_recipient=True)),
        referred=Count("pk", filter=Q(referred_by__isnull=False)),
        joined=Count("pk", filter=joined) if joined else Count("pk"),
        referred_volunteers=Count("pk", filter=joined & Q(is_volunteer=True, referred_by__isnull=False)),
    )


def service_sums(org: Org, start: dt.datetime | None, end: dt.datetime | None, source: str) -> dict[str, int]:
    """The confirmed orders' (or posted service records') count, actual and credited minutes in [start, end).

    A head office's whole days are read from the services' daily summary (`timebank.orders.summary`), which the
    orders' actions keep where they credit; otherwise the rows are counted (`confirmed_orders`, `posted_records`)."""
    days = whole_days(start, end)
    if org.kind == OrgKind.HEAD_OFFICE and days is not None:
        n, actual, credited = summed_services(org.pk, *days, source=source)
        return {"n": n, "actual": actual, "credited": credited}
    if source == ServiceSource.ORDER:
        rows = confirmed_orders(org, start, end).aggregate(
            actual=Sum("actual_minutes"), credited=Sum("credited_minutes"), n=Count("pk")
        )
    else:
        rows = posted_records(org, start, end).aggregate(
            actual=Sum("minutes"), credited=Sum("credited_minutes"), n=Count("pk")
        )
    return {key: int(value or 0) for key, value in rows.items()}


def outstanding_minutes(org: Org) -> int:
    """The balances of the subtree's members. For a head office: minus the balances of its bank's few system
    accounts, by double entry (every transaction's legs sum to zero and stay within one bank's accounts, so a
    bank's accounts sum to zero); tests compare it with the direct sum. Below: the members' accounts."""
    if org.kind == OrgKind.HEAD_OFFICE:
        system = Account.objects.filter(bank_id=org.pk, member__isnull=True).aggregate(s=Sum("balance_minutes"))
        return -int(system["s"] or 0)
    found = Account.objects.filter(member__home_org__path__startswith=org.path).aggregate(s=Sum("balance_minutes"))
    return int(found["s"] or 0)


def ledger_transactions(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> int:
    """Transactions in [start, end) with a leg on a member of the subtree, each counted once.

    For a head office that is every transaction of its bank: each posting moves some member's credits (deposits,
    withdrawals, transfers, donations, adjustments, settlement, redemptions, inter-bank moves, and reversals of
    these), and a transaction's legs stay within its bank's accounts. tests/test_stats.py checks this against
    the semi-join. The posting path keeps that count per day (`DailySummary`), so for whole days it is read from
    there. Below a head office, the semi-join over the subtree's members' legs."""
    if org.kind == OrgKind.HEAD_OFFICE:
        days = whole_days(start, end)
        if days is not None:
            return summed(org.pk, *days)[0]
        return Transaction.objects.filter(bank_id=org.pk).filter(_in("created_at", start, end)).count()
    return member_leg_transactions(org, start, end)


def member_leg_transactions(org: Org, start: dt.datetime | None, end: dt.datetime | None) -> int:
    member_leg = Leg.objects.filter(transaction=OuterRef("pk"), account__member__home_org__path__startswith=org.path)
    bank_id = org.pk if org.kind == OrgKind.HEAD_OFFICE else org.head_office_id
    return (
        Transaction.objects.filter(bank_id=bank_id)
        .filter(_in("created_at", start, end))
        .filter(Exists(member_leg))
        .count()
    )
