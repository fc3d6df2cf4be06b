"""The crash test across two nodes, CI size (issue 16): transfers both ways while either node's server and its
`federation_sync` loop are SIGKILLed and restarted.

The harness is bench/federation_crash.py (the full-size run is `make bench-federation-crash`). It makes two
databases of its own on the PostgreSQL server the suite uses (named after the suite's database, so parallel runs
do not meet) and drops them at the end. Every acknowledged transfer must be exactly once on the sender and exactly
once on the receiver with the same outcome, nothing may be left pending, both ledgers must verify, the clearing
accounts must mirror and `federation_reconcile` must agree on both nodes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.postgres
def test_acknowledged_transfers_are_exactly_once_on_both_nodes_through_kills() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("a PostgreSQL crash test: runs in the PostgreSQL pass of `make test`")
    parts = urllib.parse.urlsplit(url)
    prefix = f"{parts.path.lstrip('/') or 'tb'}_fedcrash"[:50]
    env = {
        **os.environ,
        "BENCH_PGHOST": parts.hostname or "127.0.0.1",
        "BENCH_PGPORT": str(parts.port or 5432),
    }
    args = ["--duration", "12", "--baseline", "3", "--server-kills", "2", "--sync-kills", "2"]
    args += ["--clients", "4", "--members", "3", "--refuse-every", "6", "--db-prefix", prefix, "--json"]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "federation_crash.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )
    try:
        stdout, stderr = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.terminate()  # SIGTERM: the harness stops its nodes and drops its databases
        stdout, stderr = proc.communicate(timeout=60)
    print(stdout)
    assert proc.returncode == 0, f"{stdout}\n{stderr[-4000:]}"
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["ok"] and result["problems"] == []
    # Both servers were killed under load, and both sync loops.
    assert result["kills_a"] == result["kills_b"] == 1
    assert result["sync_kills_a"] == 1 and result["sync_kills_b"] == 1
    # Every transfer a client sent was answered, and each answer is exactly once on both sides.
    assert result["acknowledged"] == result["sent"] > 0
    assert result["found_once_sender"] == result["found_once_receiver"] == result["acknowledged"]
    assert result["duplicates"] == 0
    # Both outcomes happened: completed ones credited, refused ones (a wrong name) refunded on the sender.
    assert result["completed"] > 0 and result["refused"] > 0
    assert result["completed"] + result["refused"] == result["acknowledged"]
    assert result["clearing_a_for_b"] == -result["clearing_b_for_a"]
    assert result["days_reconciled"]
