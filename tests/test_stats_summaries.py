"""The head office's stats read two more summaries (issue 17): the services' daily summary (`timebank.orders.summary`,
kept where orders are credited and service records posted) and the active members by join day
(`timebank.members.counts`, kept by triggers on the members' table). With them the stats equal the old scans, on a
world with orders and records in several states and on several days, members approved, suspended, leaving, edited
and referred, and a reversal; and `verify` reports a summary that disagrees with the rows."""

from __future__ import annotations

import datetime as dt
import importlib
import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, connections
from django.utils import timezone

from tests.conftest import World, is_postgres, new_id_number
from tests.test_orders import items as items
from tests.test_orders import order_body, run_loop, serve
from timebank.catalogue.actions import do_create_service_item
from timebank.ledger import actions as ledger
from timebank.ledger.verify import verify
from timebank.members.actions import (
    MemberInput,
    do_member_leaves,
    do_reactivate_member,
    do_register_member,
    do_suspend_member,
    do_update_member,
)
from timebank.members.counts import TRIGGERS, count_problems, counted
from timebank.members.models import DailyMemberCount, Member
from timebank.orders import summary as services
from timebank.orders.models import DailyServiceSummary, Order, ServiceRecord
from timebank.orders.records import do_service_record
from timebank.orgs.actions import do_create_org
from timebank.orgs.models import Org
from timebank.reports import stats as stats_module
from timebank.reports.stats import Stats, compute

SHANGHAI = ZoneInfo("Asia/Shanghai")


@contextmanager
def days_ago(days: int, hour: int = 10, minute: int = 0) -> Iterator[None]:
    """Everything inside happens `days` before today at hour:minute in Shanghai (the clock moving on from there):
    Django's clock is patched, which the clock seam and the tests' helpers both read."""
    real_now = timezone.now
    started = real_now()
    day = timezone.localdate() - dt.timedelta(days=days)
    moment = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=SHANGHAI)
    with mock.patch("django.utils.timezone.now", lambda: moment + (real_now() - started)):
        yield


def scanned(org: Org, first: dt.date | None, last: dt.date | None) -> Stats:
    """The same stats with every summary bypassed: the rows counted, as before issue 17 (the benchmark's
    stats_scan does the same)."""
    with mock.patch.object(stats_module, "whole_days", lambda start, end: None):
        return compute(org, first, last)


def periods() -> list[tuple[dt.date | None, dt.date | None]]:
    today = timezone.localdate()
    day = lambda n: today - dt.timedelta(days=n)  # noqa: E731
    return [
        (None, None),
        (today, today),
        (day(3), day(3)),
        (day(4), today),
        (None, day(2)),
        (day(1), None),
        (day(10), day(6)),
        (day(400), day(390)),
    ]


def assert_summaries_agree(world: World) -> None:
    for org, (first, last) in itertools.product((world.bank, world.other_bank), periods()):
        assert compute(org, first, last) == scanned(org, first, last), (org.name, first, last)
        assert services.summary_problems(org.pk) == []
        assert count_problems(org.pk) == []
    report = verify()
    assert report.ok, report.problems


def join(world: World, name: str, roles: list[str], *, referrer: Member | None = None, approved: bool = True) -> Member:
    return do_register_member(
        None,
        home_org=world.community,
        data=MemberInput(
            name=name,
            id_number=new_id_number(),
            roles=roles,
            phone="13900000000",
            referred_by_id=referrer.pk if referrer else None,
        ),
        approved=approved,
    )


