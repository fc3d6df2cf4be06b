"""HTTP benchmark: the order loop through the production server (gunicorn) on PostgreSQL.

    .venv/bin/python bench/http_loop.py [--seconds 20] [--clients 16,64] [--workers 5] [--banks 1]

Builds a scratch database `timebank_bench_http` (dropped first), runs the migrations, opens `--banks`
banks with one staff login, one service item and one volunteer/recipient pair per client, then starts
gunicorn with `deploy/gunicorn.conf.py` in production settings (TIMEBANK_PRODUCTION=1, secrets in the
environment, DEBUG off, tasks queued in the database as in production). For each client count it runs,
back to back and for `--seconds` each:

- ping:  `GET /api/v1/health`, the smallest answer the same server gives (the framework's ceiling here);
- loop:  the order loop over the public API, each client on its own pair:
         create (staff) → dispatch (staff) → accept → check-in → check-out (volunteer)
         → confirm → review (recipient), each a POST with a Bearer token, an `idempotency_key` in the
         body and an `Idempotency-Key` header (`--no-idempotency-header` leaves the header out).

It prints requests per second, p50 and p99 per request for both, and the ratio loop/ping, against the
goal (ratio > 0.3, loop p99 < 200 ms at 64 clients). Then it checks that every confirmed order
credited exactly once and that `verify` is clean. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import os
import platform
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _sealer import Sealer, describe

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PGPORT", "5432")
PG_USER = os.environ.get("BENCH_PGUSER", "postgres")
BENCH_DB = "timebank_bench_http"
GOAL_RATIO = 0.3
GOAL_P99_MS = 200.0
LOOP = ("create", "dispatch", "accept", "check-in", "check-out", "confirm", "review")


def configure_env() -> None:
    """Production settings on the scratch database, for this process and the gunicorn it starts."""
    from cryptography.fernet import Fernet

    os.environ["DATABASE_URL"] = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{BENCH_DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "timebank.settings"
    os.environ["TIMEBANK_PRODUCTION"] = "1"
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.setdefault("FIELD_HASH_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("CHAIN_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault("CHECKPOINT_SIGNING_KEY", base64.b64encode(secrets.token_bytes(32)).decode())
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ.setdefault("DB_CONN_MAX_AGE", "60")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------------------------- helpers


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 < p <= 100)."""
    if not sorted_values:
        return float("nan")
    rank = max(1, int(-(-p * len(sorted_values) // 100)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --------------------------------------------------------------------------------------------- database


def recreate_database() -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DB}"')


@dataclass
class Pair:
    staff_token: str
    volunteer_id: int
    volunteer_token: str
    recipient_id: int
    recipient_token: str
    item_id: int


def build(clients: int, banks: int) -> list[Pair]:
    """Banks, staff, a service item, and one volunteer/recipient pair per client, all through the actions."""
    from django.conf import settings

    from timebank.catalogue.actions import do_create_service_item
    from timebank.members.actions import MemberInput, do_register_member
    from timebank.orgs.actions import do_create_org, do_create_staff, do_issue_token
    from timebank.orgs.models import User

    # A benchmark shortcut: nobody logs in with these passwords (the clients get tokens directly), so
    # do not spend a minute of Argon2 on 128 logins.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    root = User.objects.create_superuser("bench-root", password=None)
    sites = []
    for b in range(banks):
        bank = do_create_org(root, name=f"压测时间银行{b + 1}", kind="head_office", parent=None)
        branch = do_create_org(root, name=f"压测街道{b + 1}", kind="branch", parent=bank)
        community = do_create_org(root, name=f"压测社区{b + 1}", kind="sub_branch", parent=branch)
        staff = do_create_staff(
            root,
            org=community,
            username=f"bench-staff-{b}",
            password=secrets.token_urlsafe(12),
            name="压测社工",
            role="staff",
        )
        item = do_create_service_item(root, head_office=bank, name="陪同就医", category="mutual_care", tier="ordinary")
        sites.append((community, staff, item))
    pairs = []
    for c in range(clients):
        community, staff, item = sites[c % banks]

        def member(role: str, born: dt.date, c: int = c, community: Any = community) -> Any:
            return do_register_member(
                root,
                home_org=community,
                data=MemberInput(
                    name=f"{role}{c}", roles=[role], phone="13800000000", birth_date=born, gender="female"
                ),
                login=(f"bench-{role}-{c}", secrets.token_urlsafe(12)),
                approved=True,
            )

        volunteer = member("volunteer", dt.date(1958, 4, 1))
        recipient = member("recipient", dt.date(1938, 9, 9))
        pairs.append(
            Pair(
                staff_token=do_issue_token(staff),
                volunteer_id=volunteer.pk,
                volunteer_token=do_issue_token(volunteer.user),
                recipient_id=recipient.pk,
                recipient_token=do_issue_token(recipient.user),
                item_id=item.pk,
            )
        )
    return pairs


# --------------------------------------------------------------------------------------------- the server


def start_server(port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": str(workers),
        "GUNICORN_THREADS": str(threads),
        "GUNICORN_LOG_LEVEL": "warning",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    server = subprocess.Popen([gunicorn, "-c", str(ROOT / "deploy" / "gunicorn.conf.py")], env=env, cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            status, _ = asyncio.run(_once(port, "GET", "/api/v1/health"))
            if status == 200:
                return server
        except OSError:
            pass
        if server.poll() is not None:
            raise SystemExit("gunicorn exited")
        time.sleep(0.3)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 60 s")


# --------------------------------------------------------------------------------------------- the client


class Connection:
    """A minimal HTTP/1.1 client on asyncio streams: keep-alive when the server allows it.

    httpx or aiohttp would spend more of the two cores on the client than the server's ping costs;
    this one parses only what Django sends (Content-Length bodies)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: Any = None, token: str | None = None, key: str | None = None
    ) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else b""
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        )
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if key:
            head += f"Idempotency-Key: {key}\r\n"
        raw = (head + "\r\n").encode() + data
        for attempt in (1, 2):
            reused = self.writer is not None
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            assert self.reader is not None and self.writer is not None
            self.writer.write(raw)
            status_line = await self.reader.readline()
            if not status_line:
                self.close()
                if reused and attempt == 1:
                    continue  # the server closed an idle keep-alive connection: send again on a new one
                raise ConnectionError("the server closed the connection")
            return await self._response(status_line)
        raise AssertionError("unreachable")

    async def _response(self, status_line: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        status = int(status_line.split()[1])
        length: int | None = None
        close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        payload = await self.reader.readexactly(length) if length is not None else await self.reader.read()
        if close or length is None:
            self.close()
        return status, payload

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _once(port: int, method: str, path: str) -> tuple[int, bytes]:
    conn = Connection(port)
    try:
        return await conn.request(method, path)
    finally:
        conn.close()


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    statuses: Counter[int] = field(default_factory=Counter)
    per_step: dict[str, list[float]] = field(default_factory=dict)
    loops: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s >= 400 or s < 0)

    def rps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def ms(self, p: float, values: list[float] | None = None) -> float:
        return percentile(sorted(self.latencies if values is None else values), p) * 1000


async def _ping_client(port: int, deadline: float, result: Result) -> None:
    conn = Connection(port)
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            status, _ = await conn.request("GET", "/api/v1/health")
            result.statuses[status] += 1
            if status == 200:
                result.latencies.append(time.perf_counter() - t0)
    finally:
        conn.close()


async def _loop_client(port: int, pair: Pair, deadline: float, result: Result, run: str, header: bool) -> None:
    conn = Connection(port)
    n = 0
    try:
        while time.perf_counter() < deadline:
            n += 1
            key = f"{run}-{pair.volunteer_id}-{n}"
            order_id: int | None = None
            for step in LOOP:
                if time.perf_counter() >= deadline:
                    return
                if step == "create":
                    start = dt.datetime.now(dt.UTC).isoformat()
                    body: dict[str, Any] = {
                        "recipient_id": pair.recipient_id,
                        "service_item_id": pair.item_id,
                        "scheduled_start": start,
                        "planned_minutes": 60,
                        "payer": "subsidy",
                        "channel": "hotline",
                        "notes": "压测",
                    }
                    path, token = "/api/v1/orders", pair.staff_token
                else:
                    body = {"idempotency_key": f"{key}-{step}"}
                    token = pair.volunteer_token
                    if step == "dispatch":
                        body["volunteer_id"] = pair.volunteer_id
                        token = pair.staff_token
                    elif step in ("confirm", "review"):
                        token = pair.recipient_token
                        if step == "review":
                            body.update(rating=5, comment="很好")
                    path = f"/api/v1/orders/{order_id}/{step}"
                t0 = time.perf_counter()
                # The header makes every step safe to retry (the write and its answer stored together).
                status, payload = await conn.request("POST", path, body, token, f"{key}-{step}" if header else None)
                took = time.perf_counter() - t0
                result.statuses[status] += 1
                if status not in (200, 201):
                    print(f"  {step}: {status} {payload[:200]!r}", file=sys.stderr)
                    break  # start a fresh order
                result.latencies.append(took)
                result.per_step.setdefault(step, []).append(took)
                if step == "create":
                    order_id = json.loads(payload)["id"]
            else:
                result.loops += 1
    finally:
        conn.close()


async def measure(
    kind: str, port: int, clients: int, seconds: float, pairs: list[Pair], run: str, header: bool = True
) -> Result:
    result = Result()
    start = time.perf_counter()
    deadline = start + seconds
    if kind == "ping":
        tasks = [_ping_client(port, deadline, result) for _ in range(clients)]
    else:
        tasks = [_loop_client(port, pairs[i], deadline, result, run, header) for i in range(clients)]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    result.elapsed = time.perf_counter() - start
    for o in outcomes:
        if isinstance(o, BaseException):
            result.statuses[-1] += 1
            print(f"  client failed: {o!r}", file=sys.stderr)
    return result


# --------------------------------------------------------------------------------------------- checks


def check_ledger(confirmed_calls: int) -> list[str]:
    """Every confirmed order credited exactly once, and the ledger verifies."""
    from django.db.models import Count

    from timebank.ledger.models import Transaction
    from timebank.ledger.verify import verify
    from timebank.orders.models import Order

    problems: list[str] = []
    confirmed = Order.objects.filter(transaction__isnull=False)
    n_orders = confirmed.count()
    n_tx = Transaction.objects.filter(kind="deposit").count()
    if n_orders != n_tx:
        problems.append(f"{n_orders} confirmed orders but {n_tx} deposit transactions")
    if n_orders < confirmed_calls:
        problems.append(f"{confirmed_calls} confirmations answered 200 but only {n_orders} orders hold a transaction")
    shared = confirmed.values("transaction_id").annotate(n=Count("id")).filter(n__gt=1).count()
    if shared:
        problems.append(f"{shared} transactions are shared by several orders")
    report = verify()
    problems += report.problems[:10]
    print(f"ledger: {n_orders} confirmed orders, {n_tx} deposits, verify {'ok' if report.ok else 'FAILED'}")
    return problems


def database_bytes() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        return int(cursor.fetchone()[0])


def orders_created() -> int:
    from timebank.orders.models import Order

    return Order.objects.count()


# --------------------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each measured run")
    parser.add_argument("--clients", default="16,64", help="concurrent clients, comma-separated")
    cores = os.cpu_count() or 1
    parser.add_argument("--workers", type=int, default=2 * cores + 1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per worker (>1: gthread)")
    parser.add_argument("--banks", type=int, default=1, help="banks the clients are spread over")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load before measuring")
    parser.add_argument(
        "--no-idempotency-header", dest="header", action="store_false", help="send no Idempotency-Key headers"
    )
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",") if c.strip()]

    configure_env()
    print(f"machine: {platform.machine()}, {cores} cores, python {platform.python_version()}; load {loadavg()}")
    recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    pairs = build(max(counts), args.banks)
    from timebank.audit.sealing import seal_all

    seal_all()  # the set-up's rows, so the sealing delays below are the measured runs' own
    print(f"built {args.banks} bank(s), {len(pairs)} volunteer/recipient pairs in {time.perf_counter() - t0:.1f} s")
    connection.close()

    size_before = database_bytes()
    port = free_port()
    server = start_server(port, args.workers, args.threads)
    sealer = Sealer()  # production seals in its own process (CHAIN_SEALING=process under TIMEBANK_PRODUCTION)
    kind = "gthread" if args.threads > 1 else "sync"
    print(
        f"gunicorn: {args.workers} {kind} workers × {args.threads} thread(s) on 127.0.0.1:{port}, DB_CONN_MAX_AGE="
        f"{os.environ['DB_CONN_MAX_AGE']}; {args.seconds:g} s per run; Idempotency-Key headers "
        f"{'on' if args.header else 'off'}"
    )
    rows: list[tuple[int, Result, Result]] = []
    confirmed_calls = 0
    try:
        asyncio.run(measure("loop", port, min(counts), args.warmup, pairs, "warm", args.header))
        asyncio.run(measure("ping", port, min(counts), args.warmup, pairs, "warm"))
        for clients in counts:
            ping = asyncio.run(measure("ping", port, clients, args.seconds, pairs, f"p{clients}"))
            loop = asyncio.run(measure("loop", port, clients, args.seconds, pairs, f"c{clients}", args.header))
            confirmed_calls += len(loop.per_step.get("confirm", []))
            rows.append((clients, ping, loop))
            print(
                f"  {clients:>3} clients: ping {ping.rps():7.0f} req/s, loop {loop.rps():7.0f} req/s "
                f"({loop.loops / loop.elapsed:5.1f} orders/s), errors {ping.errors + loop.errors}; load {loadavg()}"
            )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        sealing = sealer.finish(time.monotonic())
    print(f"sealer: {describe(sealing)}")

    print()
    print(
        "| clients | ping req/s | ping p50 ms | ping p99 ms | loop req/s | loop p50 ms | loop p99 ms | orders/s |"
        " errors | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    met = True
    for clients, ping, loop in rows:
        ratio = loop.rps() / ping.rps() if ping.rps() else 0.0
        print(
            f"| {clients} | {ping.rps():.0f} | {ping.ms(50):.1f} | {ping.ms(99):.1f} | {loop.rps():.0f} "
            f"| {loop.ms(50):.1f} | {loop.ms(99):.1f} | {loop.loops / loop.elapsed:.1f} "
            f"| {ping.errors + loop.errors} | {ratio:.2f} |"
        )
        met &= ratio > GOAL_RATIO
        if clients == 64:
            met &= loop.ms(99) < GOAL_P99_MS
    print()
    print("loop p50 / p99 per step (ms) at the largest client count:")
    clients, _ping, loop = rows[-1]
    for step in LOOP:
        values = loop.per_step.get(step, [])
        print(f"  {step:<10} {loop.ms(50, values):7.1f} {loop.ms(99, values):7.1f}  ({len(values)} calls)")
    problems = check_ledger(confirmed_calls)
    grown = database_bytes() - size_before
    created = orders_created()
    if created:
        print(
            f"database growth: {grown / created / 1024:.1f} KiB per order created ({created} orders; tables, indexes, "
            "audit, notifications and task rows, before vacuum)"
        )
    for p in problems:
        print(f"PROBLEM: {p}")
    print(f"goal (ratio > {GOAL_RATIO}, p99 < {GOAL_P99_MS:.0f} ms at 64 clients): {'met' if met else 'NOT met'}")
    print(f"load at the end: {loadavg()}")
    return 1 if problems else 0


if __name__ == "__main__":
    random.seed(7)
    sys.exit(main())
