"""Rebuilding a kept summary from its rows: one bank's rows of the table made equal to a recount, set-based.

The three summaries of the head office's stats (the ledger's daily summary, the services' daily summary, the head
counts) share a shape: a table keyed by (bank, day, …, stripe) holding figures that writers add to with upserts in
the same database transaction as the rows they count. Each app names its table and its recount (a SELECT giving
one row per key, columns named as the table's); `rebuild` compares the two through a temporary table and writes
only the rows that differ. Rows whose figures are all zero are what the upserts leave when counted rows go away:
equal to no row, they are kept.

Concurrent writers: every writer upserts the summary table, which takes PostgreSQL's ROW EXCLUSIVE lock on it until
it commits. The rebuild first takes the table in EXCLUSIVE mode (readers go on; writers wait), so each writer
either committed before the recount, which then sees its rows, or waits at its upsert until the rebuild commits,
its rows unseen by the recount and its count added to the rebuilt row afterwards: none is lost or counted twice.
The wait for writers in flight is bounded by `lock_timeout`, so a busy table gives a clear refusal rather than a
queue of stalled writers. SQLite has one writer at a time: the rebuild takes the write lock first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import OperationalError, connection
from django.utils.translation import gettext as _

from timebank.lib.errors import Conflict
from timebank.lib.races import sqlstate

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE when lock_timeout runs out
SCRATCH = "summary_rebuilt"  # the temporary table holding one bank's recount


@dataclass(frozen=True)
class SummaryTable:
    """A kept summary: its table, the key columns after `bank_id`, and the figures the writers add to."""

    name: str  # as the command's --only names it
    table: str
    keys: tuple[str, ...]
    figures: tuple[str, ...]


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild of one bank's summary changed (or, dry, would change), in rows of the table."""

    summary: str
    bank_id: int
    added: int
    changed: int
    removed: int
    dry_run: bool
    # The first DETAILED differing rows: key, the figures kept before (None: no row) and after (None: removed). A
    # rebuild recounts from rows nobody chains (an order's minutes), so its audit entry keeps what it overwrote:
    # drift that was an edit stays visible after the repair.
    rows_changed: tuple[dict[str, Any], ...] = ()

    @property
    def rows(self) -> int:
        return self.added + self.changed + self.removed

    def as_data(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "added": self.added,
            "changed": self.changed,
            "removed": self.removed,
            "rows": list(self.rows_changed),
        }


def lock_against_writers(table: str, timeout_seconds: float) -> None:
    """Hold `table` against writers until this transaction ends, waiting at most `timeout_seconds` for those in
    flight (PostgreSQL); SQLite's write lock does the same for every table."""
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.execute(f"DELETE FROM {table} WHERE 1 = 0")  # noqa: S608 - a write takes SQLite's write lock
            return
        cursor.execute("SELECT current_setting('lock_timeout')")
        before = cursor.fetchone()[0]
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{max(1, int(timeout_seconds * 1000))}ms"])
        try:
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
        except OperationalError as exc:
            if sqlstate(exc) != LOCK_NOT_AVAILABLE:
                raise
            raise Conflict(
                _("汇总表 %(table)s 正被写入，%(seconds)s 秒内未能锁定，未作任何修改；请稍后再试。")
                % {"table": table, "seconds": timeout_seconds},
                code="summary_busy",
            ) from exc
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [before])


LOCK_TIMEOUT_SECONDS = 5.0


def rebuild(
    summary: SummaryTable,
    bank_id: int,
    recount: str,
    params: list[Any],
    *,
    dry_run: bool,
    lock_timeout: float = LOCK_TIMEOUT_SECONDS,
) -> Rebuilt:
    """Make the bank's rows of `summary` equal to `recount` (run with `params`; one row per key, columns `bank_id`,
    the keys and the figures), counting the rows added, changed and removed. Run inside the caller's transaction,
    which holds the table against writers from here on; a `dry_run` only counts, without the lock (its figures
    are a moment's), and writes nothing but its temporary table."""
    t = summary.table
    if not dry_run:
        lock_against_writers(t, lock_timeout)
    columns = ", ".join(("bank_id", *summary.keys, *summary.figures))
    same_key = " AND ".join(f"{t}.{c} = r.{c}" for c in ("bank_id", *summary.keys))
    differs = " OR ".join(f"{t}.{f} <> r.{f}" for f in summary.figures)
    nonzero = " OR ".join(f"{t}.{f} <> 0" for f in summary.figures)
    unmatched = f"{t}.bank_id = %s AND ({nonzero}) AND NOT EXISTS (SELECT 1 FROM {SCRATCH} r WHERE {same_key})"  # noqa: S608
    missing = f"NOT EXISTS (SELECT 1 FROM {t} WHERE {same_key})"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        cursor.execute(f"CREATE TEMPORARY TABLE {SCRATCH} AS SELECT {columns} FROM ({recount}) AS found", params)  # noqa: S608
        keys = ", ".join(f"r.{c}" for c in summary.keys)
        kept = ", ".join(f"{t}.{f}" for f in summary.figures)
        found = ", ".join(f"r.{f}" for f in summary.figures)
        n = len(summary.figures)
        cursor.execute(f"SELECT {keys}, {found} FROM {SCRATCH} r WHERE {missing} ORDER BY {keys}")  # noqa: S608
        added_rows = [(row[:-n], None, row[-n:]) for row in cursor.fetchall()]
        cursor.execute(
            f"SELECT {keys}, {kept}, {found} FROM {t} JOIN {SCRATCH} r ON {same_key} WHERE {differs} ORDER BY {keys}"  # noqa: S608
        )
        changed_rows = [(row[: -2 * n], row[-2 * n : -n], row[-n:]) for row in cursor.fetchall()]
        own_keys = ", ".join(f"{t}.{c}" for c in summary.keys)
        cursor.execute(f"SELECT {own_keys}, {kept} FROM {t} WHERE {unmatched} ORDER BY {own_keys}", [bank_id])  # noqa: S608
        removed_rows = [(row[:-n], row[-n:], None) for row in cursor.fetchall()]
        added, changed, removed = len(added_rows), len(changed_rows), len(removed_rows)
        detail = [_described(summary, *row) for row in (added_rows + changed_rows + removed_rows)[:DETAILED]]
        if not dry_run:
            cursor.execute(f"DELETE FROM {t} WHERE {unmatched}", [bank_id])  # noqa: S608
            figures = ", ".join(f"{f} = r.{f}" for f in summary.figures)
            cursor.execute(f"UPDATE {t} SET {figures} FROM {SCRATCH} r WHERE {same_key} AND ({differs})")  # noqa: S608
            cursor.execute(f"INSERT INTO {t} ({columns}) SELECT {columns} FROM {SCRATCH} r WHERE {missing}")  # noqa: S608
        cursor.execute(f"DROP TABLE {SCRATCH}")
    return Rebuilt(summary.name, bank_id, added, changed, removed, dry_run, tuple(detail))


DETAILED = 100  # differing rows kept in the rebuild's audit entry


def _described(
    summary: SummaryTable, key: tuple[Any, ...], before: tuple[Any, ...] | None, after: tuple[Any, ...] | None
) -> dict[str, Any]:
    def figures(values: tuple[Any, ...] | None) -> dict[str, int] | None:
        return None if values is None else {f: int(v) for f, v in zip(summary.figures, values, strict=True)}

    return {
        "key": {c: str(v) for c, v in zip(summary.keys, key, strict=True)},
        "before": figures(before),
        "after": figures(after),
    }