def order_in(world: World, items: dict, state: str) -> int:
    """An order of the relative's, left in `state` (requested, dispatched, completed, disputed, cancelled)."""
    created = world.api("relative").post("/api/v1/orders", order_body(world, items["cleaning"], 30))
    assert created.status_code == 201, created.content
    oid = int(created.json()["id"])
    if state == "cancelled":
        assert world.api("relative").post(f"/api/v1/orders/{oid}/cancel", {"reason": "不用了"}).status_code == 200
        return oid
    if state == "requested":
        return oid
    body = {"volunteer_id": world.members["volunteer"].pk}
    assert world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", body).status_code == 200
    if state == "dispatched":
        return oid
    serve(world, oid, 30)
    if state == "disputed":
        resp = world.api("relative").post(f"/api/v1/orders/{oid}/dispute", {"reason": "没打扫干净"})
        assert resp.status_code == 200, resp.content
    return oid


def build(world: World, items: dict) -> dict[str, int]:
    """Orders and records in several states over several days; members joining, edited, suspended, leaving."""
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=3000, bucket="reserve", reason="开户")
    Member.objects.filter(bank=world.bank).update(created_at=timezone.now() - dt.timedelta(days=395))
    with days_ago(8):
        run_loop(world, items["cleaning"], 60)
        join(world, "八天前的志愿者", ["volunteer"], referrer=world.members["volunteer"])
    with days_ago(3):
        run_loop(world, items["repair"], 45)  # ×2 credited
        run_loop(world, items["cleaning"], 20, payer="subsidy")
        for state in ("requested", "dispatched", "completed", "disputed", "cancelled"):
            order_in(world, items, state)
        do_service_record(
            None,
            volunteer=world.members["neighbour"],
            service_item=items["repair"],
            minutes=50,
            served_at=timezone.now(),
        )
        leaving = join(world, "三天前加入后退出", ["recipient"])
        suspended = join(world, "三天前加入后暂停", ["volunteer", "recipient"], referrer=world.members["volunteer"])
    # 23:50 in Shanghai is 15:50 UTC: the order and the record count on that Shanghai day, not the UTC one.
    with days_ago(2, hour=23, minute=50):
        late = run_loop(world, items["cleaning"], 25)
        late_record, _ = do_service_record(
            None,
            volunteer=world.members["volunteer"],
            service_item=items["cleaning"],
            minutes=35,
            served_at=timezone.now(),
        )
    assert isinstance(late_record, ServiceRecord)
    with days_ago(1):
        mistake, _ = do_service_record(
            None,
            volunteer=world.members["neighbour"],
            service_item=items["cleaning"],
            minutes=40,
            served_at=timezone.now(),
        )
        assert isinstance(mistake, ServiceRecord)
        # A reversal moves the ledger, not the record: both the stats and their scan still count the record.
        ledger.do_reversal(None, original=mistake.transaction, reason="记错了")
        disputed = order_in(world, items, "disputed")
        resolved = world.api("staff").post(f"/api/v1/orders/{disputed}/confirm", {"actual_minutes": 30})
        assert resolved.status_code == 200, resolved.content
        do_member_leaves(None, leaving)
        do_suspend_member(None, suspended)
    # Today: more members, one edited from volunteer to recipient, one referred afterwards, one reactivated.
    pending = join(world, "待审核", ["volunteer"], approved=False)
    edited = join(world, "改了角色", ["volunteer"])
    do_update_member(None, edited, MemberInput(roles=["recipient"]))
    do_update_member(None, world.members["neighbour"], MemberInput(referred_by_id=world.members["volunteer"].pk))
    do_reactivate_member(None, Member.objects.get(pk=suspended.pk))
    run_loop(world, items["cleaning"], 15)
    do_service_record(
        None, volunteer=world.members["volunteer"], service_item=items["cleaning"], minutes=10, served_at=timezone.now()
    )
    return {"late_order": int(late["id"]), "late_record": late_record.pk, "pending": pending.pk}


