"""`manage.py rebuild_summaries`: a drifted summary (the ledger's daily summary, the services' daily summary, the
head counts) made equal to its rows again, bank by bank, with what changed printed and audited; on PostgreSQL, a
posting that commits while a rebuild runs is still counted once."""

from __future__ import annotations

import datetime as dt
import io
import threading
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.db.models import Model
from django.utils import timezone

from tests.conftest import World, is_postgres, new_id_number
from tests.test_orders import items as items
from tests.test_stats_summaries import build
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.ledger import actions as ledger
from timebank.ledger.actions import do_rebuild_daily_summary
from timebank.ledger.models import DailySummary
from timebank.ledger.verify import verify
from timebank.lib import summaries
from timebank.lib.errors import Conflict, Invalid
from timebank.members.actions import MemberInput, do_rebuild_member_counts, do_register_member
from timebank.members.models import DailyMemberCount, Member
from timebank.orders.models import DailyServiceSummary
from timebank.orders.records import do_service_record
from timebank.orgs.actions import do_create_org
from timebank.orgs.models import Org
from timebank.reports.management.commands.rebuild_summaries import Command

MODELS: dict[str, type[Model]] = {
    "ledger": DailySummary,
    "services": DailyServiceSummary,
    "members": DailyMemberCount,
}
FIGURES = {
    "ledger": ("transactions", "minutes"),
    "services": ("services", "minutes", "credited_minutes"),
    "members": ("members", "volunteers", "recipients", "referred", "referred_volunteers"),
}
KEYS = {"ledger": ("day", "kind", "stripe"), "services": ("day", "source", "stripe"), "members": ("day", "stripe")}


def rows(bank: Org) -> dict[str, set[tuple[Any, ...]]]:
    """Every kept row of the bank, by summary, without ids (all-zero rows mean no row, and are kept as they are)."""
    return {
        name: {
            tuple(r)
            for r in model._default_manager.filter(bank=bank).values_list(*KEYS[name], *FIGURES[name])
            if any(r[len(KEYS[name]) :])
        }
        for name, model in MODELS.items()
    }


