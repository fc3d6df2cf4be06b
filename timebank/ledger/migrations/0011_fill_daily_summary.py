"""Fill the daily summary from the transactions already posted: one set-based statement, whatever the size.

The SQL is written out here (not imported from timebank.ledger.summary) so the migration keeps meaning what it
meant when it was written."""

from typing import Any

from django.db import migrations

STRIPES = 8


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        day = "(t.created_at AT TIME ZONE 'Asia/Shanghai')::date"
    else:
        day = "date(t.created_at, '+8 hours')"  # SQLite keeps UTC text; Shanghai is UTC+8 all year
    schema_editor.execute(
        "INSERT INTO ledger_dailysummary (bank_id, day, kind, stripe, transactions, minutes) "
        f"SELECT t.bank_id, {day}, t.kind, t.id %% {STRIPES}, count(*), sum(t.minutes) "
        "FROM ledger_transaction t GROUP BY 1, 2, 3, 4"
    )


def backward(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute("DELETE FROM ledger_dailysummary")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0010_daily_summary")]

    operations = [migrations.RunPython(forward, backward)]
