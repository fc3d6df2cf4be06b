"""The daily summary the posting path keeps (`DailySummary`) equals the ledger counted again, whatever posts."""

from __future__ import annotations

import datetime as dt
import importlib
import threading
from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.conftest import World, new_id_number
from tests.test_orders import items as items
from timebank.ledger import actions
from timebank.ledger.interbank import do_approve_move, do_request_move
from timebank.ledger.models import SUMMARY_STRIPES, DailySummary, Transaction
from timebank.ledger.settlement import do_settle
from timebank.ledger.summary import fill, summary_problems, whole_days
from timebank.ledger.verify import verify
from timebank.lib.clock import day_bounds
from timebank.members.actions import MemberInput, do_register_member
from timebank.orders.records import do_service_record
from timebank.orgs.actions import do_create_org
from timebank.reports.stats import compute, credited_minutes, ledger_transactions

SHANGHAI = ZoneInfo("Asia/Shanghai")
Totals = dict[tuple[dt.date, str], tuple[int, int]]


def recount(bank_id: int) -> Totals:
    """Per Shanghai day and kind, the bank's transactions and minutes, from the transaction rows in Python."""
    found: dict[tuple[dt.date, str], list[int]] = defaultdict(lambda: [0, 0])
    for created_at, kind, minutes in Transaction.objects.filter(bank_id=bank_id).values_list(
        "created_at", "kind", "minutes"
    ):
        row = found[(created_at.astimezone(SHANGHAI).date(), kind)]
        row[0] += 1
        row[1] += minutes
    return {key: (n, m) for key, (n, m) in found.items()}


def kept(bank_id: int) -> Totals:
    """The summary's rows for the bank, stripes added up."""
    found: dict[tuple[dt.date, str], list[int]] = defaultdict(lambda: [0, 0])
    for day, kind, n, m in DailySummary.objects.filter(bank_id=bank_id).values_list(
        "day", "kind", "transactions", "minutes"
    ):
        row = found[(day, kind)]
        row[0] += n
        row[1] += m
    return {key: (n, m) for key, (n, m) in found.items() if (n, m) != (0, 0)}


def post_one_of_each(world: World, items: dict) -> None:
    """Deposits, adjustments, a relative transfer, a donation, a withdrawal, a service record, a reversal, a
    settlement and an inter-bank move: every way credits move."""
    volunteer, recipient = world.members["volunteer"], world.members["recipient"]
    actions.do_adjustment(None, member=recipient, minutes=600, bucket="reserve", reason="开户")
    actions.do_adjustment(None, member=volunteer, minutes=90, bucket="goods", reason="开户")
    actions.do_deposit(None, volunteer=volunteer, minutes=120, payer="subsidy")
    actions.do_deposit(
        None,
        volunteer=world.members["neighbour"],
        minutes=45,
        payer="recipient",
        payer_member=recipient,
        kind="service_redemption",
    )
    actions.do_transfer(None, from_member=recipient, to_member=world.members["relative"], minutes=30, kind="relative")
    actions.do_transfer(None, from_member=recipient, to_member=None, minutes=20, kind="donation")
    actions.do_withdrawal(None, member=recipient, minutes=15)
    do_service_record(
        None,
        volunteer=world.members["neighbour"],
        service_item=items["repair"],
        minutes=30,
        served_at=timezone.now(),
        idempotency_key="summary-sr",
    )
    mistake, _replayed = actions.do_deposit(None, volunteer=volunteer, minutes=77, payer="subsidy")
    actions.do_reversal(None, original=mistake, reason="记错了")
    do_settle(None, world.bank, timezone.localdate())
    move = do_request_move(None, volunteer, world.other_community)
    do_approve_move(world.users["head_office_admin"], move, side="source")
    done = do_approve_move(world.users["other_bank_admin"], move, side="target")
    assert done.status == "completed"


def test_the_summary_equals_a_recount_after_every_kind_of_posting(world: World, items: dict) -> None:
    post_one_of_each(world, items)
    kinds = set(Transaction.objects.values_list("kind", flat=True))
    assert {"deposit", "transfer", "donation", "withdrawal", "reversal", "service_record", "settlement"} <= kinds
    assert {"adjustment", "service_redemption"} <= kinds
    for bank in (world.bank, world.other_bank):
        assert kept(bank.pk) == recount(bank.pk) != {}
        assert summary_problems(bank.pk) == []
    # The inter-bank move is counted once in each bank: out of the source, into the target.
    assert kept(world.other_bank.pk) == {(timezone.localdate(), "transfer"): (1, 210)}
    report = verify()
    assert report.ok, report.problems


def test_the_head_office_stats_read_the_summary_and_give_the_same_figures(world: World, items: dict) -> None:
    post_one_of_each(world, items)
    today = timezone.localdate()
    start, end = day_bounds(today, today)
    direct = Transaction.objects.filter(bank=world.bank, created_at__gte=start, created_at__lt=end)
    assert ledger_transactions(world.bank, start, end) == direct.count() == 12
    assert ledger_transactions(world.bank, None, None) == Transaction.objects.filter(bank=world.bank).count()
    # Bounds inside a day are not whole days: read from the transactions, and the same for today.
    noon = dt.datetime.combine(today, dt.time(12), tzinfo=SHANGHAI)
    assert whole_days(noon, end) is None
    assert ledger_transactions(world.bank, noon, end) == direct.filter(created_at__gte=noon).count()
    # The service record's credits (30 × 2) from the summary, as from its transaction.
    assert credited_minutes(world.bank, start, end) == credited_minutes(world.bank, noon - dt.timedelta(hours=12), end)
    stats = compute(world.bank, today, today)
    assert stats.ledger_transactions == 12 and stats.service_records == 1
    yesterday = compute(world.bank, None, today - dt.timedelta(days=1))
    assert yesterday.ledger_transactions == 0 and yesterday.credited_minutes == 0
    tomorrow = compute(world.bank, today + dt.timedelta(days=1), None)
    assert tomorrow.ledger_transactions == 0


