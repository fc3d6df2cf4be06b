"""A bank's head counts from `DailyMemberCount` (its active members by join day, kept by triggers on the members'
table, migrations 0011 and 0012), and `verify`'s recount of it.

`counted` answers what the stats' one pass over a head office's active members answers (members, volunteers,
recipients, referred; and of those who joined on the days [first, last], how many, and how many are referred
volunteers) from a few rows per day. `count_problems` compares the kept rows with the members counted again.
`recount_sql` is that recount by stripe: `fill_sql` adds it to an empty table (migration 0011 keeps its own frozen
copy) and `actions.do_rebuild_member_counts` (`manage.py rebuild_summaries`) makes a drifted bank's rows equal to it.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Q, Sum

from timebank.lib.summaries import SummaryTable
from timebank.members.models import MEMBER_COUNT_STRIPES, DailyMemberCount, Member, MemberStatus

TABLE = DailyMemberCount._meta.db_table
MEMBERS = Member._meta.db_table
FIGURES = ("members", "volunteers", "recipients", "referred", "referred_volunteers")
SUMMARY = SummaryTable("members", TABLE, keys=("day", "stripe"), figures=FIGURES)
# Each figure as one member adds it (the triggers of migration 0011 add the same).
COUNTS = {
    "members": "1",
    "volunteers": "CASE WHEN m.is_volunteer THEN 1 ELSE 0 END",
    "recipients": "CASE WHEN m.is_recipient THEN 1 ELSE 0 END",
    "referred": "CASE WHEN m.referred_by_id IS NOT NULL THEN 1 ELSE 0 END",
    "referred_volunteers": "CASE WHEN m.is_volunteer AND m.referred_by_id IS NOT NULL THEN 1 ELSE 0 END",
}


def counted(bank_id: int, first: dt.date | None, last: dt.date | None) -> dict[str, int]:
    """The bank's active members now: `members`, `volunteers`, `recipients`, `referred`, and of those who joined
    on the days [first, last] (None: unbounded) `joined` and `referred_volunteers`."""
    joined = Q()
    if first is not None:
        joined &= Q(day__gte=first)
    if last is not None:
        joined &= Q(day__lte=last)
    rows = DailyMemberCount.objects.filter(bank_id=bank_id)
    found = rows.aggregate(
        n_members=Sum("members"),
        n_volunteers=Sum("volunteers"),
        n_recipients=Sum("recipients"),
        n_referred=Sum("referred"),
        n_joined=Sum("members", filter=joined) if joined else Sum("members"),
        n_referred_volunteers=Sum("referred_volunteers", filter=joined) if joined else Sum("referred_volunteers"),
    )
    return {key.removeprefix("n_"): int(value or 0) for key, value in found.items()}


def _day(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} AT TIME ZONE 'Asia/Shanghai')::date"
    return f"date({column}, '+8 hours')"  # SQLite keeps UTC text; Shanghai has kept UTC+8 all year since 1992


def recount_sql(bank_filter: str = "") -> str:
    """The active members counted again, one row per (bank, join day, stripe), its columns named as the table's;
    `bank_filter` is "" (every bank) or "AND m.bank_id = %s". Run with `MemberStatus.ACTIVE` as its first
    parameter (then the bank's); its modulo is written `%%`."""
    return (
        f"SELECT m.bank_id AS bank_id, {_day('m.created_at')} AS day, m.id %% {MEMBER_COUNT_STRIPES} AS stripe, "  # noqa: S608
        + ", ".join(f"sum({COUNTS[f]}) AS {f}" for f in FIGURES)
        + f" FROM {MEMBERS} m WHERE m.status = %s {bank_filter} GROUP BY 1, 2, 3"
    )


def fill_sql() -> str:
    """One set-based statement adding every active member to an empty table. Run it with `[MemberStatus.ACTIVE]`."""
    columns = ", ".join(("bank_id", "day", "stripe", *FIGURES))
    return f"INSERT INTO {TABLE} ({columns}) SELECT {columns} FROM ({recount_sql()}) AS found"  # noqa: S608


def fill() -> None:
    with connection.cursor() as cursor:
        cursor.execute(fill_sql(), [MemberStatus.ACTIVE])


def count_problems(bank_id: int) -> list[str]:
    """Every join day where the bank's kept counts (stripes summed) differ from its active members counted again:
    one grouped query over both."""
    recount = (
        f"SELECT {_day('m.created_at')} AS day, "  # noqa: S608
        + ", ".join(f"{COUNTS[f]} AS {f}" for f in FIGURES)
        + ", "
        + ", ".join(f"0 AS kept_{f}" for f in FIGURES)
        + f" FROM {MEMBERS} m WHERE m.bank_id = %s AND m.status = %s"
    )
    kept = (
        "SELECT s.day, "  # noqa: S608
        + ", ".join("0" for _f in FIGURES)
        + ", "
        + ", ".join(f"s.{f}" for f in FIGURES)
        + f" FROM {TABLE} s WHERE s.bank_id = %s"
    )
    sums = ", ".join(f"sum({f})" for f in FIGURES)
    kept_sums = ", ".join(f"sum(kept_{f})" for f in FIGURES)
    differ = " OR ".join(f"sum({f}) <> sum(kept_{f})" for f in FIGURES)
    sql = (
        f"SELECT day, {sums}, {kept_sums} FROM ({recount} UNION ALL {kept}) AS both_sides "  # noqa: S608
        f"GROUP BY day HAVING {differ} ORDER BY day"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [bank_id, MemberStatus.ACTIVE, bank_id])
        rows = cursor.fetchall()
    problems = [f"bank {bank_id}: {missing}" for missing in missing_triggers()]
    for day, *values in rows:
        now, was = values[: len(FIGURES)], values[len(FIGURES) :]
        problems.append(
            f"bank {bank_id}: the head counts kept for members who joined on {day} are "
            + ", ".join(f"{f} {int(k)}" for f, k in zip(FIGURES, was, strict=True))
            + "; the active members give "
            + ", ".join(f"{f} {int(n)}" for f, n in zip(FIGURES, now, strict=True))
        )
    return problems


# The triggers of migration 0011 (0012 rewrote their decrement; on PostgreSQL 0013 counts inserts per statement)
# that keep the counts. On SQLite a later migration that remakes `members_member` (Django rebuilds the table for most
# AlterField) drops them without a word; verify says so.
TRIGGERS = {
    "postgresql": ("members_count_active_inserts", "members_count_active_deletes", "members_count_active_changes"),
    "sqlite": ("members_count_active_insert", "members_count_active_delete", "members_count_active_update"),
}


def missing_triggers() -> list[str]:
    """The count-keeping triggers absent from the members' table, each as a problem for `verify`."""
    names = TRIGGERS.get(connection.vendor, ())
    if not names:
        return []
    if connection.vendor == "postgresql":
        sql = "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [MEMBERS])
        present = {row[0] for row in cursor.fetchall()}
    return [
        f"the trigger {name} that keeps the head counts is missing from {MEMBERS}; new members are not counted"
        for name in names
        if name not in present
    ]
