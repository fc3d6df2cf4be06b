"""The services' daily summary (`DailyServiceSummary`): per bank and day, the orders credited and the service records
posted, their count, actual minutes and credited minutes, kept where they are written.

`add_order` is called by `actions.transition` when an order enters the credited stage (confirm, buy-service; no
transition leaves that stage and nothing else writes an order's credited figures), `add_record` by
`records.post_service_record` when a record is posted (records are never edited or deleted). Each is one upsert in
the same database transaction as the row, so the summary moves with the rows. The days are those the stats count
them in: an order's `confirmed_at`, a record's transaction's `created_at`, in Asia/Shanghai.

`kept_rows_sql` counts it again from the rows: `fill_sql` adds that to an empty summary (the reports benchmark; data
migration 0005 keeps its own frozen copy) and `actions.do_rebuild_service_summary` (`manage.py rebuild_summaries`)
makes a drifted bank's rows equal to it. `summary_problems` is `verify`'s check (through `BankVerifying`) that it still equals that recount. Striped by the row's id like the
ledger's daily summary (`timebank.ledger.summary`), so writers of one bank-day rarely queue on one row.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import Sum

from timebank.ledger.models import Transaction, TransactionKind
from timebank.ledger.summary import day_of
from timebank.lib.summaries import SummaryTable
from timebank.orders.models import SERVICE_STRIPES, DailyServiceSummary, Order, ServiceRecord, ServiceSource
from timebank.orders.rules import CREDITED_STATES

TABLE = DailyServiceSummary._meta.db_table
ORDERS = Order._meta.db_table
RECORDS = ServiceRecord._meta.db_table
TRANSACTIONS = Transaction._meta.db_table
SUMMARY = SummaryTable(
    "services", TABLE, keys=("day", "source", "stripe"), figures=("services", "minutes", "credited_minutes")
)

UPSERT = (
    f"INSERT INTO {TABLE} (bank_id, day, source, stripe, services, minutes, credited_minutes) "  # noqa: S608
    "VALUES (%s, %s, %s, %s, 1, %s, %s) ON CONFLICT (bank_id, day, source, stripe) DO UPDATE SET "
    f"services = {TABLE}.services + 1, minutes = {TABLE}.minutes + excluded.minutes, "
    f"credited_minutes = {TABLE}.credited_minutes + excluded.credited_minutes"
)


def _add(bank_id: int, day: dt.date, source: str, row_id: int, minutes: int, credited: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(UPSERT, [bank_id, day, source, row_id % SERVICE_STRIPES, minutes, credited])


def add_order(order: Order) -> None:
    """Count an order that has just been credited (its transaction, confirmed_at and minutes written)."""
    if order.transaction_id is None or order.confirmed_at is None:
        return  # not what the stats count as a confirmed order; verify reports such an order if one ever exists
    _add(
        order.bank_id,
        day_of(order.confirmed_at),
        ServiceSource.ORDER,
        order.pk,
        order.actual_minutes or 0,
        order.credited_minutes or 0,
    )


def add_record(record: ServiceRecord, tx: Transaction) -> None:
    """Count a service record just posted through `tx` (the stats count a record by its transaction's day)."""
    if tx.kind != TransactionKind.SERVICE_RECORD or tx.bank_id != record.bank_id:
        return  # the stats' posted_records would not count it either
    _add(
        record.bank_id, day_of(tx.created_at), ServiceSource.RECORD, record.pk, record.minutes, record.credited_minutes
    )


def summed(bank_id: int, first: dt.date | None, last: dt.date | None, source: str) -> tuple[int, int, int]:
    """(services, minutes, credited minutes) of the bank's orders or records on the days [first, last]
    (None: unbounded)."""
    rows = DailyServiceSummary.objects.filter(bank_id=bank_id, source=source)
    if first is not None:
        rows = rows.filter(day__gte=first)
    if last is not None:
        rows = rows.filter(day__lte=last)
    found = rows.aggregate(n=Sum("services"), m=Sum("minutes"), c=Sum("credited_minutes"))
    return int(found["n"] or 0), int(found["m"] or 0), int(found["c"] or 0)


def _day(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"({column} AT TIME ZONE 'Asia/Shanghai')::date"
    return f"date({column}, '+8 hours')"  # SQLite keeps UTC text; Shanghai has kept UTC+8 all year since 1992


def _credited_states() -> str:
    return ", ".join(f"'{state}'" for state in CREDITED_STATES)


def _recount_sql(bank_filter: str) -> str:
    """(bank_id, day, source, stripe, services, minutes, credited_minutes) recounted from the orders and records:
    the rows the stats' `confirmed_orders` and `posted_records` find. An order credited without a `confirmed_at`
    (none is written so) lands on a NULL day, which the summary cannot hold: verify reports it."""
    return (
        f"SELECT o.bank_id AS bank_id, {_day('o.confirmed_at')} AS day, '{ServiceSource.ORDER}' AS source, "  # noqa: S608
        f"o.id %% {SERVICE_STRIPES} AS stripe, count(*) AS services, coalesce(sum(o.actual_minutes), 0) AS minutes, "
        f"coalesce(sum(o.credited_minutes), 0) AS credited_minutes FROM {ORDERS} o "
        f"WHERE o.state IN ({_credited_states()}) AND o.transaction_id IS NOT NULL {bank_filter.format(t='o')} "
        "GROUP BY 1, 2, 3, 4 "
        f"UNION ALL SELECT r.bank_id, {_day('t.created_at')}, '{ServiceSource.RECORD}', r.id %% {SERVICE_STRIPES}, "
        f"count(*), sum(r.minutes), sum(r.credited_minutes) FROM {RECORDS} r JOIN {TRANSACTIONS} t "
        f"ON t.id = r.transaction_id AND t.bank_id = r.bank_id AND t.kind = '{TransactionKind.SERVICE_RECORD}' "
        f"WHERE 1 = 1 {bank_filter.format(t='r')} GROUP BY 1, 2, 3, 4"
    )


def kept_rows_sql(bank_filter: str = "") -> str:
    """The rows the summary should hold, counted again: `_recount_sql` without the days it cannot hold. Its columns
    are named as the table's; `bank_filter` is "" (every bank) or "AND {t}.bank_id = %s"."""
    return (
        "SELECT bank_id, day, source, stripe, services, minutes, credited_minutes "  # noqa: S608
        f"FROM ({_recount_sql(bank_filter)}) AS found WHERE day IS NOT NULL"
    )


def fill_sql() -> str:
    """One set-based statement adding every credited order and posted record to an empty summary (for callers that
    bypassed the actions such as the reports benchmark's bulk load). Run it with an empty parameter list: its
    modulo is written `%%`."""
    return f"INSERT INTO {TABLE} (bank_id, day, source, stripe, services, minutes, credited_minutes) {kept_rows_sql()}"


def fill() -> None:
    with connection.cursor() as cursor:
        cursor.execute(fill_sql(), [])


def summary_problems(bank_id: int) -> list[str]:
    """Every (day, source) where the bank's summary (stripes summed) differs from its orders and records counted
    again: one grouped query over both."""
    recount = _recount_sql("AND {t}.bank_id = %s")
    sql = (
        "SELECT day, source, sum(n), sum(m), sum(c), sum(kept_n), sum(kept_m), sum(kept_c) FROM ("  # noqa: S608
        f"SELECT day, source, services AS n, minutes AS m, credited_minutes AS c, 0 AS kept_n, 0 AS kept_m, 0 AS kept_c "
        f"FROM ({recount}) AS found "
        f"UNION ALL SELECT s.day, s.source, 0, 0, 0, s.services, s.minutes, s.credited_minutes FROM {TABLE} s "
        "WHERE s.bank_id = %s) AS both_sides GROUP BY day, source "
        "HAVING sum(n) <> sum(kept_n) OR sum(m) <> sum(kept_m) OR sum(c) <> sum(kept_c) ORDER BY day, source"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [bank_id, bank_id, bank_id])
        rows = cursor.fetchall()
    return [
        f"bank {bank_id}: the services' daily summary for {day} ({source}) holds {kept_n} services of {kept_m} "
        f"minutes ({kept_c} credited), but the {source}s give {n} of {m} ({c} credited)"
        for day, source, n, m, c, kept_n, kept_m, kept_c in rows
    ]
