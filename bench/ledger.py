"""Ledger throughput benchmark: `do_transfer` on PostgreSQL, side by side with pgbench's TPC-B.

    .venv/bin/python bench/ledger.py [--seconds 15] [--clients 4,16] [--accounts 10000] [--profile 2000]

Builds a scratch database `timebank_bench` (dropped first), runs the migrations, opens one bank with
`--accounts` members, then measures transfers per second through `timebank.ledger.actions.do_transfer`
with several concurrent worker processes, in two shapes:

- spread: a donation from a random member to another random member (different accounts each time);
- hot:    a donation from a random member to the bank's donation pool (every transfer locks one account).

pgbench's built-in `tpcb-like` script runs on a second scratch database, `timebank_pgbench`, at scale 10
(compared with "spread") and at scale 1 (one branch row that every transaction updates: "hot").
See bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import multiprocessing as mp
import os
import platform
import pstats
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _sealer import Sealer, describe, unsealed_rows

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.sharedctypes import Synchronized

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PGPORT", "5432")
PG_USER = os.environ.get("BENCH_PGUSER", "postgres")
# Scratch databases, dropped first: BENCH_DB/PGBENCH_DB name others when several people bench on one server.
BENCH_DB = os.environ.get("BENCH_DB", "timebank_bench")
PGBENCH_DB = os.environ.get("PGBENCH_DB", "timebank_pgbench")
PGBENCH = os.environ.get("PGBENCH", shutil.which("pgbench") or "/usr/bin/pgbench")
OPENING_MINUTES = 1_000_000  # each member's opening reserve: far more than 15 s of 1..60-minute transfers
OPENING_CHUNK = 500  # members per opening-balance transaction (the balance trigger is O(legs²) per transaction)
GOAL = 0.5
DONE_WHEN = 0.4
CASES = ("spread", "hot")
PGBENCH_SCALE = {"spread": 10, "hot": 1}
DEFAULT_FN = "timebank.ledger.actions.do_transfer"


def configure_env() -> None:
    """Point Django at the scratch database. Runs in the parent and in every worker process. CHAIN_SEALING is
    inherited: the parent builds the bank "inline" and sets each run's mode before it spawns the workers."""
    os.environ.setdefault("CHAIN_SEALING", "inline")
    os.environ["DATABASE_URL"] = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{BENCH_DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "timebank.settings"
    os.environ["DEBUG"] = "0"  # no query log: measure what production runs
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def setup_django() -> None:
    configure_env()
    import django

    django.setup()


# --------------------------------------------------------------------------------------------- helpers


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 < p <= 100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def say(text: str = "") -> None:
    print(text, flush=True)


def recreate_database(name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_facts() -> dict[str, str]:
    import psycopg

    facts: dict[str, str] = {}
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        row = conn.execute("SELECT version()").fetchone()
        facts["postgres"] = str(row[0]).split(" on ")[0] if row else "?"
        for setting in ("synchronous_commit", "fsync", "shared_buffers", "max_connections"):
            row = conn.execute(f"SHOW {setting}").fetchone()
            facts[setting] = str(row[0]) if row else "?"
    return facts


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# ------------------------------------------------------------------------------------------ the bank


@dataclass
class Fixture:
    bank_id: int
    user_id: int
    pool_id: int
    members: int


def build_bank(n_members: int) -> Fixture:
    """One bank, `n_members` active members with three accounts each, every reserve opened at OPENING_MINUTES.

    Benchmark-only bulk setup: the bank goes through do_create_org, but members and accounts are
    bulk-inserted and the opening balances are posted as a few large issuance transactions (through
    `posting.post` with the accounts locked, and audited), so the ledger still verifies.
    """
    from django.db import transaction

    from timebank.audit.actions import record
    from timebank.ledger.actions import system_account_id
    from timebank.ledger.models import MEMBER_BUCKETS, Account, AccountKind, TransactionKind
    from timebank.ledger.posting import lock_accounts, post
    from timebank.members.models import Member, MemberStatus
    from timebank.orgs.actions import do_create_org
    from timebank.orgs.models import OrgKind, User

    user = User(username="bench", display_name="benchmark")
    user.set_unusable_password()
    user.save()
    bank = do_create_org(user, name="压测时间银行", kind=OrgKind.HEAD_OFFICE, parent=None)
    members = Member.objects.bulk_create(
        [
            Member(bank=bank, home_org=bank, name=f"会员{i:05d}", status=MemberStatus.ACTIVE, is_volunteer=True)
            for i in range(n_members)
        ],
        batch_size=2000,
    )
    Account.objects.bulk_create(
        [Account(bank=bank, member=m, kind=k) for m in members for k in MEMBER_BUCKETS], batch_size=6000
    )
    issuance = system_account_id(bank.pk, AccountKind.ISSUANCE)
    reserves = list(
        Account.objects.filter(bank=bank, member__isnull=False, kind=AccountKind.RESERVE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for part in chunks(reserves, OPENING_CHUNK):
        with transaction.atomic():
            locked = lock_accounts([issuance, *part])
            legs = [(locked[pk], OPENING_MINUTES) for pk in part]
            tx = post(
                bank_id=bank.pk,
                kind=TransactionKind.ADJUSTMENT,
                legs=[*legs, (locked[issuance], -OPENING_MINUTES * len(part))],
                actor=user,
                memo="benchmark opening balances",
            )
            record(
                user,
                "ledger.adjustment",
                tx,
                bank_id=bank.pk,
                data={"bench_opening": True, "accounts": len(part), "minutes_each": OPENING_MINUTES},
            )
    return Fixture(
        bank_id=bank.pk,
        user_id=user.pk,
        pool_id=system_account_id(bank.pk, AccountKind.DONATION_POOL),
        members=len(members),
    )


# ----------------------------------------------------------------------------------- one transfer


class Transfers:
    """Random transfers through `do_transfer`, as one worker (or the profiler) issues them."""

    def __init__(self, fixture: Fixture, case: str, tag: str, seed: int | str, fn: str = DEFAULT_FN) -> None:
        from django.utils.module_loading import import_string

        from timebank.members.models import Member
        from timebank.orgs.models import User

        self.transfer: Callable[..., Any] = import_string(fn)
        self.case = case
        self.tag = tag
        self.rng = random.Random(seed)
        self.user = User.objects.get(pk=fixture.user_id)
        self.members = list(Member.objects.filter(bank_id=fixture.bank_id).only("id", "bank_id", "status"))
        self.n = 0

    def one(self) -> None:
        sender = self.rng.choice(self.members)
        receiver = None
        if self.case == "spread":
            receiver = self.rng.choice(self.members)
            while receiver.pk == sender.pk:
                receiver = self.rng.choice(self.members)
        self.n += 1
        self.transfer(
            self.user,
            from_member=sender,
            to_member=receiver,  # None: the bank's donation pool
            minutes=self.rng.randint(1, 60),
            kind="donation",
            idempotency_key=f"{self.tag}-{self.n}",
        )


def worker(
    wid: int,
    fixture: Fixture,
    fn: str,
    case: str,
    run_tag: str,
    seconds: float,
    ready: Queue[int],
    go: EventType,
    start_at: Synchronized[float],
    results: Queue[dict[str, Any]],
) -> None:
    """One client: its own process, its own Django, its own database connection."""
    setup_django()
    from django.db import connection

    transfers = Transfers(fixture, case, f"{run_tag}-{wid}", seed=f"{run_tag}-{wid}", fn=fn)
    connection.ensure_connection()
    ready.put(wid)
    go.wait()
    deadline = start_at.value + seconds
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            transfers.one()
        except Exception as exc:
            errors[f"{type(exc).__name__}: {str(exc)[:80]}"] += 1
        else:
            latencies.append(time.perf_counter() - t0)
    end = time.monotonic()
    connection.close()
    results.put({"wid": wid, "latencies": latencies, "errors": dict(errors), "end": end})


@dataclass
class Result:
    tps: float
    p50_ms: float
    p99_ms: float
    avg_ms: float
    count: int
    errors: dict[str, int] = field(default_factory=dict)
    sealing: dict[str, float] = field(default_factory=dict)  # the sealer's delays, drain time, backlog left


def run_ours(fixture: Fixture, fn: str, case: str, clients: int, seconds: float, sealing: str) -> Result:
    os.environ["CHAIN_SEALING"] = sealing  # the workers inherit it when they are spawned
    sealer = Sealer() if sealing == "process" else None
    ctx = mp.get_context("spawn")
    ready: Queue[int] = ctx.Queue()
    results: Queue[dict[str, Any]] = ctx.Queue()
    go = ctx.Event()
    start_at = ctx.Value("d", 0.0)
    tag = f"{case}{clients}{sealing}"  # each run its own idempotency keys: a rerun must not replay
    procs = [
        ctx.Process(
            target=worker,
            args=(wid, fixture, fn, case, tag, seconds, ready, go, start_at, results),
            name=f"bench-{tag}-{wid}",
        )
        for wid in range(clients)
    ]
    for p in procs:
        p.start()
    for _ in procs:
        ready.get(timeout=120)
    start = time.monotonic()
    start_at.value = start
    go.set()
    rows = [results.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    latencies = sorted(x for r in rows for x in r["latencies"])
    errors: Counter[str] = Counter()
    for r in rows:
        errors.update(r["errors"])
    ended = max(r["end"] for r in rows)
    elapsed = ended - start
    sealing_stats = sealer.finish(ended) if sealer is not None else {}
    os.environ["CHAIN_SEALING"] = "inline"
    return Result(
        tps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        avg_ms=(sum(latencies) / len(latencies) * 1000) if latencies else math.nan,
        count=len(latencies),
        errors=dict(errors),
        sealing=sealing_stats,
    )


# ------------------------------------------------------------------------------------------- pgbench


def pg_env() -> dict[str, str]:
    return {**os.environ, "PGHOST": PG_HOST, "PGPORT": PG_PORT, "PGUSER": PG_USER}


def pgbench_init(scale: int) -> None:
    recreate_database(PGBENCH_DB)
    subprocess.run(
        [PGBENCH, "-i", "-q", "-s", str(scale), PGBENCH_DB], env=pg_env(), check=True, capture_output=True, text=True
    )


def pgbench_run(clients: int, seconds: float) -> Result:
    with tempfile.TemporaryDirectory(prefix="pgbench-") as tmp:
        prefix = Path(tmp) / "tx"
        done = subprocess.run(
            [
                PGBENCH,
                "-b",
                "tpcb-like",
                "-c",
                str(clients),
                "-j",
                str(clients),
                "-T",
                str(max(1, round(seconds))),
                "-l",
                f"--log-prefix={prefix}",
                PGBENCH_DB,
            ],
            env=pg_env(),
            check=True,
            capture_output=True,
            text=True,
        )
        # Per-transaction log lines: client_id transaction_no latency_us script_no epoch_s epoch_us
        latencies = sorted(
            int(line.split()[2]) / 1000 for log in Path(tmp).glob("tx.*") for line in log.read_text().splitlines()
        )
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
    avg = re.search(r"latency average = ([\d.]+) ms", done.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", done.stdout)
    return Result(
        tps=float(tps.group(1)) if tps else math.nan,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        avg_ms=float(avg.group(1)) if avg else math.nan,
        count=len(latencies),
        errors={"failed": int(failed.group(1))} if failed and int(failed.group(1)) else {},
    )


# --------------------------------------------------------------------------------------------- profile


def statement_label(sql: str) -> str:
    """`SELECT ledger_account FOR UPDATE`, `INSERT audit_auditentry`, ...: a statement's shape, for grouping."""
    verb = sql.lstrip().split(" ", 1)[0].upper()
    if verb == "WITH":
        return "WITH ... (data-modifying CTE)"
    if call := re.match(r"\s*SELECT\s+(\w+)\(", sql):  # one call of a SQL function: ledger_transfer(...)
        return f"SELECT {call.group(1)}(...)"
    target = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql)
    lock = " FOR UPDATE" if "FOR UPDATE" in sql else ""
    return f"{verb} {target.group(1) if target else '?'}{lock}"


def statements_per_transfer(fixture: Fixture, fn: str, case: str, sealing: str = "inline") -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext, override_settings

    from timebank.audit.sealing import seal_all

    transfers = Transfers(fixture, case, f"count-{case}-{sealing}", seed=1, fn=fn)
    with override_settings(CHAIN_SEALING=sealing), CaptureQueriesContext(connection) as ctx:
        transfers.one()
    seal_all()
    return [q["sql"] for q in ctx.captured_queries]


def profile(fixture: Fixture, fn: str, case: str, n: int, sealing: str) -> None:
    """Single process: where the time of one do_transfer goes (SQL round trips vs Python), then cProfile. In
    "process" sealing nothing seals the rows while profiling (the writer's part only); they are sealed after."""
    from django.test.utils import override_settings

    from timebank.audit.sealing import seal_all

    with override_settings(CHAIN_SEALING=sealing):
        _profile(fixture, fn, case, n, sealing)
    seal_all()


def _profile(fixture: Fixture, fn: str, case: str, n: int, sealing: str) -> None:
    from django.db import connection

    sql_time = 0.0
    sql_count = 0
    per_statement: defaultdict[str, float] = defaultdict(float)
    per_statement_n: Counter[str] = Counter()

    def timed(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        nonlocal sql_time, sql_count
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - t0
            sql_time += spent
            sql_count += 1
            per_statement[statement_label(sql)] += spent
            per_statement_n[statement_label(sql)] += 1

    commit_time = 0.0
    raw_commit = connection.commit

    def timed_commit() -> None:
        nonlocal commit_time
        t0 = time.perf_counter()
        try:
            raw_commit()
        finally:
            commit_time += time.perf_counter() - t0

    transfers = Transfers(fixture, case, f"profile-{case}-{sealing}", seed=2, fn=fn)
    for _ in range(50):  # warm up
        transfers.one()
    connection.commit = timed_commit  # type: ignore[method-assign]
    try:
        with connection.execute_wrapper(timed):
            t0 = time.perf_counter()
            for _ in range(n):
                transfers.one()
            wall = time.perf_counter() - t0
    finally:
        connection.commit = raw_commit  # type: ignore[method-assign]
    py = wall - sql_time - commit_time
    say(
        f"  {case}, {sealing} sealing: {n} transfers in {wall:.2f} s, one client: {n / wall:.0f}/s, {wall / n * 1000:.2f} ms each"
    )
    say(f"    SQL statements: {sql_count / n:.1f} per transfer, {sql_time / n * 1000:.2f} ms ({sql_time / wall:.0%})")
    say(f"    COMMIT:         {commit_time / n * 1000:.2f} ms ({commit_time / wall:.0%})")
    say(f"    Python/Django:  {py / n * 1000:.2f} ms ({py / wall:.0%})")
    say("    SQL time by statement (client-side wall time, per transfer):")
    for label, spent in sorted(per_statement.items(), key=lambda kv: -kv[1]):
        say(f"      {per_statement_n[label] / n:4.1f} x {label:<45} {spent / n * 1000:6.3f} ms")

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        transfers.one()
    prof.disable()
    listings: list[tuple[str, str, tuple[Any, ...]]] = [
        ("project code, by cumulative time", "cumulative", (r"timebank/", 20)),
        ("everything, by own time", "tottime", (18,)),
    ]
    for title, order, restrict in listings:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(order).print_stats(*restrict)
        say(f"    cProfile, {title} (seconds for {n} transfers, inflated by the profiler):")
        text = out.getvalue()
        for line in text[text.find("   ncalls") :].rstrip().splitlines():
            line = line.replace(f"{ROOT}/", "").replace(f"{sys.prefix}/lib/python3.11/site-packages/", "")
            say("      " + line)


# ------------------------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15, help="length of each measured run (default 15)")
    parser.add_argument("--clients", default="4,16", help="comma-separated client counts (default 4,16)")
    parser.add_argument("--accounts", type=int, default=10_000, help="members in the bank (default 10000)")
    parser.add_argument("--cases", default=",".join(CASES), help="spread,hot (default both)")
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="also profile N single-process transfers")
    parser.add_argument(
        "--transfer-fn",
        default=DEFAULT_FN,
        metavar="DOTTED.PATH",
        help=f"the function measured, with do_transfer's signature (default {DEFAULT_FN}); for trying a candidate",
    )
    parser.add_argument("--no-pgbench", action="store_true", help="skip the pgbench comparison")
    parser.add_argument("--no-verify", action="store_true", help="skip the ledger verification at the end")
    parser.add_argument(
        "--sealing",
        default="process,inline",
        help="process (writers insert unsealed rows, `manage.py sealer` seals them: production) and/or inline "
        "(each write seals under the bank's chain head, as every write did before issue 17: the baseline)",
    )
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.sealing.split(",") if m.strip()]
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not clients or any(c < 1 for c in clients) or set(cases) - set(CASES) or args.accounts < 2:
        parser.error("bad --clients, --cases or --accounts")
    if not modes or set(modes) - {"process", "inline"}:
        parser.error("bad --sealing")
    t_begin = time.monotonic()

    facts = server_facts()
    say("== Ledger benchmark: do_transfer vs pgbench tpcb-like ==")
    say(f"  host: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    say(
        f"  server: {facts['postgres']} at {PG_HOST}:{PG_PORT}, synchronous_commit={facts['synchronous_commit']}, "
        f"fsync={facts['fsync']}, shared_buffers={facts['shared_buffers']}"
    )
    say(
        f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other work on the machine skews all numbers)"
    )
    say(f"  measured: {args.transfer_fn}")
    say(f"  runs: {args.seconds:g} s each, clients {clients}, cases {cases}, {args.accounts} members")
    say()

    say(f"-- setup: database {BENCH_DB}")
    t0 = time.monotonic()
    recreate_database(BENCH_DB)
    setup_django()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    say(f"  migrated in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    fixture = build_bank(args.accounts)
    vacuum()
    say(
        f"  bank {fixture.bank_id}: {fixture.members} members x 3 accounts, "
        f"{OPENING_MINUTES:,} min opening reserve each, built in {time.monotonic() - t0:.1f} s"
    )
    say()

    say("-- SQL round trips of one do_transfer (from CaptureQueriesContext)")
    for case in cases:
        for mode in modes:
            sqls = statements_per_transfer(fixture, args.transfer_fn, case, mode)
            plain = [s for s in sqls if s not in ("BEGIN", "COMMIT")]
            say(
                f"  {case}, {mode} sealing: {len(sqls)} round trips = {len(plain)} SQL statements"
                f" + {len(sqls) - len(plain)} of BEGIN/COMMIT"
            )
            for s in sqls:
                say(f"    {s[:150]}{'...' if len(s) > 150 else ''}")
    say()

    if args.profile:
        say(f"-- single-process profile ({args.profile} transfers per case and sealing mode)")
        for case in cases:
            for mode in modes:
                profile(fixture, args.transfer_fn, case, args.profile, mode)
        say()

    ours: dict[tuple[str, int, str], Result] = {}
    theirs: dict[tuple[str, int], Result] = {}
    connection.close()  # workers open their own; the parent's would only sit idle
    for case in cases:
        scale = PGBENCH_SCALE[case]
        if not args.no_pgbench:
            say(f"-- pgbench: init -s {scale} on {PGBENCH_DB}")
            pgbench_init(scale)
        for n in clients:
            # Ours and pgbench back to back, so a noisy machine hits both sides of the ratio alike.
            for mode in modes:
                say(f"-- ours ({mode} sealing): {case}, {n} clients, {args.seconds:g} s ...")
                vacuum()
                connection.close()
                r = ours[(case, n, mode)] = run_ours(fixture, args.transfer_fn, case, n, args.seconds, mode)
                say(
                    f"   {r.count} transfers, {r.tps:.0f} tps, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                    f"avg {r.avg_ms:.2f} ms, errors {sum(r.errors.values())}"
                )
                if r.sealing:
                    say(f"   {describe(r.sealing)}")
                for text, count in sorted(r.errors.items(), key=lambda kv: -kv[1])[:5]:
                    say(f"     {count} x {text}")
            if not args.no_pgbench:
                say(f"-- pgbench: tpcb-like -s {scale}, {n} clients, {args.seconds:g} s ...")
                t = theirs[(case, n)] = pgbench_run(n, args.seconds)
                say(
                    f"   {t.count} transactions, {t.tps:.0f} tps, p50 {t.p50_ms:.2f} ms, p99 {t.p99_ms:.2f} ms, "
                    f"avg {t.avg_ms:.2f} ms -> ratio {' '.join(f'{m} {ours[(case, n, m)].tps / t.tps:.2f}' for m in modes)}"
                )
    say()

    if not args.no_verify:
        from timebank.ledger.models import Transaction
        from timebank.ledger.verify import verify

        t0 = time.monotonic()
        report = verify([fixture.bank_id])
        say(f"-- unsealed rows at the end (must be 0): {unsealed_rows()}")
        expected = (
            math.ceil(fixture.members / OPENING_CHUNK) + sum(r.count for r in ours.values()) + len(cases) * len(modes)
        )
        expected += (args.profile * 2 + 50) * len(cases) * len(modes) if args.profile else 0
        stored = Transaction.objects.filter(bank_id=fixture.bank_id).count()
        say(
            f"-- verify: {report.transactions} transactions re-hashed in {time.monotonic() - t0:.1f} s: "
            f"{'OK' if report.ok else f'{len(report.problems)} PROBLEMS'}; "
            f"stored {stored}, expected {expected} ({'match' if stored == expected else 'MISMATCH'})"
        )
        for problem in report.problems[:10]:
            say(f"   {problem}")
        say()

    say("== Summary ==")
    head = (
        f"{'case':<7} {'clients':>7} {'sealing':>8} | {'ours tps':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6} | "
        f"{'seal p50':>8} {'p99':>6} {'max':>6} {'left':>4} | {'pgbench':>13} {'tps':>8} {'p50 ms':>7} | "
        f"{'ratio':>6}  goal >= {GOAL} (issue 17: >= {DONE_WHEN})"
    )
    say(head)
    say("-" * len(head))
    for case in cases:
        for n in clients:
            pg = theirs.get((case, n))
            for mode in modes:
                o = ours[(case, n, mode)]
                bench = f"tpcb-like -s{PGBENCH_SCALE[case]:<2}" if pg else "-"
                ratio = o.tps / pg.tps if pg and pg.tps else math.nan
                verdict = "-" if math.isnan(ratio) else ("met" if ratio >= DONE_WHEN else "NOT met")
                seal = o.sealing
                ms = [
                    f"{seal[k] * 1000:>{w}.0f}" if k in seal else f"{'-':>{w}}"
                    for k, w in (("p50", 8), ("p99", 6), ("max", 6))
                ]
                left = f"{seal['backlog']:>4.0f}" if seal else f"{'-':>4}"
                say(
                    f"{case:<7} {n:>7} {mode:>8} | {o.tps:>9.0f} {o.p50_ms:>7.2f} {o.p99_ms:>7.2f} "
                    f"{sum(o.errors.values()):>6} | {' '.join(ms)} {left} | "
                    f"{bench:>13} {pg.tps if pg else math.nan:>8.0f} {pg.p50_ms if pg else math.nan:>7.2f} | "
                    f"{ratio:>6.2f}  {verdict}"
                )
    say()
    say("  spread: donation member -> random member (do_transfer, kind=donation, to_member=<member>)")
    say("  hot:    donation member -> the bank's donation pool (to_member=None): one account in every transfer")
    say(f"  ours = transfers through {args.transfer_fn}, one process + connection per client;")
    say("  p50/p99 are per-call latencies as the client sees them; ratio = ours tps / pgbench tps.")
    say(
        f"  total wall time {time.monotonic() - t_begin:.0f} s; "
        f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