def test_days_are_the_deployments_days() -> None:
    from timebank.ledger.summary import day_of

    # 16:30 UTC on 1 January is 00:30 on 2 January in Shanghai.
    assert day_of(dt.datetime(2026, 1, 1, 16, 30, tzinfo=dt.UTC)) == dt.date(2026, 1, 2)
    assert day_of(dt.datetime(2026, 1, 1, 15, 59, tzinfo=dt.UTC)) == dt.date(2026, 1, 1)
    first, last = dt.date(2026, 3, 1), dt.date(2026, 3, 31)
    assert whole_days(*day_bounds(first, last)) == (first, last)
    assert whole_days(*day_bounds(None, last)) == (None, last)
    assert whole_days(None, None) == (None, None)
    # Midnight in UTC is 08:00 in Shanghai: not a whole day there.
    assert whole_days(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), None) is None


def test_one_day_bounds_for_the_sheet_and_the_stats(world: World) -> None:
    """`lib.clock.day_bounds` is the one home of the bank's day boundaries: the paper sheet's day is the stats'
    one-day period, Shanghai midnight to midnight (16:00 UTC the day before)."""
    from timebank.orders.sheets import day_orders

    day = dt.date(2026, 3, 2)
    start, end = day_bounds(day, day)
    assert (start, end) == (
        dt.datetime(2026, 3, 1, 16, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 2, 16, tzinfo=dt.UTC),
    )
    assert day_bounds(None, None) == (None, None) and day_bounds(day, None) == (start, None)
    where: list[Any] = list(day_orders(world.users["staff"], day).query.where.children)
    on_start = [
        c for c in where if getattr(getattr(getattr(c, "lhs", None), "target", None), "name", "") == "scheduled_start"
    ]
    bounds = {c.lookup_name: c.rhs for c in on_start}
    assert bounds == {"gte": start, "lt": end}


def test_a_summary_that_disagrees_with_the_ledger_is_reported(world: World) -> None:
    actions.do_adjustment(None, member=world.members["recipient"], minutes=60, bucket="reserve", reason="开户")
    assert verify().ok
    row = DailySummary.objects.get(bank=world.bank, kind="adjustment")
    DailySummary.objects.filter(pk=row.pk).update(minutes=row.minutes + 1)
    problems = verify().problems
    assert any("daily summary" in p and "adjustment" in p and "61 minutes" in p for p in problems), problems
    DailySummary.objects.filter(pk=row.pk).delete()
    assert any("holds 0 transactions" in p for p in verify().problems)
    # A summary row for a day with no transactions is reported too.
    DailySummary.objects.create(bank=world.bank, day=dt.date(2020, 1, 1), kind="deposit", stripe=0, transactions=1)
    assert any("2020-01-01" in p for p in summary_problems(world.bank.pk))


class _SchemaEditor:
    """Enough of a schema editor to run the data migration's function inside the test's transaction."""

    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, ())


def test_the_data_migration_and_the_fill_rebuild_what_the_posting_path_kept(world: World, items: dict) -> None:
    post_one_of_each(world, items)
    before = {bank: kept(bank) for bank in (world.bank.pk, world.other_bank.pk)}
    migration = importlib.import_module("timebank.ledger.migrations.0011_fill_daily_summary")
    for rebuild in (lambda: migration.forward(None, _SchemaEditor()), fill):
        DailySummary.objects.all().delete()
        assert not verify().ok  # nothing kept while the ledger has transactions
        rebuild()
        assert {bank: kept(bank) for bank in before} == before
        assert verify().ok


THREADS = 8
POSTS_PER_THREAD = 15


@pytest.mark.django_db(transaction=True)
def test_parallel_postings_to_one_bank_day_lose_no_count() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock contention is a PostgreSQL test")
    bank = do_create_org(None, name="并发汇总银行", kind="head_office", parent=None)
    community = do_create_org(None, name="社区", kind="sub_branch", parent=bank)
    members = [
        do_register_member(
            None,
            home_org=community,
            data=MemberInput(name=f"会员{i}", id_number=new_id_number(dt.date(1950, 1, 1 + i))),
            approved=True,
        )
        for i in range(THREADS)
    ]
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(POSTS_PER_THREAD):
                # Each thread its own member: the only rows the threads share are the bank's and its summary's.
                actions.do_adjustment(None, member=members[n], minutes=1 + i, bucket="reserve", reason="并发")
        except BaseException as exc:  # a lost update, deadlock or error fails the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors
    expected: Any = (THREADS * POSTS_PER_THREAD, THREADS * sum(range(1, POSTS_PER_THREAD + 1)))
    assert kept(bank.pk) == {(timezone.localdate(), "adjustment"): expected} == recount(bank.pk)
    stripes = set(DailySummary.objects.filter(bank=bank).values_list("stripe", flat=True))
    assert len(stripes) == SUMMARY_STRIPES
    report = verify([bank.pk])
    assert report.ok, report.problems