def tamper(bank: Org) -> None:
    """In each summary of the bank: one row's figure changed, one row deleted, one row added on a day without rows."""
    for name, model in MODELS.items():
        manager = model._default_manager
        found = list(manager.filter(bank=bank).exclude(**{FIGURES[name][0]: 0}).order_by("pk")[:2])
        assert len(found) == 2, name
        changed, deleted = found
        first = FIGURES[name][0]
        manager.filter(pk=changed.pk).update(**{first: getattr(changed, first) + 1})
        manager.filter(pk=deleted.pk).delete()
        key = {"ledger": {"kind": "deposit"}, "services": {"source": "order"}, "members": {}}[name]
        manager.create(bank=bank, day=dt.date(2020, 1, 1), stripe=0, **key, **{first: 1})


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("rebuild_summaries", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_each_tampered_summary_is_reported_and_rebuilt(world: World, items: dict) -> None:
    build(world, items)
    assert verify().ok
    before = rows(world.bank)
    tamper(world.bank)
    tampered = rows(world.bank)
    problems = verify().problems
    for said in SAID.values():
        assert any(said in p and "2020-01-01" in p for p in problems), (said, problems)

    dry = run("--dry-run")
    for name in MODELS:
        assert f"bank {world.bank.pk} ({world.bank.name}) {name}: 1 added, 1 changed, 1 removed (dry run)" in dry
        assert f"bank {world.other_bank.pk} ({world.other_bank.name}) {name}: unchanged" in dry
    assert "dry run, nothing written: 3 row(s) would be added, 3 changed, 3 removed" in dry
    assert rows(world.bank) == tampered
    assert not AuditEntry.objects.filter(action="summary.rebuild").exists()

    done = run()
    for name in MODELS:
        assert f"bank {world.bank.pk} ({world.bank.name}) {name}: 1 added, 1 changed, 1 removed\n" in done
    assert rows(world.bank) == before
    report = verify()
    assert report.ok, report.problems
    audited = AuditEntry.objects.filter(action="summary.rebuild").order_by("pk")
    assert [(a.object_id, {k: v for k, v in a.data.items() if k != "rows"}) for a in audited] == [
        (str(world.bank.pk), {"summary": name, "added": 1, "changed": 1, "removed": 1}) for name in MODELS
    ]
    # What the rebuild overwrote stays in its audit entry: the restored row (none before), the changed row's figures
    # before and after (the tampered +1 undone), and the invented row with its figures (none after).
    for entry, name in zip(audited, MODELS, strict=True):
        first = FIGURES[name][0]
        added, changed, removed = entry.data["rows"]
        assert added["before"] is None and added["after"][first] > 0, entry.data
        assert changed["before"][first] == changed["after"][first] + 1, entry.data
        assert removed["key"]["day"] == "2020-01-01" and removed["after"] is None, entry.data
        assert removed["before"][first] == 1, entry.data
    # Nothing left to do: a second run writes and audits nothing.
    assert "0 row(s) were added, 0 changed, 0 removed" in run()
    assert audited.count() == 3


def test_a_banks_rebuild_leaves_the_other_banks_alone(world: World, items: dict) -> None:
    build(world, items)
    for persona in ("stranger",):
        ledger.do_adjustment(None, member=world.members[persona], minutes=90, bucket="reserve", reason="开户")
        ledger.do_adjustment(None, member=world.members[persona], minutes=30, bucket="reserve", reason="补记")
    do_register_member(
        None,
        home_org=world.other_community,
        data=MemberInput(name="另一家的志愿者", id_number=new_id_number(), roles=["volunteer"]),
        approved=True,
    )
    DailyServiceSummary.objects.create(bank=world.other_bank, day=dt.date(2021, 5, 1), source="record", stripe=1)
    DailyServiceSummary.objects.filter(bank=world.other_bank).update(services=7)
    DailySummary.objects.filter(bank=world.other_bank).update(minutes=1)
    DailyMemberCount.objects.filter(bank=world.other_bank).update(volunteers=5)
    other = rows(world.other_bank)
    tamper(world.bank)
    out = run("--bank", str(world.bank.pk), "--only", "ledger", "--only", "members")
    assert f"bank {world.other_bank.pk}" not in out
    assert "services" not in out
    assert rows(world.other_bank) == other
    assert not verify([world.other_bank.pk]).ok
    problems = verify([world.bank.pk]).problems
    assert problems and all("services' daily summary" in p for p in problems), problems
    run("--only", "services", "--bank", str(world.bank.pk))
    assert verify([world.bank.pk]).ok
    assert rows(world.other_bank) == other
    run()
    assert verify().ok


def test_bad_arguments_exit_non_zero_with_a_message(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(CommandError, match=f"no head office {world.community.pk}, 999999"):
        run("--bank", str(world.community.pk), "--bank", "999999")
    with pytest.raises(CommandError, match="invalid choice: 'funds'"):
        run("--only", "funds")
    with pytest.raises(CommandError, match="--lock-timeout"):
        run("--lock-timeout", "0")
    for argv, code in ((["--only", "funds"], 2), (["--bank", "999999"], 1), (["--bank", "x"], 2)):
        with pytest.raises(SystemExit) as exited:
            Command().run_from_argv(["manage.py", "rebuild_summaries", *argv])
        assert exited.value.code == code, argv
    assert "funds" in capsys.readouterr().err
    # The actions refuse what is not a head office.
    for rebuild in (do_rebuild_daily_summary, do_rebuild_member_counts):
        with pytest.raises(Invalid):
            rebuild(None, world.community)


# --- PostgreSQL: writers while a rebuild runs ---------------------------------------------------------------------


def _bank() -> tuple[Org, Org, Any]:
    bank = do_create_org(None, name="重建汇总银行", kind="head_office", parent=None)
    community = do_create_org(None, name="社区", kind="sub_branch", parent=bank)
    item = do_create_service_item(None, head_office=bank, name="保洁", category="mutual_care", tier="ordinary")
    return bank, community, item


def _volunteer(community: Org, n: int) -> Member:
    return do_register_member(
        None,
        home_org=community,
        data=MemberInput(name=f"志愿者{n}", id_number=new_id_number(dt.date(1950, 1, 1 + n)), roles=["volunteer"]),
        approved=True,
    )


def _write_all(community: Org, item: Any, n: int) -> None:
    """One write that every summary counts: a member joins (head counts) and posts a service record (the ledger's
    and the services' daily summaries)."""
    volunteer = _volunteer(community, n)
    do_service_record(None, volunteer=volunteer, service_item=item, minutes=10 + n, served_at=timezone.now())


def _thread(target: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run_it() -> None:
        try:
            target()
        except BaseException as exc:  # the test fails on any
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run_it)
    thread.start()
    return thread


SAID = {
    "ledger": "the daily summary for",
    "services": "the services' daily summary for",
    "members": "the head counts kept",
}


def _tamper_all(bank: Org) -> None:
    DailySummary.objects.filter(bank=bank).update(minutes=0)
    DailyServiceSummary.objects.filter(bank=bank).delete()
    DailyMemberCount.objects.filter(bank=bank).update(members=99)


def _waiting_on(table: str) -> bool:
    """Whether some transaction waits for a lock on `table` (the writer at its upsert, or the rebuild)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE relation = %s::regclass AND NOT granted", [table])
        return bool(cursor.fetchone()[0])


def _until(check: Callable[[], bool]) -> None:
    for _tick in range(200):
        if check():
            return
        threading.Event().wait(0.05)
    raise AssertionError("nothing waited on the table")


@pytest.mark.django_db(transaction=True)
def test_a_write_committing_during_a_rebuild_is_counted() -> None:
    """A writer that reaches its summary upsert while the rebuild holds the table, and one that had upserted
    (uncommitted) when the rebuild began: each is counted once, in every summary."""
    if not is_postgres():
        pytest.skip("concurrent writers are a PostgreSQL test")
    bank, community, item = _bank()
    _write_all(community, item, 0)
    errors: list[BaseException] = []

    # 1. The rebuild holds the table; a writer comes and waits at its upsert until the rebuild commits.
    locked = threading.Event()
    real_lock = summaries.lock_against_writers

    def lock_then_let_a_writer_queue(table: str, timeout: float) -> None:
        real_lock(table, timeout)
        locked.set()
        _until(lambda: _waiting_on(table))

    for n, name in enumerate(MODELS, start=1):
        _tamper_all(bank)
        locked.clear()

        def writer(n: int = n) -> None:
            assert locked.wait(10)
            _write_all(community, item, n)

        with mock.patch.object(summaries, "lock_against_writers", lock_then_let_a_writer_queue):
            thread = _thread(writer, errors)
            call_command("rebuild_summaries", "--bank", str(bank.pk), "--only", name, stdout=io.StringIO())
        thread.join(30)
        assert not thread.is_alive() and errors == [], errors
        # Only `name` was rebuilt; the other two stay tampered, so look at `name`'s problems alone.
        problems = verify([bank.pk]).problems
        assert not [p for p in problems if SAID[name] in p], (name, problems)
        call_command("rebuild_summaries", "--bank", str(bank.pk), stdout=io.StringIO())
        report = verify([bank.pk])
        assert report.ok, report.problems

    # 2. A writer has upserted every summary, uncommitted, when the rebuild starts: the rebuild waits for its commit.
    _tamper_all(bank)
    upserted = threading.Event()

    def open_writer() -> None:
        with transaction.atomic():
            _write_all(community, item, 9)
            upserted.set()
            _until(lambda: _waiting_on(DailySummary._meta.db_table))  # the rebuild queues behind this writer

    thread = _thread(open_writer, errors)
    assert upserted.wait(10)
    call_command("rebuild_summaries", "--bank", str(bank.pk), stdout=io.StringIO())
    thread.join(30)
    assert not thread.is_alive() and errors == [], errors
    report = verify([bank.pk])
    assert report.ok, report.problems


@pytest.mark.django_db(transaction=True)
def test_a_busy_table_is_refused_after_the_lock_timeout() -> None:
    if not is_postgres():
        pytest.skip("lock_timeout is PostgreSQL's")
    bank, community, item = _bank()
    _write_all(community, item, 0)
    DailySummary.objects.filter(bank=bank).update(minutes=0)
    errors: list[BaseException] = []
    upserted, release = threading.Event(), threading.Event()

    def open_writer() -> None:
        with transaction.atomic():
            ledger.do_adjustment(None, member=Member.objects.get(bank=bank), minutes=5, bucket="reserve", reason="补")
            upserted.set()
            assert release.wait(20)

    thread = _thread(open_writer, errors)
    assert upserted.wait(10)
    try:
        with pytest.raises(Conflict, match="ledger_dailysummary"):
            do_rebuild_daily_summary(None, bank, lock_timeout=0.2)
        err = io.StringIO()
        with pytest.raises(CommandError, match="1 summary"):
            call_command("rebuild_summaries", "--bank", str(bank.pk), "--lock-timeout", "0.2", stderr=err)
        assert "ledger_dailysummary" in err.getvalue()
        assert not verify([bank.pk]).ok  # refused: nothing was changed
    finally:
        release.set()
        thread.join(30)
    assert errors == [], errors
    call_command("rebuild_summaries", "--bank", str(bank.pk), stdout=io.StringIO())
    assert verify([bank.pk]).ok
    assert connection.vendor == "postgresql"
