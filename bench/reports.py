"""Reports benchmark: stats, a member's statement and the 供不应求 risk on a large bank, on PostgreSQL.

    .venv/bin/python bench/reports.py [--members 100000,1000000] [--legs-per-member 10] [--repeat 15]

For each size it builds a scratch database `timebank_bench_reports_<size>` in bulk SQL (dropped first, kept
afterwards so `--reuse` can measure again without rebuilding), as
bench/settlement.py does: one head office with 10 branches and 100 sub-branches, N members (half volunteers,
birth dates 1940–2005, joined over three years, one in ten referred by another), three buckets each, and
`legs-per-member × N` ledger legs in balanced two-leg transactions spread over two years (a fifth of them
confirmed orders, a fifth service records; more orders requested or cancelled without a transaction).
Account balances are the sums of their legs. The balance trigger is off during the load only (every loaded
transaction is balanced by construction) and the tables are analysed, as production would have statistics.

Then it times, through the same code the API and pages run:
  - the head office's stats for the last year (goal < 300 ms), which read three summaries kept with the rows:
    the ledger's daily summary (`timebank.ledger.summary`, kept by the posting path), the services' daily summary
    (`timebank.orders.summary`, kept where orders are credited and records posted) — the build fills both from
    the bulk-loaded rows as their data migrations do — and the active members per join day
    (`timebank.members.counts`, kept by triggers on the members' table, so also during the bulk load); and beside
    them the same stats without any summary (stats_scan: the rows counted and summed, as before), checked to give
    the same figures, and each part of the stats timed alone both ways,
  - one member's statement page, GET /api/v1/members/{id}/statement with a staff token (goal < 20 ms),
  - the head office's risk projection (goal < 2 s),
and prints p50 and p95 of each, and how each grows from the first size to the last.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

from _postgres import database_url, psql, setup_django

ROOT = Path(__file__).resolve().parent.parent
DB_PREFIX = "timebank_bench_reports"
BRANCHES = 10
SUBS_PER_BRANCH = 10
# stats_scan: the same stats without the summaries (the head office's members, orders, records and transactions
# counted and summed from their tables, as before issue 17), timed in the same run as the baseline; no goal of its own.
GOALS: dict[str, float | None] = {"stats_year": 0.300, "stats_scan": None, "statement": 0.020, "risk": 2.0}


def db_name(members: int) -> str:
    return f"{DB_PREFIX}_{members}"


def use_db(members: int) -> None:
    """Point Django at this size's database (closing any open connection)."""
    from django.conf import settings
    from django.db import connections

    connections.close_all()
    settings.DATABASES["default"]["NAME"] = db_name(members)
    connections["default"].settings_dict["NAME"] = db_name(members)


def step(label: str, t0: float) -> float:
    now = time.perf_counter()
    print(f"  {label}: {now - t0:.1f} s", flush=True)
    return now


