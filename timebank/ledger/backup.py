"""What a backup of the time bank must prove it holds: the ledger's accounts, transactions and legs.

The copying itself (pg_dump and pg_restore, SQLite's online backup) is the database's business, in
`timebank.ops.backup`; the ledger tells it what to write into the manifest and check after a restore. The
`backup` and `restore` commands live here, so the restore can run the ledger's verification.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

from timebank.ledger.models import Account, Leg, Transaction
from timebank.ops import backup as copies

BackupError = copies.BackupError


def ledger_snapshot() -> dict[str, Any]:
    """What a restore must reproduce: counts and a digest of every account's balance."""
    digest = hashlib.sha256()
    total = 0
    rows = 0
    for pk, balance in Account.objects.order_by("pk").values_list("pk", "balance_minutes").iterator(chunk_size=5000):
        digest.update(f"{pk}:{balance}\n".encode())
        total += abs(balance)
        rows += 1
    return {
        "accounts": rows,
        "transactions": Transaction.objects.count(),
        "legs": Leg.objects.count(),
        "absolute_balance_minutes": total,
        "balances_sha256": digest.hexdigest(),
    }


def snapshot_of_sqlite_copy(con: sqlite3.Connection) -> dict[str, Any]:
    """The same snapshot read from a SQLite copy (opened read-only), so it describes exactly what was saved."""
    digest = hashlib.sha256()
    total = rows = 0
    for pk, balance in con.execute("SELECT id, balance_minutes FROM ledger_account ORDER BY id"):
        digest.update(f"{pk}:{balance}\n".encode())
        total += abs(balance)
        rows += 1
    return {
        "accounts": rows,
        "transactions": con.execute("SELECT count(*) FROM ledger_transaction").fetchone()[0],
        "legs": con.execute("SELECT count(*) FROM ledger_leg").fetchone()[0],
        "absolute_balance_minutes": total,
        "balances_sha256": digest.hexdigest(),
    }


LEDGER = copies.Contents("ledger", ledger_snapshot, snapshot_of_sqlite_copy)


def backup(path: Path) -> dict[str, Any]:
    """Write a consistent copy to `path` and its manifest (with the ledger's snapshot) to `path`.json."""
    return copies.backup(path, LEDGER)


def restore(path: Path) -> dict[str, Any]:
    """Replace the configured database's contents with the backup at `path`; the ledger must match the
    manifest. Returns the new snapshot."""
    return copies.restore(path, LEDGER)
