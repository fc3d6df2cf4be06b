"""The daily summary (`DailySummary`): a bank's transactions and minutes per day and kind, kept by the posting path.

`add_to_summary` is called once per transaction by `posting.write_transaction`, the one place that writes ledger
rows, so the summary moves in the same database transaction as the legs and can never drift from them.
`recount_sql` counts it again from the transactions: `fill_sql` adds that to an empty summary (the reports
benchmark; data migration 0011 keeps its own frozen copy) and `actions.do_rebuild_daily_summary` (`manage.py
rebuild_summaries`) makes a drifted bank's rows equal to it. `summary_problems` is `verify`'s check that it still
equals that recomputation.

Contention: the upsert takes a row lock held until commit, and every posting of a bank on one day would queue on
the same (bank, day, kind) row. The row is therefore striped by the transaction's id (`SUMMARY_STRIPES` rows per
key, summed on read), and the upsert is the posting's last statement, after the accounts' locks: it is held for the
shortest time the commit allows.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Sum

from timebank.ledger.models import SUMMARY_STRIPES, DailySummary, Transaction
from timebank.lib.summaries import SummaryTable

SHANGHAI = ZoneInfo("Asia/Shanghai")  # days are the deployment's days, as the stats bound them
TABLE = DailySummary._meta.db_table
SUMMARY = SummaryTable("ledger", TABLE, keys=("day", "kind", "stripe"), figures=("transactions", "minutes"))

UPSERT = (
    f"INSERT INTO {TABLE} (bank_id, day, kind, stripe, transactions, minutes) VALUES (%s, %s, %s, %s, 1, %s) "  # noqa: S608
    "ON CONFLICT (bank_id, day, kind, stripe) DO UPDATE SET "
    f"transactions = {TABLE}.transactions + 1, minutes = {TABLE}.minutes + excluded.minutes"
)


def day_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(SHANGHAI).date()


def add_to_summary(tx: Transaction) -> None:
    """Count one just-written transaction in its bank's day: one upsert statement (PostgreSQL and SQLite)."""
    with connection.cursor() as cursor:
        cursor.execute(UPSERT, [tx.bank_id, day_of(tx.created_at), tx.kind, tx.pk % SUMMARY_STRIPES, tx.minutes])


def summed(bank_id: int, first: dt.date | None, last: dt.date | None, kind: str | None = None) -> tuple[int, int]:
    """(transactions, minutes) the bank posted on the days [first, last] (None: unbounded), of one kind or all."""
    rows = DailySummary.objects.filter(bank_id=bank_id)
    if first is not None:
        rows = rows.filter(day__gte=first)
    if last is not None:
        rows = rows.filter(day__lte=last)
    if kind is not None:
        rows = rows.filter(kind=kind)
    found = rows.aggregate(n=Sum("transactions"), m=Sum("minutes"))
    return int(found["n"] or 0), int(found["m"] or 0)


def whole_days(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.date | None, dt.date | None] | None:
    """The days [first, last] that [start, end) covers exactly, when each bound is a local midnight (as the stats'
    `clock.day_bounds` makes them); None when a bound falls within a day, which the summary cannot split."""
    days: list[dt.date | None] = []
    for bound in (start, end):
        if bound is None:
            days.append(None)
            continue
        local = bound.astimezone(SHANGHAI)
        if local.time() != dt.time():
            return None
        days.append(local.date())
    first, after = days
    return first, (after - dt.timedelta(days=1) if after is not None else None)


def _day_sql() -> str:
    if connection.vendor == "postgresql":
        return "(t.created_at AT TIME ZONE 'Asia/Shanghai')::date"
    # SQLite keeps UTC text; Shanghai has kept UTC+8 all year since 1992.
    return "date(t.created_at, '+8 hours')"


def recount_sql(bank_filter: str = "") -> str:
    """The summary's rows counted again from the transactions, one per (bank, day, kind, stripe), its columns
    named as the table's; `bank_filter` is "" (every bank) or "AND t.bank_id = %s". Its modulo is written `%%`."""
    return (
        f"SELECT t.bank_id AS bank_id, {_day_sql()} AS day, t.kind AS kind, t.id %% {SUMMARY_STRIPES} AS stripe, "  # noqa: S608
        f"count(*) AS transactions, sum(t.minutes) AS minutes FROM {Transaction._meta.db_table} t "
        f"WHERE 1 = 1 {bank_filter} GROUP BY 1, 2, 3, 4"
    )


def fill_sql() -> str:
    """One set-based statement adding every transaction to an empty summary (for callers that bypassed the posting
    path such as the reports benchmark's bulk load). Run it with an empty parameter list."""
    return (
        f"INSERT INTO {TABLE} (bank_id, day, kind, stripe, transactions, minutes) "  # noqa: S608
        f"SELECT bank_id, day, kind, stripe, transactions, minutes FROM ({recount_sql()}) AS found"
    )


def fill() -> None:
    with connection.cursor() as cursor:
        cursor.execute(fill_sql(), [])


def summary_problems(bank_id: int) -> list[str]:
    """Every (day, kind) where the bank's summary (stripes summed) differs from its transactions recomputed:
    one grouped query over both."""
    sql = (
        "SELECT day, kind, sum(n), sum(m), sum(kept_n), sum(kept_m) FROM ("  # noqa: S608
        f"SELECT {_day_sql()} AS day, t.kind AS kind, 1 AS n, t.minutes AS m, 0 AS kept_n, 0 AS kept_m "
        f"FROM {Transaction._meta.db_table} t WHERE t.bank_id = %s "
        f"UNION ALL SELECT s.day, s.kind, 0, 0, s.transactions, s.minutes FROM {TABLE} s WHERE s.bank_id = %s"
        ") AS both_sides GROUP BY day, kind HAVING sum(n) <> sum(kept_n) OR sum(m) <> sum(kept_m) ORDER BY day, kind"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [bank_id, bank_id])
        rows = cursor.fetchall()
    return [
        f"bank {bank_id}: the daily summary for {day} ({kind}) holds {kept_n} transactions of {kept_m} minutes, "
        f"but the ledger has {n} of {m}"
        for day, kind, n, m, kept_n, kept_m in rows
    ]
