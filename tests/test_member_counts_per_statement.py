"""The head counts of a statement inserting many members at once (a bulk import's INSERT … SELECT): on PostgreSQL
they are added per statement from its transition table (members/0013), on SQLite row by row. Either way the counts
equal the members counted again, a registration through the actions still counts once, and on PostgreSQL the
migration goes back to 0012's row-level insert trigger and forward again."""

from __future__ import annotations

import datetime as dt
import importlib
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from django.db import connection

from tests.conftest import World, is_postgres, new_id_number
from timebank.members.actions import MemberInput, do_member_leaves, do_register_member
from timebank.members.counts import TRIGGERS, count_problems
from timebank.members.models import DailyMemberCount, Member, MemberStatus

SHANGHAI = ZoneInfo("Asia/Shanghai")
MANY = 3000
# Two join days either side of a Shanghai midnight (both the same UTC day): the day is Shanghai's.
LATE = dt.datetime(2026, 3, 1, 23, 30, tzinfo=SHANGHAI)
EARLY = dt.datetime(2026, 3, 2, 0, 30, tzinfo=SHANGHAI)
STATUSES = ("active", "active", "pending", "suspended", "active", "left")
PER_STATEMENT = importlib.import_module("timebank.members.migrations.0013_daily_member_count_per_statement")


def insert_many(world: World, referrer: Member) -> None:
    """One INSERT … SELECT of MANY members copied from `referrer`'s row: two banks, two join days, every status,
    volunteers, recipients and referred ones mixed."""
    columns = [f.column for f in Member._meta.concrete_fields if f.column != "id"]
    other_home = world.other_community.pk
    varied = {
        "bank_id": f"CASE WHEN n.i %% 3 = 0 THEN {world.other_bank.pk} ELSE t.bank_id END",
        "home_org_id": f"CASE WHEN n.i %% 3 = 0 THEN {other_home} ELSE t.home_org_id END",
        "user_id": "NULL",
        "id_number_hash": "''",
        "name": "'导入'",
        "is_volunteer": "(n.i %% 2 = 0)",
        "is_recipient": "(n.i %% 5 < 2)",
        "referred_by_id": "CASE WHEN n.i %% 7 < 3 THEN t.id ELSE NULL END",
        "status": "CASE n.i %% 6 " + " ".join(f"WHEN {k} THEN '{s}'" for k, s in enumerate(STATUSES)) + " END",
        "created_at": "CASE WHEN n.i %% 4 < 2 THEN %s ELSE %s END",
    }
    select = ", ".join(varied.get(c, f"t.{c}") for c in columns)
    sql = (
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MANY}) "
        f"INSERT INTO members_member ({', '.join(columns)}) SELECT {select} FROM members_member t, n WHERE t.id = %s"
    )
    late, early = (connection.ops.adapt_datetimefield_value(d) for d in (LATE, EARLY))
    before = Member.objects.count()
    with connection.cursor() as cursor:
        cursor.execute(sql, [late, early, referrer.pk])
    assert Member.objects.count() == before + MANY


def kept() -> Counter:
    found: Counter = Counter()
    for bank, day, *figures in DailyMemberCount.objects.values_list(
        "bank_id", "day", "members", "volunteers", "recipients", "referred", "referred_volunteers"
    ):
        for name, value in zip(
            ("members", "volunteers", "recipients", "referred", "referred_both"), figures, strict=True
        ):
            found[(bank, day, name)] += value
    return +found


def recounted() -> Counter:
    found: Counter = Counter()
    for m in Member.objects.filter(status=MemberStatus.ACTIVE):
        key = (m.bank_id, m.created_at.astimezone(SHANGHAI).date())
        found[(*key, "members")] += 1
        found[(*key, "volunteers")] += m.is_volunteer
        found[(*key, "recipients")] += m.is_recipient
        found[(*key, "referred")] += m.referred_by_id is not None
        found[(*key, "referred_both")] += m.is_volunteer and m.referred_by_id is not None
    return +found


def register(world: World) -> Member:
    return do_register_member(
        None,
        home_org=world.community,
        data=MemberInput(name="新会员", id_number=new_id_number(), roles=["volunteer"], phone="13900000000"),
        approved=True,
    )


def assert_counts_agree(world: World) -> None:
    assert count_problems(world.bank.pk) == []
    assert count_problems(world.other_bank.pk) == []
    assert kept() == recounted()


def test_one_statement_of_many_members_is_counted_as_the_recount(world: World) -> None:
    referrer = world.members["volunteer"]
    assert_counts_agree(world)
    insert_many(world, referrer)
    assert_counts_agree(world)
    # Not vacuous: both banks, both Shanghai days, every figure counted.
    counts = kept()
    for bank in (world.bank.pk, world.other_bank.pk):
        for day in (LATE.date(), EARLY.date()):
            for figure in ("members", "volunteers", "recipients", "referred", "referred_both"):
                assert counts[(bank, day, figure)] > 0, (bank, day, figure)
    # A registration through the actions counts once; a bulk-inserted member leaving is taken away once.
    before = kept()
    joined = register(world)
    today = joined.created_at.astimezone(SHANGHAI).date()
    after = kept()
    assert after[(world.bank.pk, today, "members")] == before[(world.bank.pk, today, "members")] + 1
    assert after[(world.bank.pk, today, "volunteers")] == before[(world.bank.pk, today, "volunteers")] + 1
    assert_counts_agree(world)
    leaving = Member.objects.filter(bank=world.bank, status=MemberStatus.ACTIVE, name="导入").first()
    assert leaving is not None
    do_member_leaves(None, member=leaving)
    assert_counts_agree(world)


class _SchemaEditor:
    connection = connection

    def execute(self, sql: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, ())


def triggers() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgname FROM pg_trigger WHERE tgrelid = 'members_member'::regclass AND NOT tgisinternal")
        return {row[0] for row in cursor.fetchall()}


def test_the_migration_goes_back_to_row_level_inserts_and_forward_again(world: World) -> None:
    if not is_postgres():
        pytest.skip("0013 changes PostgreSQL's triggers only")
    referrer = world.members["volunteer"]
    assert triggers() >= set(TRIGGERS["postgresql"])
    PER_STATEMENT.backward(None, _SchemaEditor())
    assert "members_count_active_rows" in triggers()
    assert not triggers() & {"members_count_active_inserts", "members_count_active_deletes"}
    register(world)  # counted by 0012's row-level trigger, once
    assert kept() == recounted()  # (verify names 0013's triggers as missing here)
    PER_STATEMENT.forward(None, _SchemaEditor())
    assert triggers() >= set(TRIGGERS["postgresql"])
    assert "members_count_active_rows" not in triggers()
    register(world)
    insert_many(world, referrer)
    assert_counts_agree(world)