def test_the_stats_with_the_summaries_equal_the_scans(world: World, items: dict) -> None:
    ids = build(world, items)
    assert_summaries_agree(world)
    today = timezone.localdate()
    stats = compute(world.bank, None, None)
    assert stats.orders_completed == 6 and stats.service_records == 4
    states = set(Order.objects.filter(bank=world.bank).values_list("state", flat=True))
    assert states == {"requested", "dispatched", "completed", "disputed", "cancelled", "confirmed", "reviewed"}
    # The order and the record made at 23:50 count on that Shanghai day (the UTC day is the same, 15:50).
    late_day = today - dt.timedelta(days=2)
    that_day = compute(world.bank, late_day, late_day)
    assert (that_day.orders_completed, that_day.service_records) == (1, 1)
    assert Order.objects.get(pk=ids["late_order"]).confirmed_at.astimezone(SHANGHAI).date() == late_day  # type: ignore[union-attr]
    # Head counts: the pending one and the one who left are not counted; the one reactivated is.
    assert stats.new_members == stats.members == Member.objects.filter(bank=world.bank, status="active").count()
    joined_3_days_ago = compute(world.bank, today - dt.timedelta(days=3), today - dt.timedelta(days=3))
    assert joined_3_days_ago.new_members == 1 and joined_3_days_ago.referred_volunteers == 1
    assert counted(world.bank.pk, today, today)["joined"] == 1  # the edited one; the pending one is not active


def test_the_stats_read_the_summaries(world: World, items: dict) -> None:
    """Not a recount in disguise: with the summaries emptied the head office's whole-day stats drop to zero, while
    a lower org's and a partial day's are still counted from the rows."""
    build(world, items)
    before = compute(world.bank, None, None)
    DailyServiceSummary.objects.all().delete()
    DailyMemberCount.objects.all().delete()
    emptied = compute(world.bank, None, None)
    assert (emptied.orders_completed, emptied.service_records, emptied.members) == (0, 0, 0)
    assert (before.orders_completed, before.members) != (0, 0)
    assert compute(world.community, None, None) == scanned(world.community, None, None)
    assert scanned(world.bank, None, None) == before


def test_a_summary_that_disagrees_with_the_rows_is_reported(world: World, items: dict) -> None:
    build(world, items)
    assert verify().ok
    row = DailyServiceSummary.objects.filter(bank=world.bank, source="order").first()
    assert row is not None
    DailyServiceSummary.objects.filter(pk=row.pk).update(credited_minutes=row.credited_minutes + 1)
    problems = verify().problems
    assert any("services' daily summary" in p and f"{row.day}" in p and "(order)" in p for p in problems), problems
    DailyServiceSummary.objects.filter(pk=row.pk).update(credited_minutes=row.credited_minutes)
    record = DailyServiceSummary.objects.filter(bank=world.bank, source="record").first()
    assert record is not None
    DailyServiceSummary.objects.filter(pk=record.pk).delete()
    assert any("(record) holds 0 services" in p for p in verify().problems)
    DailyServiceSummary.objects.create(bank=record.bank, day=record.day, source="record", stripe=record.stripe)
    DailyServiceSummary.objects.filter(bank=world.bank, source="record", day=record.day, stripe=record.stripe).update(
        services=record.services, minutes=record.minutes, credited_minutes=record.credited_minutes
    )
    assert verify().ok
    # The head counts kept by the triggers: one volunteer too many on some join day.
    counts = DailyMemberCount.objects.filter(bank=world.bank).first()
    assert counts is not None
    DailyMemberCount.objects.filter(pk=counts.pk).update(volunteers=counts.volunteers + 1)
    problems = verify().problems
    assert any("head counts kept" in p and f"{counts.day}" in p for p in problems), problems
    DailyMemberCount.objects.filter(pk=counts.pk).update(volunteers=counts.volunteers)
    # A summary row for a day with nothing on it is reported too.
    DailyServiceSummary.objects.create(bank=world.bank, day=dt.date(2020, 1, 1), source="order", stripe=0, services=1)
    DailyMemberCount.objects.create(bank=world.bank, day=dt.date(2020, 1, 1), stripe=0, members=1)
    assert any("2020-01-01" in p for p in services.summary_problems(world.bank.pk))
    assert any("2020-01-01" in p for p in count_problems(world.bank.pk))


