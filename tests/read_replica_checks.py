"""Reports from a read replica, against a real streaming replica: run by tests/test_read_replica.py.

That test starts a private PostgreSQL primary and a hot standby made from it with `pg_basebackup -R`, then runs
this file in a pytest of its own with DATABASE_URL (the primary) and DATABASE_REPLICA_URL (the standby) set, so
the settings, the router and the views are the ones production runs. The test database pytest-django creates
on the primary reaches the standby by replication (the `replica` alias mirrors `default`). The file is not
collected by the suite itself (its name does not start with test_), and skips when no replica is configured.

To make the replica visibly differ from the primary, replay on the standby is paused (`pg_wal_replay_pause()`)
after it has caught up, and the actions then write on the primary: a report that reads the replica shows the
figures from before those writes, while the primary already has the new ones.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from tests.conftest import World, build_world, make_member, web_client
from timebank.audit.models import AuditEntry
from timebank.ledger.actions import do_adjustment
from timebank.members.models import Member
from timebank.ops.replica import REPLICA, ReplicaRouter, read_alias, reading_from_replica, replica_configured
from timebank.orgs.models import Org
from timebank.reports.models import RiskRules
from timebank.reports.stats import compute

pytestmark = [
    pytest.mark.skipif(not replica_configured(), reason="needs DATABASE_REPLICA_URL (tests/test_read_replica.py)"),
    # Transactional: what a test writes must commit on the primary to reach the replica.
    pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA]),
]

CATCH_UP_SECONDS = 30
RISK_RULES = {
    "window_months": 6,
    "default_reserve_age": 60,
    "max_months_to_honour": 24,
    "max_unfilled_percent": 20,
    "max_ageing_percent": 100,
    "anomaly_daily_hours": 12,
    "anomaly_yearly_hours": 1000,
}


def _one(alias: str, sql: str, params: tuple[str, ...] = ()) -> object:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    assert row is not None
    return row[0]


def wait_for_replica() -> None:
    """Until the standby has replayed everything the primary has written so far."""
    target = _one(DEFAULT_DB_ALIAS, "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while not _one(REPLICA, "SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), %s::pg_lsn) >= 0", (str(target),)):
        assert time.monotonic() < deadline, f"the replica did not replay up to {target} in {CATCH_UP_SECONDS} s"
        time.sleep(0.05)


@contextmanager
def replay_paused() -> Iterator[None]:
    """The standby caught up, then frozen: what the primary writes meanwhile is not on the replica."""
    wait_for_replica()
    _one(REPLICA, "SELECT pg_wal_replay_pause()::text")
    deadline = time.monotonic() + CATCH_UP_SECONDS
    while _one(REPLICA, "SELECT pg_get_wal_replay_pause_state()") != "paused":
        assert time.monotonic() < deadline, "replay did not pause"
        time.sleep(0.05)
    try:
        yield
    finally:
        _one(REPLICA, "SELECT pg_wal_replay_resume()::text")


def reading(captured: CaptureQueriesContext, table: str) -> list[str]:
    """The captured queries on `table` (reading FROM it, or writing it), but for finding the member behind the
    request's login: who is asking is decided on the primary, before a report starts."""
    return [
        q["sql"]
        for q in captured.captured_queries
        if (f'FROM "{table}"' in q["sql"] or f'INTO "{table}"' in q["sql"] or f'UPDATE "{table}"' in q["sql"])
        and f'FROM "{table}" WHERE "{table}"."user_id" = ' not in q["sql"]
    ]


@contextmanager
def queries_per_alias() -> Iterator[tuple[CaptureQueriesContext, CaptureQueriesContext]]:
    with (
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as replica,
    ):
        yield primary, replica


def members_in(rows: list[list[object]]) -> int:
    return len(rows) - 1


def sheet(response: object) -> list[list[object]]:
    assert getattr(response, "status_code", None) == 200
    data = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    ws = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]


