"""PostgreSQL keeps the fund ledger immutable even against writes that bypass the ORM:
UPDATE and DELETE of entries are refused (a correction is a reversing entry)."""

from django.db import migrations

FORWARD = """
CREATE TRIGGER funds_entry_immutable BEFORE UPDATE OR DELETE ON funds_fundentry
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
"""

BACKWARD = "DROP TRIGGER IF EXISTS funds_entry_immutable ON funds_fundentry;"


def forward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD)


def backward(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD)


class Migration(migrations.Migration):
    dependencies = [
        ("funds", "0001_initial"),
        # ledger_refuse_change() is defined there.
        ("ledger", "0003_postgres_guards"),
    ]

    operations = [migrations.RunPython(forward, backward)]
