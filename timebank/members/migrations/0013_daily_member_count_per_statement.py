"""On PostgreSQL the head counts take a statement's new members in one upsert per (bank, join day, stripe), from the
statement's transition table, instead of one upsert per member.

With a row-level trigger one statement inserting many members (a bulk import's INSERT … SELECT) updated one of only
8 count rows again for every member, in the same transaction: each update walked all the row's earlier versions, so
the statement was quadratic (1,000,000 members: stopped after 14 minutes). Now the statement's active members are
grouped once and each count row is updated once per statement, with the same figures, the same join day (Shanghai)
and the same stripe (id % 8) as 0012. The rows are upserted in key order so that two such statements lock them in
the same order.

Updates and deletes stay row-level, 0012's function: the trigger calling it for inserts is replaced by one for
deletes only, so no member is counted twice (the function's insert branch is left unused). SQLite stays as it is
(it has no transition tables; its inserts are row by row anyway).

The SQL is written out here (not imported) so the migration keeps meaning what it meant when it was written; the
way back re-creates 0011's row-level trigger for inserts and deletes, calling 0012's function as before."""

from typing import Any

from django.db import migrations

STRIPES = 8
FIGURES = ("members", "volunteers", "recipients", "referred", "referred_volunteers")
COLUMNS = "bank_id, day, stripe, " + ", ".join(FIGURES)
ADD = ", ".join(f"{f} = members_dailymembercount.{f} + excluded.{f}" for f in FIGURES)

POSTGRES = f"""
CREATE OR REPLACE FUNCTION members_count_inserted() RETURNS trigger AS $$
BEGIN
    INSERT INTO members_dailymembercount ({COLUMNS})
        SELECT n.bank_id, (n.created_at AT TIME ZONE 'Asia/Shanghai')::date, n.id % {STRIPES}, count(*),
            sum(CASE WHEN n.is_volunteer THEN 1 ELSE 0 END), sum(CASE WHEN n.is_recipient THEN 1 ELSE 0 END),
            sum(CASE WHEN n.referred_by_id IS NOT NULL THEN 1 ELSE 0 END),
            sum(CASE WHEN n.is_volunteer AND n.referred_by_id IS NOT NULL THEN 1 ELSE 0 END)
        FROM inserted_members n WHERE n.status = 'active'
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (bank_id, day, stripe) DO UPDATE SET {ADD};
    RETURN NULL;
END $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS members_count_active_rows ON members_member;
DROP TRIGGER IF EXISTS members_count_active_deletes ON members_member;
DROP TRIGGER IF EXISTS members_count_active_inserts ON members_member;
CREATE TRIGGER members_count_active_deletes AFTER DELETE ON members_member
    FOR EACH ROW EXECUTE FUNCTION members_count_active();
CREATE TRIGGER members_count_active_inserts AFTER INSERT ON members_member
    REFERENCING NEW TABLE AS inserted_members
    FOR EACH STATEMENT EXECUTE FUNCTION members_count_inserted();
"""  # noqa: S608

# What this migration made, dropped (also before 0011's own drop, which cannot drop the function our trigger calls).
POSTGRES_DROP = """
DROP TRIGGER IF EXISTS members_count_active_inserts ON members_member;
DROP TRIGGER IF EXISTS members_count_active_deletes ON members_member;
DROP FUNCTION IF EXISTS members_count_inserted();
"""
POSTGRES_BACK = (
    POSTGRES_DROP
    + """
CREATE TRIGGER members_count_active_rows AFTER INSERT OR DELETE ON members_member
    FOR EACH ROW EXECUTE FUNCTION members_count_active();
"""
)


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES.replace("%", "%%"))


def backward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACK)


class Migration(migrations.Migration):
    dependencies = [("members", "0012_daily_member_count_decrement_in_place")]

    operations = [migrations.RunPython(forward, backward)]