class _SchemaEditor:
    """Enough of a schema editor to run a data migration's function inside the test's transaction."""

    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, ())


def kept() -> tuple[dict, dict]:
    def sums(rows: Iterator[tuple]) -> dict:
        found: dict = {}
        for key, *values in rows:
            found[key] = [a + b for a, b in zip(found.get(key, [0] * len(values)), values, strict=True)]
        return {k: v for k, v in found.items() if any(v)}

    service_rows = DailyServiceSummary.objects.values_list("bank_id", "day", "source", "services", "minutes")
    member_rows = DailyMemberCount.objects.values_list("bank_id", "day", "members", "volunteers", "referred")
    return (
        sums(((b, d, s), n, m) for b, d, s, n, m in service_rows.iterator()),
        sums(((b, d), *rest) for b, d, *rest in member_rows.iterator()),
    )


def test_the_data_migrations_rebuild_what_was_kept(world: World, items: dict) -> None:
    build(world, items)
    before = kept()
    assert all(before)
    fill_services = importlib.import_module("timebank.orders.migrations.0005_fill_daily_service_summary")
    for rebuild in (lambda: fill_services.forward(None, _SchemaEditor()), services.fill):
        DailyServiceSummary.objects.all().delete()
        assert not verify().ok
        rebuild()
        assert kept() == before
        assert verify().ok
    counts = importlib.import_module("timebank.members.migrations.0011_daily_member_count_triggers")
    DailyMemberCount.objects.all().delete()
    assert not verify().ok
    day = counts.PG_DAY if connection.vendor == "postgresql" else counts.SQLITE_DAY
    _SchemaEditor().execute(counts.fill_sql(day))
    assert kept() == before
    assert verify().ok


THREADS = 6
PER_THREAD = 8


@pytest.mark.django_db(transaction=True)
def test_parallel_records_and_registrations_lose_no_count() -> None:
    """Threads registering volunteers and posting their service records in one bank on one day: every count lands
    (the upserts' row locks, striped by id), nothing deadlocks, verify is clean."""
    if connection.vendor != "postgresql":
        pytest.skip("row-lock contention is a PostgreSQL test")
    bank = do_create_org(None, name="并发报表银行", kind="head_office", parent=None)
    community = do_create_org(None, name="社区", kind="sub_branch", parent=bank)
    item = do_create_service_item(None, head_office=bank, name="保洁", category="mutual_care", tier="ordinary")
    errors: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def worker(n: int) -> None:
        try:
            barrier.wait()
            for i in range(PER_THREAD):
                volunteer = do_register_member(
                    None,
                    home_org=community,
                    data=MemberInput(
                        name=f"志愿者{n}-{i}", id_number=new_id_number(dt.date(1950 + n, 1, 1 + i)), roles=["volunteer"]
                    ),
                    approved=True,
                )
                do_service_record(None, volunteer=volunteer, service_item=item, minutes=1 + i, served_at=timezone.now())
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
    stats = compute(bank, timezone.localdate(), timezone.localdate())
    assert stats.service_records == THREADS * PER_THREAD and stats.service_minutes == THREADS * sum(
        range(1, PER_THREAD + 1)
    )
    assert stats.members == stats.volunteers == stats.new_members == THREADS * PER_THREAD
    assert stats == scanned(bank, timezone.localdate(), timezone.localdate())
    report = verify([bank.pk])
    assert report.ok, report.problems


def test_a_missing_count_trigger_is_reported(world: World) -> None:
    """On SQLite a migration that remakes the members' table drops its triggers silently; verify names the gap."""
    assert verify().ok
    name = TRIGGERS[connection.vendor][0]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {name} ON members_member" if is_postgres() else f"DROP TRIGGER {name}")
    problems = verify().problems
    assert any(f"the trigger {name}" in p for p in problems), problems
