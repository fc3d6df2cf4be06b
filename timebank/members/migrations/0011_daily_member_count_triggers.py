"""The triggers that keep `DailyMemberCount` (a bank's active members by the day they joined), and its first filling
from the members already there: one set-based statement, whatever the size.

Triggers rather than calls in the actions: members are written by several apps (registration, approval, the
ledger's and federation's moves between banks, anonymisation, the referrer's SET NULL on delete), and a trigger
moves the counts with every one of them, in the same transaction. Creating a trigger locks the members' table
against writes until this migration commits, so no member is written between the trigger and the fill.

The SQL is written out here (not imported) so the migration keeps meaning what it meant when it was written."""

from typing import Any

from django.db import migrations

STRIPES = 8
COLUMNS = "bank_id, day, stripe, members, volunteers, recipients, referred, referred_volunteers"
ADD = ", ".join(
    f"{f} = members_dailymembercount.{f} + excluded.{f}"
    for f in ("members", "volunteers", "recipients", "referred", "referred_volunteers")
)


def _row(r: str, sign: str, day: str) -> str:
    """The values one member (r = NEW or OLD) adds (sign '') or takes away (sign '-')."""
    return (
        f"{r}.bank_id, {day.format(r=r)}, {r}.id % {STRIPES}, {sign}1, "
        f"{sign}(CASE WHEN {r}.is_volunteer THEN 1 ELSE 0 END), {sign}(CASE WHEN {r}.is_recipient THEN 1 ELSE 0 END), "
        f"{sign}(CASE WHEN {r}.referred_by_id IS NOT NULL THEN 1 ELSE 0 END), "
        f"{sign}(CASE WHEN {r}.is_volunteer AND {r}.referred_by_id IS NOT NULL THEN 1 ELSE 0 END)"
    )


# A change the counts see: status, the flags, whether referred, or the keys (bank, join day, id).
CHANGED = (
    "OLD.status <> NEW.status OR OLD.is_volunteer <> NEW.is_volunteer OR OLD.is_recipient <> NEW.is_recipient "
    "OR (OLD.referred_by_id IS NULL) <> (NEW.referred_by_id IS NULL) OR OLD.bank_id <> NEW.bank_id "
    "OR OLD.created_at <> NEW.created_at OR OLD.id <> NEW.id"
)

PG_DAY = "({r}.created_at AT TIME ZONE 'Asia/Shanghai')::date"
PG_UPSERT = (
    f"INSERT INTO members_dailymembercount ({COLUMNS}) VALUES ({{values}}) "
    f"ON CONFLICT (bank_id, day, stripe) DO UPDATE SET {ADD};"
)
POSTGRES = f"""
CREATE OR REPLACE FUNCTION members_count_active() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'active' THEN
        {PG_UPSERT.format(values=_row("OLD", "-", PG_DAY))}
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'active' THEN
        {PG_UPSERT.format(values=_row("NEW", "", PG_DAY))}
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER members_count_active_rows AFTER INSERT OR DELETE ON members_member
    FOR EACH ROW EXECUTE FUNCTION members_count_active();
CREATE TRIGGER members_count_active_changes AFTER UPDATE ON members_member
    FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION members_count_active();
"""
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS members_count_active_rows ON members_member;
DROP TRIGGER IF EXISTS members_count_active_changes ON members_member;
DROP FUNCTION IF EXISTS members_count_active();
"""

SQLITE_DAY = "date({r}.created_at, '+8 hours')"  # SQLite keeps UTC text; Shanghai is UTC+8 all year
# INSERT … SELECT … WHERE: the WHERE keeps SQLite from reading ON CONFLICT as a join's ON.
SQLITE_UPSERT = (
    f"INSERT INTO members_dailymembercount ({COLUMNS}) SELECT {{values}} WHERE {{when}} "
    f"ON CONFLICT (bank_id, day, stripe) DO UPDATE SET {ADD};"
)
SQLITE = [
    "CREATE TRIGGER members_count_active_insert AFTER INSERT ON members_member WHEN NEW.status = 'active' BEGIN "
    + SQLITE_UPSERT.format(values=_row("NEW", "", SQLITE_DAY), when="1")
    + " END",
    "CREATE TRIGGER members_count_active_delete AFTER DELETE ON members_member WHEN OLD.status = 'active' BEGIN "
    + SQLITE_UPSERT.format(values=_row("OLD", "-", SQLITE_DAY), when="1")
    + " END",
    f"CREATE TRIGGER members_count_active_update AFTER UPDATE ON members_member WHEN {CHANGED} BEGIN "
    + SQLITE_UPSERT.format(values=_row("OLD", "-", SQLITE_DAY), when="OLD.status = 'active'")
    + " "
    + SQLITE_UPSERT.format(values=_row("NEW", "", SQLITE_DAY), when="NEW.status = 'active'")
    + " END",
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS members_count_active_{op}" for op in ("insert", "delete", "update")
]


def fill_sql(day: str) -> str:
    m = "m"
    return (
        f"INSERT INTO members_dailymembercount ({COLUMNS}) "
        f"SELECT m.bank_id, {day.format(r=m)}, m.id %% {STRIPES}, count(*), "
        "sum(CASE WHEN m.is_volunteer THEN 1 ELSE 0 END), sum(CASE WHEN m.is_recipient THEN 1 ELSE 0 END), "
        "sum(CASE WHEN m.referred_by_id IS NOT NULL THEN 1 ELSE 0 END), "
        "sum(CASE WHEN m.is_volunteer AND m.referred_by_id IS NOT NULL THEN 1 ELSE 0 END) "
        "FROM members_member m WHERE m.status = 'active' GROUP BY 1, 2, 3"
    )


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES.replace("%", "%%"))
        schema_editor.execute(fill_sql(PG_DAY))
    else:
        for sql in SQLITE:
            schema_editor.execute(sql.replace("%", "%%"))
        schema_editor.execute(fill_sql(SQLITE_DAY))


def backward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP)
    else:
        for sql in SQLITE_DROP:
            schema_editor.execute(sql)
    schema_editor.execute("DELETE FROM members_dailymembercount")


class Migration(migrations.Migration):
    dependencies = [("members", "0010_daily_member_count")]

    operations = [migrations.RunPython(forward, backward)]
