"""The chain sealer as its own process for a benchmark run (issue 17), as production runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def unsealed_rows() -> int:
    """Rows of both chains not sealed yet, in the database DATABASE_URL names."""
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM ledger_transaction WHERE seq IS NULL)"
            " + (SELECT count(*) FROM audit_auditentry WHERE seq IS NULL)"
        ).fetchone()
        return int(row[0]) if row else 0


class Sealer:
    """`manage.py sealer` for one run: started before the clients (and waited for), stopped after it caught up."""

    def __init__(self) -> None:
        self.stats = Path(tempfile.mkstemp(prefix="sealer-", suffix=".json")[1])
        ready = self.stats.with_suffix(".ready")
        env = {**os.environ, "CHAIN_SEALING": "process"}
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "sealer", "--stats", str(self.stats), "--ready", str(ready)],
            env=env,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 120
        while not ready.exists() and time.monotonic() < deadline and self.proc.poll() is None:
            time.sleep(0.05)  # measure from a running sealer, not from its start-up
        ready.unlink(missing_ok=True)

    def finish(self, ended: float) -> dict[str, float]:
        """Wait until the sealer has caught up (or 120 s after `ended`, a time.monotonic()), stop it, and read its
        delays: p50/p99/max seconds from a row's creation to its sealing, rows, drain_s, backlog left."""
        backlog = unsealed_rows()
        while backlog and time.monotonic() - ended < 120:
            time.sleep(0.05)
            backlog = unsealed_rows()
        drained = max(0.0, time.monotonic() - ended)
        self.proc.terminate()
        self.proc.wait(timeout=60)
        stats = json.loads(self.stats.read_text() or "{}")
        self.stats.unlink(missing_ok=True)
        return {**stats, "drain_s": drained, "backlog": float(unsealed_rows())}


def describe(stats: dict[str, float]) -> str:
    return (
        f"sealing delay p50 {stats.get('p50', float('nan')) * 1000:.0f} ms, "
        f"p99 {stats.get('p99', float('nan')) * 1000:.0f} ms, max {stats.get('max', float('nan')) * 1000:.0f} ms "
        f"over {stats.get('rows', 0):.0f} rows; caught up {stats['drain_s']:.2f} s after the run; "
        f"unsealed at the end: {stats['backlog']:.0f}"
    )
