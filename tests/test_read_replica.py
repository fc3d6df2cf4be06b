"""Reports from a read replica (issue 17), on a real streaming replica of a private primary.

It starts its own PostgreSQL primary (initdb in a temporary directory, its own port, trust authentication) and
a hot standby made from it with `pg_basebackup -R` (timebank/lib/pgcluster.py, as bench/crash.py does), and
never touches the shared server. Then it runs tests/read_replica_checks.py in a pytest of its own, with
DATABASE_URL naming the primary and DATABASE_REPLICA_URL the standby: the settings, the router and the report
views as production runs them. Both clusters are stopped and removed afterwards, whatever happened.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from timebank.lib.pgcluster import PgCluster, missing_tools
from timebank.ops.replica import read_alias, reading_from_replica, replica_configured

ROOT = Path(__file__).resolve().parent.parent
CHECKS = "tests/read_replica_checks.py"


@pytest.mark.postgres
def test_reports_read_from_a_streaming_replica_and_writes_stay_on_the_primary() -> None:
    # Its own clusters, not the suite's database: once per CI run is enough, in the PostgreSQL pass.
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        pytest.skip("a PostgreSQL test: runs in the PostgreSQL pass of `make test` (it starts its own clusters)")
    reason = missing_tools("pg_basebackup")
    if reason:
        pytest.skip(f"cannot start a private primary and replica: {reason}")
    workdir = Path(tempfile.mkdtemp(prefix="timebank-replica-"))
    # wal_level=replica and hot_standby=on are PostgreSQL's defaults, said here because the test needs them; fsync
    # off: these clusters die with the test, and what is checked is where queries go, not durability.
    replication = {"wal_level": "replica", "hot_standby": "on", "fsync": "off"}
    primary = PgCluster(workdir, name="primary", database="timebank_replica", settings=replication)
    standby: PgCluster | None = None
    try:
        primary.init()
        standby = primary.standby(workdir)
        env = {
            **os.environ,
            "DATABASE_URL": primary.url,
            "DATABASE_REPLICA_URL": standby.url,
            "DJANGO_SETTINGS_MODULE": "timebank.settings",
        }
        try:
            done = subprocess.run(
                # --no-migrations: the schema straight from the models (seconds, where the migrations take a
                # minute on a busy machine); the checks are about where queries go, not the migrations' triggers.
                [sys.executable, "-m", "pytest", CHECKS, "-p", "no:cacheprovider", "-rs", "--no-migrations"],
                capture_output=True,
                text=True,
                env=env,
                cwd=ROOT,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise AssertionError("the replica checks did not finish within 300 s") from None
        print(done.stdout)
        assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-3000:]}"
        summary = done.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"\d+ passed in .*", summary), summary  # none skipped, none failed
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_without_a_replica_nothing_changes(settings: Any) -> None:
    # DATABASE_REPLICA_URL unset (the suite's own runs): no alias, no router, every read on the primary.
    if replica_configured():
        pytest.skip("DATABASE_REPLICA_URL is set for this run")
    assert "replica" not in settings.DATABASES
    assert not getattr(settings, "DATABASE_ROUTERS", [])
    with reading_from_replica():
        assert read_alias() == "default"
    assert read_alias() == "default"
