"""Settlement benchmark: settle N members with earned minutes on PostgreSQL.

    .venv/bin/python bench/settlement.py [--members 100000,1000000] [--baseline 100000] [--batch N]

For each size it builds a scratch database `timebank_bench_settlement` (dropped first): one bank, N members
with three buckets each (bulk SQL), and opening `earned` balances posted through the ledger's own `post()`
in balanced issuance transactions. Then it runs the real settlement (`start_settlement` + `run_settlement`,
set-based as on any PostgreSQL) and prints the wall time, members per second and the peak memory of the
settling process, so the growth from one size to the next shows whether time is linear and memory flat.
Finally it spot-checks the split.

At the `--baseline` size the same data (a copy of the database, `timebank_bench_settlement_tpl`) is first
settled by the plain-rows path (`set_based=False`: the implementation before issue 17, batches of 1,000
members with every row through Python), so the summary shows the old and new rates measured in one run,
on the same machine under the same load.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from _postgres import psql, setup_django

ROOT = Path(__file__).resolve().parent.parent
DB = "timebank_bench_settlement"
OPENING_CHUNK = 20_000
MEMBER_CHUNK = 5_000


def build(members: int) -> int:
    """A bank with `members` members and earned balances; returns the head office id."""
    from django.db import connection, transaction

    from timebank.ledger.models import Account
    from timebank.ledger.posting import lock_accounts, post
    from timebank.orgs.actions import do_create_org

    bank = do_create_org(None, name="结算基准银行", kind="head_office", parent=None)
    community = do_create_org(None, name="基准社区", kind="sub_branch", parent=bank)
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        # Bulk rows for the benchmark only: the product registers members through its actions. In chunks, each
        # committed on its own: the members' count triggers (members/0011) upsert one of 8 rows per join day for
        # every member, and within one transaction each upsert walks that row's versions written before it, so a
        # million members in one statement take quadratic time (more than an hour); committed chunks get pruned.
        for start in range(1, members + 1, MEMBER_CHUNK):
            cur.execute(
                """
                INSERT INTO members_member (bank_id, home_org_id, name, phone, gender, id_number_encrypted,
                    id_number_hash, id_number_masked, address_encrypted, is_volunteer, is_recipient,
                    recipient_categories, skills, occupation, willing_services, availability, status,
                    created_at, updated_at)
                SELECT %s, %s, '会员' || g, '', '', '', '', '', '', true, false, '[]', '[]', '', '[]', '{}',
                       'active', now(), now()
                FROM generate_series(%s, %s) AS g
                """,
                [bank.pk, community.pk, start, min(start + MEMBER_CHUNK - 1, members)],
            )
        cur.execute(
            """
            INSERT INTO ledger_account (bank_id, member_id, kind, balance_minutes)
            SELECT %s, m.id, k.kind, 0 FROM members_member m
            CROSS JOIN (VALUES ('earned'), ('goods'), ('reserve')) AS k(kind)
            WHERE m.bank_id = %s ORDER BY m.id, k.kind
            """,
            [bank.pk, bank.pk],
        )
    print(f"  {members:,} members and {3 * members:,} accounts inserted in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    earned_ids = list(
        Account.objects.filter(bank=bank, kind="earned", member__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    issuance_id = Account.objects.get(bank=bank, member__isnull=True, kind="issuance").pk
    for start in range(0, len(earned_ids), OPENING_CHUNK):
        chunk = earned_ids[start : start + OPENING_CHUNK]
        with transaction.atomic():
            locked = lock_accounts([*chunk, issuance_id])
            # 1..600 earned minutes each, odd and even amounts alike.
            legs = [(locked[a], 1 + (a * 7919) % 600) for a in chunk]
            total = sum(m for _a, m in legs)
            post(
                bank_id=bank.pk,
                kind="adjustment",
                legs=[*legs, (locked[issuance_id], -total)],
                actor=None,
                memo="bench opening balances",
                audit=("ledger.adjustment", {"bench": True, "members": len(chunk)}),
            )
    print(f"  opening earned balances posted in {time.perf_counter() - t0:.1f} s")
    with connection.cursor() as cur:
        # A production database has planner statistics and is vacuumed; freshly bulk-loaded tables are not.
        cur.execute("VACUUM ANALYZE")
    return bank.pk


def run(
    members: int, batch: int | None, baseline: str | None, baseline_sql: str | None
) -> list[dict[str, float | str]]:
    """Build the data; at the baseline size settle a copy first by `baseline` ("rows" or "set-based", the latter
    after `baseline_sql`, e.g. a schema as it was, ran on the copy), then the data by the set-based path."""
    from django.db import connections

    connections.close_all()
    psql(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    psql(f"DROP DATABASE IF EXISTS {DB}_tpl WITH (FORCE)")
    psql(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True, env=os.environ.copy())
    bank_id = build(members)
    if not baseline:
        return [settle(members, bank_id, batch, set_based=True)]
    connections.close_all()
    psql(f"CREATE DATABASE {DB}_tpl TEMPLATE {DB}")
    for statement in (baseline_sql or "").split(";"):
        if statement.strip():
            psql(statement, DB)  # one by one: VACUUM cannot run in psql's one transaction of a multi-statement -c
    results = [settle(members, bank_id, batch, set_based=baseline == "set-based", label="baseline")]
    connections.close_all()
    psql(f"DROP DATABASE {DB} WITH (FORCE)")
    psql(f"CREATE DATABASE {DB} TEMPLATE {DB}_tpl")
    psql(f"DROP DATABASE {DB}_tpl")
    results.append(settle(members, bank_id, batch, set_based=True))
    return results


def settle(
    members: int, bank_id: int, batch: int | None, *, set_based: bool, label: str = ""
) -> dict[str, float | str]:
    from django.utils import timezone

    from timebank.ledger.models import SettlementLine
    from timebank.ledger.settlement import run_settlement, start_settlement
    from timebank.orgs.models import Org

    bank = Org.objects.get(pk=bank_id)
    backend0, python0 = backend_cpu(), time.process_time()
    tracemalloc.start()
    t0 = time.perf_counter()
    settlement, _ = start_settlement(None, bank, timezone.localdate())
    done = run_settlement(settlement, batch=batch, set_based=set_based)
    wall = time.perf_counter() - t0
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    backend, python = backend_cpu() - backend0, time.process_time() - python0
    assert done.status == "done" and done.members == members, (done.status, done.members)
    assert done.goods_minutes + done.reserve_minutes == done.moved_minutes
    sample = SettlementLine.objects.filter(settlement=done).order_by("?")[:5]
    for line in sample:
        assert (
            line.goods_minutes == line.earned_minutes // 2
            and line.reserve_minutes == line.earned_minutes - line.goods_minutes
        )
    path = "set-based" if set_based else "rows (before)"
    if label and set_based:
        path = "set-b. (before)"
    print(
        f"  {path}: settled in {wall:.1f} s: {members / wall:,.0f} members/s, peak Python memory {peak / 2**20:.1f} MiB; "
        f"CPU s: database backend {backend:.1f}, Python {python:.1f}"
    )
    return {
        "path": path,
        "members": members,
        "wall": wall,
        "rate": members / wall,
        "peak_mb": peak / 2**20,
        "moved": done.moved_minutes,
        "backend_cpu": backend,
        "python_cpu": python,
    }


def backend_cpu() -> float:
    """CPU seconds the settling connection's server process has used (0 when the server is not on this machine):
    on a shared machine the wall time follows the load, the CPU time much less."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    global DB
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument(
        "--batch", type=int, default=None, help="members per settlement batch (default: each path's own)"
    )
    parser.add_argument(
        "--baseline",
        type=int,
        default=100_000,
        help="at this size, first settle a copy of the data by the plain-rows path (the one before); 0: never",
    )
    parser.add_argument(
        "--baseline-path",
        choices=["rows", "set-based"],
        default="rows",
        help="how the baseline copy settles: the plain-rows path, or the set-based one after --baseline-sql",
    )
    parser.add_argument(
        "--baseline-sql",
        default=None,
        help="SQL run on the baseline copy before it settles (e.g. restoring an index as it was, to compare)",
    )
    parser.add_argument("--db", default=DB, help=f"the scratch database (dropped and rebuilt; default {DB})")
    args = parser.parse_args()
    DB = args.db
    setup_django(DB)
    load_start = os.getloadavg()
    results: list[dict[str, float | str]] = []
    for size in (int(s) for s in args.members.split(",")):
        print(f"== {size:,} members (load average {os.getloadavg()[0]:.1f})", flush=True)
        baseline = args.baseline_path if size == args.baseline else None
        results += run(size, args.batch, baseline, args.baseline_sql)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("\n== Summary (goal: 1,000,000 members in under 60 s, memory flat as members grow)")
    print(
        f"{'path':>15} | {'members':>10} | {'wall s':>8} | {'members/s':>10} | {'peak MiB':>9} | "
        f"{'backend CPU s':>13} | {'Python CPU s':>12}"
    )
    for r in results:
        print(
            f"{r['path']:>15} | {int(r['members']):>10,} | {float(r['wall']):>8.1f} | {float(r['rate']):>10,.0f} | "
            f"{float(r['peak_mb']):>9.1f} | {float(r['backend_cpu']):>13.1f} | {float(r['python_cpu']):>12.1f}"
        )
    new = [r for r in results if r["path"] == "set-based"]
    old = [r for r in results if r["path"] != "set-based"]
    if old:
        same = [r for r in new if r["members"] == old[0]["members"]]
        print(f"set-based ×{float(same[0]['rate']) / float(old[0]['rate']):.2f} the members/s of {old[0]['path']}")
    if len(new) > 1:
        a, b = new[0], new[-1]
        print(
            f"set-based: time grew ×{float(b['wall']) / float(a['wall']):.1f} for "
            f"×{float(b['members']) / float(a['members']):.0f} members; "
            f"peak memory ×{float(b['peak_mb']) / max(float(a['peak_mb']), 0.01):.2f}"
        )
    print(f"process max RSS {rss:.0f} MiB (includes the set-up of the data)")
    end = os.getloadavg()
    print(f"load average (1/5/15 min) at the start {load_start}, at the end {end}")


if __name__ == "__main__":
    main()