@pytest.fixture
def world() -> World:
    # --no-migrations builds the tables from the models; the posting's one-round-trip SQL function comes from a
    # migration (ledger/0013), so it is installed here (on the primary; the standby replays it).
    # The same for the triggers that keep the head counts the head office's stats read (members/0011, 0012, 0013).
    post_function = importlib.import_module("timebank.ledger.migrations.0013_post_function")
    count_triggers = importlib.import_module("timebank.members.migrations.0011_daily_member_count_triggers")
    count_in_place = importlib.import_module("timebank.members.migrations.0012_daily_member_count_decrement_in_place")
    per_statement = importlib.import_module("timebank.members.migrations.0013_daily_member_count_per_statement")
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(post_function.FORWARD)
        cursor.execute(
            per_statement.POSTGRES_DROP
            + count_triggers.POSTGRES_DROP
            + count_triggers.POSTGRES
            + count_in_place.POSTGRES
            + per_statement.POSTGRES
        )
    return build_world()


def test_the_standby_refuses_writes_and_the_router_reads_it_only_inside_a_report(world: World) -> None:
    assert _one(DEFAULT_DB_ALIAS, "SELECT pg_is_in_recovery()") is False
    assert _one(REPLICA, "SELECT pg_is_in_recovery()") is True
    assert connections[REPLICA].settings_dict["PORT"] != connections[DEFAULT_DB_ALIAS].settings_dict["PORT"]
    wait_for_replica()
    assert Org.objects.using(REPLICA).filter(pk=world.bank.pk).exists()
    # Writes are refused there, through SQL and through the ORM.
    with pytest.raises(DatabaseError, match="cannot execute UPDATE in a read-only transaction"):
        Org.objects.using(REPLICA).filter(pk=world.bank.pk).update(name="改名")
    with (
        pytest.raises(DatabaseError, match="cannot execute INSERT in a read-only transaction"),
        connections[REPLICA].cursor() as cursor,
    ):
        cursor.execute("INSERT INTO orgs_org (name) VALUES ('副本上的机构')")
    assert Org.objects.get(pk=world.bank.pk).name == world.bank.name

    # The router: the replica only inside a report, and there only outside a transaction on the primary.
    router = ReplicaRouter()
    assert read_alias() == DEFAULT_DB_ALIAS and router.db_for_read(Member) == DEFAULT_DB_ALIAS
    with reading_from_replica():
        assert read_alias() == REPLICA and router.db_for_read(Member) == REPLICA
        assert router.db_for_write(Member) == DEFAULT_DB_ALIAS
        with transaction.atomic():
            assert read_alias() == DEFAULT_DB_ALIAS  # a read inside a write's transaction: the primary
        assert read_alias() == REPLICA
    assert read_alias() == DEFAULT_DB_ALIAS
    with replay_paused():
        make_member(world.community, "新会员")
        on_primary = Member.objects.count()
        with reading_from_replica():
            assert Member.objects.count() == on_primary - 1  # the replica's older state
            with transaction.atomic():
                assert Member.objects.count() == on_primary  # what decides a write reads the primary
            # An object read from the replica is written back to the primary.
            member = Member.objects.get(pk=world.members["volunteer"].pk)
            assert member._state.db == REPLICA
            member.occupation = "从副本读出，写回主库"
            member.save(update_fields=["occupation"])
        assert Member.objects.get(pk=member.pk).occupation == "从副本读出，写回主库"
        assert Member.objects.using(REPLICA).get(pk=member.pk).occupation == ""