def build(members: int, legs_per_member: int) -> dict[str, int]:
    """The bank in bulk SQL; returns the ids the measurements need."""
    from django.db import connection

    from timebank.catalogue.actions import do_create_service_item
    from timebank.ledger.models import Account
    from timebank.orgs.actions import do_create_org

    bank = do_create_org(None, name="报表基准银行", kind="head_office", parent=None)
    subs: list[int] = []
    for b in range(BRANCHES):
        branch = do_create_org(None, name=f"街道{b}", kind="branch", parent=bank)
        for s in range(SUBS_PER_BRANCH):
            subs.append(do_create_org(None, name=f"社区{b}-{s}", kind="sub_branch", parent=branch).pk)
    items = [
        do_create_service_item(None, head_office=bank, name=n, category=c, tier=t).pk
        for n, c, t in (
            ("保洁", "mutual_care", "ordinary"),
            ("维修", "mutual_care", "technical"),
            ("心理", "health_care", "professional"),
        )
    ]
    issuance = Account.objects.get(bank=bank, member__isnull=True, kind="issuance").pk
    transactions = members * legs_per_member // 2
    t0 = time.perf_counter()
    with connection.cursor() as cur:
        # Bulk rows for the benchmark only: the product writes through its actions.
        cur.execute(
            """
            INSERT INTO members_member (bank_id, home_org_id, name, phone, birth_date, gender, id_number_encrypted,
                id_number_hash, id_number_masked, address_encrypted, is_volunteer, is_recipient,
                recipient_categories, skills, occupation, willing_services, availability, status,
                created_at, updated_at)
            SELECT %s, (%s::bigint[])[(1 + g %% %s)::int], '会员' || g, '', date '1940-01-01' + ((g * 7919) %% (65 * 365))::int,
                   '', '', '', '', '', g %% 2 = 0, g %% 3 = 0, '[]', '[]', '', '[]', '{}', 'active',
                   now() - ((g * 104729) %% (3 * 365)) * interval '1 day', now()
            FROM generate_series(1::bigint, %s) AS g ORDER BY g
            """,
            [bank.pk, subs, len(subs), members],
        )
        cur.execute("SELECT min(id) FROM members_member WHERE bank_id = %s", [bank.pk])
        m0 = cur.fetchone()[0]
        cur.execute(
            "UPDATE members_member SET referred_by_id = id - 1 WHERE bank_id = %s AND id %% 10 = 0 AND id > %s",
            [bank.pk, m0],
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
        cur.execute(
            "SELECT min(id), count(*) FROM ledger_account WHERE member_id IS NOT NULL AND bank_id = %s", [bank.pk]
        )
        a0, accounts = cur.fetchone()
        cur.execute(
            "SELECT count(*) FROM ledger_account WHERE member_id IS NOT NULL AND bank_id = %s AND "
            "id = %s + 3 * (member_id - %s) + CASE kind WHEN 'earned' THEN 0 WHEN 'goods' THEN 1 ELSE 2 END",
            [bank.pk, a0, m0],
        )
        assert cur.fetchone()[0] == accounts == 3 * members, "accounts are not laid out as expected"
        t1 = step(f"{members:,} members and {accounts:,} accounts", t0)
        # Two years of transactions, newest last; each moves 15..240 minutes from issuance to a member bucket.
        cur.execute(
            """
            INSERT INTO ledger_transaction (bank_id, seq, kind, memo, minutes, idem_scope, fingerprint,
                created_at, prev_hash, hash)
            SELECT %s, g, CASE WHEN g %% 5 = 0 THEN 'deposit' WHEN g %% 5 = 1 THEN 'service_record'
                                ELSE 'adjustment' END,
                   '', 15 + (g * 31) %% 226, '', '',
                   now() - ((%s - g) * (730 * 24 * 3600.0 / %s)) * interval '1 second', '', md5(g::text)
            FROM generate_series(1::bigint, %s) AS g ORDER BY g
            """,
            [bank.pk, transactions, transactions, transactions],
        )
        t1 = step(f"{transactions:,} transactions", t1)
        cur.execute("ALTER TABLE ledger_leg DISABLE TRIGGER ledger_leg_balanced")
        cur.execute(
            """
            INSERT INTO ledger_leg (transaction_id, account_id, minutes, balance_after_minutes)
            SELECT t.id, x.account_id, x.minutes, 0
            FROM ledger_transaction t
            CROSS JOIN LATERAL (VALUES
                (%s + 3 * ((t.seq * 7919) %% %s) + (t.seq %% 3), t.minutes),
                (%s, -t.minutes)) AS x(account_id, minutes)
            WHERE t.bank_id = %s ORDER BY t.id
            """,
            [a0, members, issuance, bank.pk],
        )
        cur.execute("ALTER TABLE ledger_leg ENABLE TRIGGER ledger_leg_balanced")
        t1 = step(f"{2 * transactions:,} legs", t1)
        cur.execute(
            """
            UPDATE ledger_account a SET balance_minutes = s.total
            FROM (SELECT account_id, sum(minutes) AS total FROM ledger_leg GROUP BY account_id) s
            WHERE a.id = s.account_id
            """
        )
        t1 = step("balances from the legs", t1)
        # Orders: the deposits are confirmed orders; as many again were requested or cancelled undispatched.
        order_sql = """
            INSERT INTO orders_order (bank_id, org_id, recipient_id, service_item_id, volunteer_id, state, payer,
                channel, urgent, scheduled_start, planned_minutes, multiplier, notes, code, code_failures,
                created_at, updated_at, dispatched_at, check_out_at, actual_minutes, credited_minutes,
                transaction_id, confirmed_at, review_comment, cancel_reason, dispute_reason)
            SELECT %(bank)s, m.home_org_id, m.id, (%(items)s::bigint[])[(1 + t.seq %% 3)::int], v.id, {state}, 'subsidy',
                   'app', false, t.created_at - interval '1 day', 60, 1, '', '000000', 0,
                   t.created_at - interval '2 day' - (t.seq %% 10) * interval '1 day', t.created_at,
                   {dispatched}, {check_out}, {actual}, {credited}, {tx}, {confirmed}, '', '', ''
            FROM ledger_transaction t
            JOIN members_member m ON m.id = %(m0)s + (t.seq * 31) %% %(n)s
            JOIN members_member v ON v.id = %(m0)s + 2 * ((t.seq * 7919 / 2) %% (%(n)s / 2)) + 1
            WHERE t.bank_id = %(bank)s AND t.seq %% 5 = {rest}
        """
        params = {"bank": bank.pk, "items": items, "m0": m0, "n": members}
        cur.execute(
            order_sql.format(
                state="'confirmed'",
                dispatched="t.created_at - interval '1 day'",
                check_out="t.created_at - interval '1 hour'",
                actual="t.minutes",
                credited="t.minutes",
                tx="t.id",
                confirmed="t.created_at",
                rest=0,
            ),
            params,
        )
        cur.execute(
            order_sql.format(
                state="CASE WHEN t.seq %% 2 = 0 THEN 'requested' ELSE 'cancelled' END",
                dispatched="NULL",
                check_out="NULL",
                actual="NULL",
                credited="NULL",
                tx="NULL",
                confirmed="NULL",
                rest=3,
            ),
            params,
        )
        t1 = step("orders", t1)
        cur.execute(
            """
            INSERT INTO orders_servicerecord (bank_id, org_id, volunteer_id, service_item_id, minutes, multiplier,
                credited_minutes, served_at, memo, transaction_id, created_at)
            SELECT %(bank)s, v.home_org_id, v.id, (%(items)s::bigint[])[1], t.minutes, 1, t.minutes,
                   t.created_at, '', t.id, t.created_at
            FROM ledger_transaction t
            JOIN members_member v ON v.id = %(m0)s + 2 * ((t.seq * 7919 / 2) %% (%(n)s / 2)) + 1
            WHERE t.bank_id = %(bank)s AND t.seq %% 5 = 1
            """,
            params,
        )
        t1 = step("service records", t1)
        refill_summary(cur)
        t1 = step("daily summary from the transactions", t1)
        refill_services(cur)
        t1 = step("services' daily summary from the orders and records", t1)
        # The head counts per join day (members_dailymembercount) were kept by the members' triggers during the load.
        # Production tables are vacuumed and analysed by autovacuum; freshly bulk-loaded ones are not yet.
        cur.execute("VACUUM ANALYZE")
        step("vacuum analyse", t1)
        cur.execute(
            "SELECT id FROM members_member WHERE bank_id = %s ORDER BY id LIMIT 1 OFFSET %s", [bank.pk, members // 2]
        )
        member = cur.fetchone()[0]
    return {"bank": bank.pk, "member": member}


def refill_summary(cur: Any) -> None:
    """The daily summary from the bulk-loaded transactions (they bypassed the posting path that keeps it), by
    the same set-based statement as the data migration."""
    from timebank.ledger.summary import TABLE, fill_sql

    cur.execute(f"DELETE FROM {TABLE}")
    cur.execute(fill_sql(), [])


def refill_services(cur: Any) -> None:
    """The services' daily summary from the bulk-loaded orders and records (they bypassed the actions that keep
    it), by the same set-based statement as the data migration."""
    from timebank.orders.summary import TABLE, fill_sql

    cur.execute(f"DELETE FROM {TABLE}")
    cur.execute(fill_sql(), [])


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    fn()  # warm the caches once, as a running server would be
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    runs.sort()
    p95 = runs[min(len(runs) - 1, max(0, round(0.95 * len(runs)) - 1))]
    return statistics.median(runs), p95


def measure(ids: dict[str, int], repeat: int) -> dict[str, tuple[float, float]]:
    from django.test import Client
    from django.utils import timezone

    from timebank.orgs.actions import do_create_staff, do_issue_token
    from timebank.orgs.models import Org, User
    from timebank.reports import stats as stats_module
    from timebank.reports.risk import compute_risk
    from timebank.reports.stats import compute

    bank = Org.objects.get(pk=ids["bank"])
    today = timezone.localdate()
    year_ago = today - dt.timedelta(days=365)
    admin = User.objects.filter(username="bench-admin").first() or do_create_staff(
        None, org=bank, username="bench-admin", password="bench-pass-1", name="基准", role="head_office_admin"
    )
    token = do_issue_token(admin)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="127.0.0.1")
    url = f"/api/v1/members/{ids['member']}/statement"

    def statement() -> None:
        resp = client.get(url)
        assert resp.status_code == 200 and resp.json()["items"], resp.content[:200]

    stats = compute(bank, year_ago, today)
    print(f"  stats for the year: {stats.services_completed:,} services, {stats.ledger_transactions:,} transactions")
    risk = compute_risk(bank)
    print(
        f"  risk: {risk.months_to_honour} months to honour, {risk.volunteers:,} volunteers, alerts {[a.code for a in risk.alerts]}"
    )

    def without_summary() -> None:
        # Bounds the summary "cannot split": the stats fall back to counting the transactions, the old path.
        with mock.patch.object(stats_module, "whole_days", lambda start, end: None):
            scanned = compute(bank, year_ago, today)
        assert scanned == stats, (scanned, stats)

    without_summary()
    print_parts(bank, year_ago, today)
    return {
        "stats_year": timed(lambda: compute(bank, year_ago, today), repeat),
        "stats_scan": timed(without_summary, repeat),
        "statement": timed(statement, repeat * 4),
        "risk": timed(lambda: compute_risk(bank), repeat),
    }


def print_parts(bank: Any, first: dt.date, last: dt.date) -> None:
    """Where a year's stats spend their time: each part of `compute` timed alone (median of 3), read from the
    summaries and counted from the rows (stats_scan)."""
    from timebank.lib.clock import day_bounds
    from timebank.orders.models import ServiceSource
    from timebank.reports import stats as s

    start, end = day_bounds(first, last)
    parts: dict[str, Callable[[], Any]] = {
        "head counts": lambda: s.head_counts(bank, start, end),
        "orders": lambda: s.service_sums(bank, start, end, ServiceSource.ORDER),
        "service records": lambda: s.service_sums(bank, start, end, ServiceSource.RECORD),
        "ledger transactions": lambda: s.ledger_transactions(bank, start, end),
        "outstanding": lambda: s.outstanding_minutes(bank),
    }
    line = []
    for name, fn in parts.items():
        kept = timed(fn, 3)[0]
        with mock.patch.object(s, "whole_days", lambda start, end: None):
            scan = timed(fn, 3)[0]
        line.append(f"{name} {kept * 1000:.1f} / {scan * 1000:.1f}")
    print("  parts of the stats, median ms (summaries / scans): " + ", ".join(line), flush=True)


def existing(members: int) -> dict[str, int] | None:
    """The ids of a database built earlier for this size, if there is one."""
    from django.db import connection
    from django.db.utils import OperationalError

    try:
        with connection.cursor() as cur:
            cur.execute("SELECT id FROM orgs_org WHERE name = '报表基准银行'")
            bank = cur.fetchone()
            cur.execute("SELECT id FROM members_member ORDER BY id LIMIT 1 OFFSET %s", [members // 2])
            member = cur.fetchone()
    except OperationalError:
        return None
    return {"bank": bank[0], "member": member[0]} if bank and member else None


def migrate(members: int) -> None:
    """Bring the size's database to the current schema (a database built earlier gains newer indexes)."""
    env = {**os.environ, "DATABASE_URL": database_url(db_name(members))}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True, env=env)


def run(members: int, legs_per_member: int, repeat: int, reuse: bool) -> dict[str, tuple[float, float]]:
    use_db(members)
    ids = existing(members) if reuse else None
    if ids is None:
        use_db(members)
        psql(f"DROP DATABASE IF EXISTS {db_name(members)} WITH (FORCE)")
        psql(f"CREATE DATABASE {db_name(members)}")
        migrate(members)
        ids = build(members, legs_per_member)
    else:
        print("  reusing the database built earlier (migrated to the current schema, analysed)")
        t0 = time.perf_counter()
        migrate(members)
        use_db(members)
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM ledger_transaction), (SELECT sum(transactions) FROM ledger_dailysummary)"
            )
            posted, summarised = cur.fetchone()
            if posted != summarised:
                refill_summary(cur)
                t0 = step("daily summary from the transactions", t0)
            cur.execute(
                "SELECT (SELECT count(*) FROM orders_order WHERE transaction_id IS NOT NULL "
                "AND state IN ('confirmed', 'reviewed')) + (SELECT count(*) FROM orders_servicerecord), "
                "(SELECT coalesce(sum(services), 0) FROM orders_dailyservicesummary)"
            )
            services, summarised = cur.fetchone()
            if services != summarised:
                refill_services(cur)
                t0 = step("services' daily summary from the orders and records", t0)
            cur.execute("VACUUM ANALYZE")
        step("migrated and analysed", t0)
    return measure(ids, repeat)


