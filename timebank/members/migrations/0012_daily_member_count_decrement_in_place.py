"""The head-count triggers take a member away from its count row in place (an UPDATE) instead of by an upsert.

Migration 0011's triggers subtracted with the same upsert they add with: where the count row was gone, the DELETE
or UPDATE of a member inserted a row of -1s. A member is only taken away from a row its own insert or activation
added to, so for real writes the row is there and the counts stay exact; the row is missing only when the counts
table was emptied first. That is what SQLite's `flush` does in half its table orders (a DELETE per table): the -1
rows it wrote pointed at banks the same flush deleted and the flush failed at COMMIT. Now a missing row is left
missing (the counts were already not kept there; `verify` reports it and `rebuild_summaries` repairs it).

Adding stays an upsert: a member's first count on a (bank, join day, stripe) makes the row.

The SQL is written out here (not imported) so the migration keeps meaning what it meant when it was written; the
way back re-creates migration 0011's triggers from that migration's own text."""

import importlib
from typing import Any

from django.db import migrations

STRIPES = 8
FIGURES = ("members", "volunteers", "recipients", "referred", "referred_volunteers")
COLUMNS = "bank_id, day, stripe, " + ", ".join(FIGURES)
ADD = ", ".join(f"{f} = members_dailymembercount.{f} + excluded.{f}" for f in FIGURES)


def _values(r: str, day: str) -> str:
    """What one member (r = NEW or OLD) counts for, as the columns of COLUMNS."""
    return (
        f"{r}.bank_id, {day.format(r=r)}, {r}.id % {STRIPES}, 1, "
        f"(CASE WHEN {r}.is_volunteer THEN 1 ELSE 0 END), (CASE WHEN {r}.is_recipient THEN 1 ELSE 0 END), "
        f"(CASE WHEN {r}.referred_by_id IS NOT NULL THEN 1 ELSE 0 END), "
        f"(CASE WHEN {r}.is_volunteer AND {r}.referred_by_id IS NOT NULL THEN 1 ELSE 0 END)"
    )


def _take_away(r: str, day: str, when: str = "") -> str:
    """One member (r = OLD) taken away from its count row, in place (and only `when`): nothing when the row is
    missing."""
    each = {
        "members": "1",
        "volunteers": f"(CASE WHEN {r}.is_volunteer THEN 1 ELSE 0 END)",
        "recipients": f"(CASE WHEN {r}.is_recipient THEN 1 ELSE 0 END)",
        "referred": f"(CASE WHEN {r}.referred_by_id IS NOT NULL THEN 1 ELSE 0 END)",
        "referred_volunteers": f"(CASE WHEN {r}.is_volunteer AND {r}.referred_by_id IS NOT NULL THEN 1 ELSE 0 END)",
    }
    return (
        "UPDATE members_dailymembercount SET "  # noqa: S608
        + ", ".join(f"{f} = {f} - {each[f]}" for f in FIGURES)
        + f" WHERE {when}bank_id = {r}.bank_id AND day = {day.format(r=r)} AND stripe = {r}.id % {STRIPES};"
    )


# A change the counts see: status, the flags, whether referred, or the keys (bank, join day, id). As in 0011.
CHANGED = (
    "OLD.status <> NEW.status OR OLD.is_volunteer <> NEW.is_volunteer OR OLD.is_recipient <> NEW.is_recipient "
    "OR (OLD.referred_by_id IS NULL) <> (NEW.referred_by_id IS NULL) OR OLD.bank_id <> NEW.bank_id "
    "OR OLD.created_at <> NEW.created_at OR OLD.id <> NEW.id"
)

PG_DAY = "({r}.created_at AT TIME ZONE 'Asia/Shanghai')::date"
# The function only: the triggers of 0011 call it by name and stay as they are.
POSTGRES = f"""
CREATE OR REPLACE FUNCTION members_count_active() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'active' THEN
        {_take_away("OLD", PG_DAY)}
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'active' THEN
        INSERT INTO members_dailymembercount ({COLUMNS}) VALUES ({_values("NEW", PG_DAY)})
            ON CONFLICT (bank_id, day, stripe) DO UPDATE SET {ADD};
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;
"""  # noqa: S608

SQLITE_DAY = "date({r}.created_at, '+8 hours')"  # SQLite keeps UTC text; Shanghai is UTC+8 all year
# INSERT … SELECT … WHERE: the WHERE keeps SQLite from reading ON CONFLICT as a join's ON.
SQLITE_ADD = (
    f"INSERT INTO members_dailymembercount ({COLUMNS}) SELECT {_values('NEW', SQLITE_DAY)} WHERE NEW.status = 'active' "
    f"ON CONFLICT (bank_id, day, stripe) DO UPDATE SET {ADD};"
)
SQLITE = [
    "DROP TRIGGER IF EXISTS members_count_active_delete",
    "DROP TRIGGER IF EXISTS members_count_active_update",
    "CREATE TRIGGER members_count_active_delete AFTER DELETE ON members_member WHEN OLD.status = 'active' BEGIN "
    + _take_away("OLD", SQLITE_DAY)
    + " END",
    # SQLite's trigger bodies have no IF: each statement's WHERE tests the status it needs.
    f"CREATE TRIGGER members_count_active_update AFTER UPDATE ON members_member WHEN {CHANGED} BEGIN "
    + _take_away("OLD", SQLITE_DAY, when="OLD.status = 'active' AND ")
    + " "
    + SQLITE_ADD
    + " END",
]


def _old() -> Any:
    return importlib.import_module("timebank.members.migrations.0011_daily_member_count_triggers")


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES.replace("%", "%%"))
    else:
        for sql in SQLITE:
            schema_editor.execute(sql.replace("%", "%%"))


def backward(apps: Any, schema_editor: Any) -> None:
    old = _old()
    if schema_editor.connection.vendor == "postgresql":
        function = old.POSTGRES[: old.POSTGRES.index("CREATE TRIGGER")]
        schema_editor.execute(function.replace("%", "%%"))
    else:
        for sql in SQLITE[:2]:
            schema_editor.execute(sql)
        for sql in old.SQLITE[1:]:  # 0011's delete and update triggers (its insert trigger is unchanged)
            schema_editor.execute(sql.replace("%", "%%"))


class Migration(migrations.Migration):
    dependencies = [("members", "0011_daily_member_count_triggers")]

    operations = [migrations.RunPython(forward, backward)]
