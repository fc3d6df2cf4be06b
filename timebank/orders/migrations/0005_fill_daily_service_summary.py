"""Fill the services' daily summary from the orders already credited and the service records already posted: one
set-based statement, whatever the size.

The SQL is written out here (not imported from timebank.orders.summary) so the migration keeps meaning what it
meant when it was written."""

from typing import Any

from django.db import migrations

STRIPES = 8


def forward(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        confirmed = "(o.confirmed_at AT TIME ZONE 'Asia/Shanghai')::date"
        posted = "(t.created_at AT TIME ZONE 'Asia/Shanghai')::date"
    else:  # SQLite keeps UTC text; Shanghai is UTC+8 all year
        confirmed = "date(o.confirmed_at, '+8 hours')"
        posted = "date(t.created_at, '+8 hours')"
    schema_editor.execute(
        "INSERT INTO orders_dailyservicesummary (bank_id, day, source, stripe, services, minutes, credited_minutes) "
        f"SELECT o.bank_id, {confirmed}, 'order', o.id %% {STRIPES}, count(*), coalesce(sum(o.actual_minutes), 0), "
        "coalesce(sum(o.credited_minutes), 0) FROM orders_order o "
        "WHERE o.state IN ('confirmed', 'reviewed') AND o.transaction_id IS NOT NULL AND o.confirmed_at IS NOT NULL "
        "GROUP BY 1, 2, 3, 4"
    )
    schema_editor.execute(
        "INSERT INTO orders_dailyservicesummary (bank_id, day, source, stripe, services, minutes, credited_minutes) "
        f"SELECT r.bank_id, {posted}, 'record', r.id %% {STRIPES}, count(*), sum(r.minutes), sum(r.credited_minutes) "
        "FROM orders_servicerecord r JOIN ledger_transaction t "
        "ON t.id = r.transaction_id AND t.bank_id = r.bank_id AND t.kind = 'service_record' GROUP BY 1, 2, 3, 4"
    )


def backward(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute("DELETE FROM orders_dailyservicesummary")


class Migration(migrations.Migration):
    dependencies = [("orders", "0004_daily_service_summary"), ("ledger", "0017_clock_stamps")]

    operations = [migrations.RunPython(forward, backward)]