def test_stats_dashboard_and_risk_are_served_from_the_replica(world: World) -> None:
    admin = world.api("head_office_admin")
    do_adjustment(None, member=world.members["recipient"], minutes=120, bucket="reserve", reason="开户")
    wait_for_replica()
    before = admin.get("/api/v1/stats", {"org_id": world.bank.pk}).json()
    owed = before["outstanding_minutes"]
    assert owed == 120 == admin.get("/api/v1/risk", {"org_id": world.bank.pk}).json()["outstanding_minutes"]
    with replay_paused():
        # Written on the primary while the replica stands still.
        make_member(world.community, "周大妈", roles=["volunteer"])
        do_adjustment(None, member=world.members["recipient"], minutes=60, bucket="reserve", reason="补记")
        primary = compute(world.bank)
        assert primary.members == before["members"] + 1 and primary.outstanding_minutes == owed + 60

        with queries_per_alias() as (on_primary, on_replica):
            stats = admin.get("/api/v1/stats", {"org_id": world.bank.pk}).json()
        assert stats["members"] == before["members"] and stats["outstanding_minutes"] == owed  # the replica's
        # The head office's head counts come from the counts kept per join day (issue 17), not the members' rows.
        assert reading(on_replica, "members_dailymembercount") and reading(on_replica, "ledger_account")
        assert not reading(on_primary, "members_dailymembercount") and not reading(on_primary, "ledger_account")

        with queries_per_alias() as (on_primary, on_replica):
            risk = admin.get("/api/v1/risk", {"org_id": world.bank.pk}).json()
            anomalies = admin.get("/api/v1/anomalies", {"org_id": world.bank.pk})
        assert risk["outstanding_minutes"] == owed and anomalies.status_code == 200
        assert reading(on_replica, "ledger_account") and not reading(on_primary, "ledger_account")

        client = web_client(world.users["head_office_admin"])
        with queries_per_alias() as (on_primary, on_replica):
            page = client.get(f"/manage/dashboard/{world.bank.pk}/")
            day = web_client(world.users["staff"]).get(f"/manage/today/{world.community.pk}/")
            risk_page = client.get(f"/manage/risk/{world.bank.pk}/")
        assert page.status_code == day.status_code == risk_page.status_code == 200
        assert page.context["stats"].members == before["members"]
        assert page.context["risk"].outstanding_minutes == risk_page.context["risk"].outstanding_minutes == owed
        assert reading(on_replica, "orders_order") and reading(on_replica, "members_member")
        assert not reading(on_primary, "orders_order") and not reading(on_primary, "members_member")
        assert not reading(on_primary, "ledger_account")

        # Thresholds just saved are used at once, while the replica lags: they are read on the primary.
        saved = client.post(f"/manage/risk/{world.bank.pk}/", {**RISK_RULES, "max_months_to_honour": 7}, follow=True)
        assert saved.status_code == 200 and saved.context["risk"].max_months_to_honour == 7
        assert saved.context["risk"].outstanding_minutes == owed  # and the figures still from the replica
        assert not RiskRules.objects.using(REPLICA).filter(head_office=world.bank).exists()  # not replayed yet

        # Who may see a report is still decided on the primary: someone outside the subtree is refused.
        assert world.api("staff_next").get("/api/v1/stats", {"org_id": world.community.pk}).status_code == 403

    wait_for_replica()
    after = admin.get("/api/v1/stats", {"org_id": world.bank.pk}).json()
    assert after["members"] == before["members"] + 1 and after["outstanding_minutes"] == owed + 60


def test_an_export_reads_the_replica_and_audits_on_the_primary(world: World) -> None:
    staff = web_client(world.users["staff"])
    wait_for_replica()
    shown_before = members_in(sheet(staff.get("/exports/members.xlsx")))
    audited_before = AuditEntry.objects.filter(action="export.members").count()
    with replay_paused():
        make_member(world.community, "吴奶奶", roles=["recipient"], born=dt.date(1938, 2, 3))
        with queries_per_alias() as (on_primary, on_replica):
            rows = sheet(staff.get("/exports/members.xlsx?full=1"))
        names = [r[1] for r in rows[1:]]
        assert members_in(rows) == shown_before and "吴奶奶" not in names  # the replica's rows
        assert reading(on_replica, "members_member") and not reading(on_primary, "members_member")
        # The audit entry was written on the primary, with its chain head read (and locked) there, in the same
        # request that read the rows from the replica.
        assert any('INSERT INTO "audit_auditentry"' in q for q in reading(on_primary, "audit_auditentry"))
        assert any("FOR UPDATE" in q for q in reading(on_primary, "audit_chainhead"))
        assert not reading(on_replica, "audit_auditentry") and not reading(on_replica, "audit_chainhead")
        entry = AuditEntry.objects.filter(action="export.members").latest("pk")
        assert entry.actor_id == world.users["staff"].pk and entry.data["rows"] == shown_before
        assert entry.data["unmasked_rows"] == shown_before
        assert not AuditEntry.objects.using(REPLICA).filter(pk=entry.pk).exists()
        with queries_per_alias() as (on_primary, on_replica):
            orders = sheet(staff.get("/exports/orders.xlsx"))  # another register, the same way
        assert orders[0] and reading(on_replica, "orders_order") and not reading(on_primary, "orders_order")
    wait_for_replica()
    assert AuditEntry.objects.using(REPLICA).filter(action="export.members").count() == audited_before + 1
    assert members_in(sheet(staff.get("/exports/members.xlsx"))) == shown_before + 1