def goal_text(goal: float | None) -> str:
    return f"goal {goal * 1000:.0f} ms" if goal is not None else "baseline (no summary)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", default="100000,1000000", help="comma-separated sizes")
    parser.add_argument("--legs-per-member", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of each measurement")
    parser.add_argument(
        "--reuse", action="store_true", help="measure again on databases built by an earlier run (kept per size)"
    )
    args = parser.parse_args()
    setup_django(DB_PREFIX)
    results: list[tuple[int, dict[str, tuple[float, float]]]] = []
    for size in (int(s) for s in args.members.split(",")):
        print(f"== {size:,} members, {size * args.legs_per_member:,} legs", flush=True)
        results.append((size, run(size, args.legs_per_member, args.repeat, args.reuse)))
        for name, (p50, p95) in results[-1][1].items():
            print(f"  {name:<11} p50 {p50 * 1000:9.1f} ms   p95 {p95 * 1000:9.1f} ms   " + goal_text(GOALS[name]))
    print("\n== Summary (milliseconds)")
    print(f"{'members':>10} | " + " | ".join(f"{n + ' p50':>15} {'p95':>8}" for n in GOALS))
    for size, r in results:
        print(f"{size:>10,} | " + " | ".join(f"{r[n][0] * 1000:>15.1f} {r[n][1] * 1000:>8.1f}" for n in GOALS))
    if len(results) > 1:
        (a_n, a), (b_n, b) = results[0], results[-1]
        growth = ", ".join(f"{n} ×{b[n][0] / a[n][0]:.1f}" for n in GOALS)
        print(f"p50 grew for ×{b_n / a_n:.0f} members: {growth}")
    for size, r in results:
        missed = [n for n, goal in GOALS.items() if goal is not None and r[n][1] > goal]
        print(
            f"{size:,}: " + ("every p95 within its goal" if not missed else f"p95 over the goal: {', '.join(missed)}")
        )


if __name__ == "__main__":
    main()
