"""Crash safety: the HTTP API under load while the app server and PostgreSQL are killed with SIGKILL.

    .venv/bin/python bench/crash.py                       # full size: 4 minutes, 40 app kills, 3 database kills
    .venv/bin/python bench/crash.py --duration 45 --app-kills 3 --db-kills 1 --clients 4   # the CI size

It starts a private PostgreSQL cluster (initdb in a temporary directory, its own free port, fsync on; as the
`postgres` user when run as root) and NEVER touches the shared server on port 5432. It migrates a database
there, builds a small world (a bank, staff, recipients and volunteers with balances, goods at an outlet), and
runs `manage.py runserver --noreload` against it. Client threads then drive the public API with Bearer
tokens: orders through create → dispatch → accept → check-in → check-out → confirm-with-code, donations
(transfers) and goods redemptions. Every POST carries an `Idempotency-Key` header (and the contract's
`idempotency_key` body field where it has one); on a connection error or a 5xx the client sends the same
request with the same key again until it gets a definite answer.

Meanwhile the app server is killed with SIGKILL every few seconds and restarted, and the postmaster with all
its backends is killed with SIGKILL and restarted (crash recovery) `--db-kills` times.

Afterwards, with the database restarted once more: every request that got a 2xx is in the database exactly
once (by its idempotency key and the id it was answered with), no order, transfer or redemption exists that
no client was told about, every ledger transaction's legs sum to zero, every balance equals its legs, the
goods stock matches the redemptions, and `manage.py verify` is clean. It prints the counts and exits non-zero
on any problem. See docs/crash.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from timebank.lib.pgcluster import PgCluster, free_port, missing_tools

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DB_NAME = "timebank_crash"
# Durability of acknowledged commits is the point of the exercise: fsync and synchronous commit on.
DURABLE = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def become_subreaper() -> None:
    """Orphans (the postmaster that pg_ctl leaves running, and its backends once it dies) become our children,
    so we can reap them after a kill. PID 1 in a container may never do it."""
    import ctypes

    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


class AppServer:
    def __init__(self, workdir: Path, database_url: str) -> None:
        self.port = free_port()
        self.log = (workdir / "app.log").open("ab")
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
            "CHAIN_SEALING": "process",  # as production: writers leave sealing to the sealer process
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "manage.py"), "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{self.port}"],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the app server exited at start; see app.log")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/orgs")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("the app server did not answer within 60 s")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class SealerProcess(AppServer):
    """`manage.py sealer` as production runs it: its own process, killed with SIGKILL like the app server."""

    def start(self) -> None:
        ready = Path(tempfile.mkdtemp(prefix="sealer-")) / "ready"
        self.proc = subprocess.Popen(
            [PYTHON, str(ROOT / "manage.py"), "sealer", "--skip-checks", "--ready", str(ready)],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while not ready.exists():
            if self.proc.poll() is not None:
                raise RuntimeError("the sealer exited at start; see app.log")
            if time.monotonic() > deadline:
                raise RuntimeError("the sealer did not finish a first pass within 60 s")
            time.sleep(0.05)
        shutil.rmtree(ready.parent, ignore_errors=True)


def sealing_problems(tally: Tally) -> tuple[dict[str, int], list[str]]:
    """After the sealer caught up: nothing left unsealed, and every acknowledged transaction sealed exactly once
    (one seq in its bank's chain; the chain has no gaps or repeats, which `verify` checks next)."""
    from django.db import connections

    from timebank.audit.models import AuditEntry
    from timebank.ledger.models import Transaction

    connections.close_all()
    problems: list[str] = []
    unsealed = (
        Transaction.objects.filter(seq__isnull=True).count() + AuditEntry.objects.filter(seq__isnull=True).count()
    )
    if unsealed:
        problems.append(f"{unsealed} rows still unsealed after the sealer caught up")
    acked = [a.body["transaction_id"] for a in tally.acks if a.kind in ("transfer", "redemption")]
    sealed = Transaction.objects.filter(pk__in=acked, seq__isnull=False).count()
    if sealed != len(set(acked)):
        problems.append(f"{len(set(acked)) - sealed} acknowledged transactions are not sealed")
    return {"sealed_acknowledged_transactions": sealed, "unsealed_rows": unsealed}, problems


# ---------------------------------------------------------------- the world


@dataclass
class Persona:
    user_id: int
    token: str
    member_id: int | None = None


@dataclass
class WorldInfo:
    staff: Persona
    outlet_id: int
    item_id: int
    goods_id: int
    goods_stock: int
    pairs: list[tuple[Persona, Persona]]  # (recipient, volunteer) per client


def setup_django(database_url: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "timebank.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def build_world(clients: int) -> WorldInfo:
    import datetime as dt

    from django.contrib.auth.hashers import make_password

    from timebank.catalogue.actions import do_create_service_item
    from timebank.goods.actions import do_create_goods
    from timebank.ledger.actions import do_adjustment
    from timebank.members.actions import MemberInput, do_register_member
    from timebank.orgs.actions import do_create_org, do_create_staff, do_issue_token
    from timebank.orgs.models import User

    root = User.objects.create_superuser("crash_root", password=None)
    bank = do_create_org(root, name="压测时间银行", kind="head_office", parent=None)
    branch = do_create_org(root, name="压测街道", kind="branch", parent=bank)
    community = do_create_org(root, name="压测社区", kind="sub_branch", parent=branch)
    outlet = do_create_org(root, name="压测网点", kind="outlet", parent=community)
    staff_user = do_create_staff(
        root, org=community, username="crash_staff", password="crash-pass-1", name="压测员", role="staff"
    )
    item = do_create_service_item(
        None, head_office=bank, name="陪伴聊天", category="mutual_care", tier="ordinary", requires_certificate=None
    )
    stock = 500_000
    goods = do_create_goods(None, outlet=outlet, name="大米", price_minutes=3, stock=stock)
    make_password("x")  # warm the hasher once
    pairs = []
    for i in range(clients):
        people = []
        for role in ("recipient", "volunteer"):
            member = do_register_member(
                None,
                home_org=community,
                data=MemberInput(
                    name=f"{'老人' if role == 'recipient' else '志愿者'}{i}",
                    roles=[role],
                    phone="13800000000",
                    birth_date=dt.date(1950 if role == "recipient" else 1980, 1, 1),
                    gender="female",
                ),
                login=(f"crash_{role}_{i}", "crash-pass-1"),
                approved=True,
            )
            assert member.user is not None
            people.append(Persona(member.user.pk, do_issue_token(member.user), member.pk))
        recipient = people[0]
        assert recipient.member_id is not None
        from timebank.members.models import Member

        member = Member.objects.get(pk=recipient.member_id)
        do_adjustment(None, member=member, minutes=5_000_000, bucket="reserve", reason="压测开户")
        do_adjustment(None, member=member, minutes=5_000_000, bucket="goods", reason="压测开户")
        pairs.append((people[0], people[1]))
    return WorldInfo(
        staff=Persona(staff_user.pk, do_issue_token(staff_user)),
        outlet_id=outlet.pk,
        item_id=item.pk,
        goods_id=goods.pk,
        goods_stock=stock,
        pairs=pairs,
    )


# ---------------------------------------------------------------- clients


@dataclass
class Ack:
    kind: str  # order | dispatch | accept | check-in | check-out | confirm | transfer | redemption
    user_id: int
    key: str
    body: dict[str, Any]


@dataclass
class Tally:
    sent: int = 0  # logical requests (one per key)
    attempts: int = 0  # HTTP attempts including retries
    retried: int = 0  # requests that needed more than one attempt
    acknowledged: int = 0
    replayed: int = 0  # 2xx answers that came from the stored answer (Idempotent-Replayed)
    refused: Counter[str] = field(default_factory=Counter)  # 4xx by code: none expected
    given_up: list[str] = field(default_factory=list)
    truncated: int = 0  # 2xx status lines whose body was cut off by a kill (retried like a lost answer)
    crashed: list[str] = field(default_factory=list)  # client threads that died: a harness bug
    acks: list[Ack] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    RETRY_FOR = 180.0  # seconds a client keeps retrying one request before giving up

    def __init__(self, n: int, port: int, world: WorldInfo, tally: Tally, seed: int) -> None:
        self.n = n
        self.port = port
        self.world = world
        self.recipient, self.volunteer = world.pairs[n]
        self.tally = tally
        self.rng = random.Random(seed)
        self.seq = 0

    def key(self, what: str) -> str:
        self.seq += 1
        return f"crash-{self.n}-{self.seq}-{what}"[:64]

    def post(self, who: Persona, path: str, body: dict[str, Any], key: str, kind: str) -> dict[str, Any] | None:
        """Send until a definite answer; the same key every time. Returns the 2xx body, or None if refused."""
        payload = json.dumps(body).encode()
        headers = {
            "Authorization": f"Bearer {who.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": key,
        }
        with self.tally.lock:
            self.tally.sent += 1
        attempts = 0
        deadline = time.monotonic() + self.RETRY_FOR
        while True:
            attempts += 1
            with self.tally.lock:
                self.tally.attempts += 1
                if attempts == 2:
                    self.tally.retried += 1
            status, data, replayed = -1, b"", False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", path, body=payload, headers=headers)
                resp = conn.getresponse()
                status, data, replayed = resp.status, resp.read(), resp.getheader("Idempotent-Replayed") == "true"
                conn.close()
            except (OSError, http.client.HTTPException):
                status = -1
            if 200 <= status < 300:
                try:
                    answer: dict[str, Any] = json.loads(data)
                except ValueError:
                    # The server died between the status line and the end of the body: no answer after all.
                    answer = {}
                if not answer:
                    with self.tally.lock:
                        self.tally.truncated += 1
                    time.sleep(0.1 + self.rng.random() * 0.3)
                    continue
                with self.tally.lock:
                    self.tally.acknowledged += 1
                    self.tally.replayed += int(replayed)
                    self.tally.acks.append(Ack(kind, who.user_id, key, answer))
                return answer
            if 400 <= status < 500:
                try:
                    code = json.loads(data)["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = "?"
                with self.tally.lock:
                    self.tally.refused[f"{kind}:{status}:{code}"] += 1
                return None
            if time.monotonic() > deadline:
                with self.tally.lock:
                    self.tally.given_up.append(key)
                return None
            time.sleep(0.1 + self.rng.random() * 0.3)

    def order_flow(self) -> None:
        import datetime as dt

        # Starting now: check-in opens only checkin_early_minutes before the start (409 too_early).
        start = dt.datetime.now(dt.UTC).isoformat()
        key = self.key("order")
        order = self.post(
            self.world.staff,
            "/api/v1/orders",
            {
                "recipient_id": self.recipient.member_id,
                "service_item_id": self.world.item_id,
                "scheduled_start": start,
                "planned_minutes": 30,
                "payer": "subsidy",
                "channel": "staff",
                "notes": key,
            },
            key,
            "order",
        )
        if order is None:
            return
        oid, code = order["id"], order["code"]
        base = f"/api/v1/orders/{oid}"
        steps: list[tuple[Persona, str, dict[str, Any]]] = [
            (self.world.staff, "dispatch", {"volunteer_id": self.volunteer.member_id}),
            (self.volunteer, "accept", {}),
            (self.volunteer, "check-in", {}),
            (self.volunteer, "check-out", {}),
            (self.volunteer, "confirm", {"code": code}),
        ]
        for who, action, body in steps:
            k = self.key(action)
            if self.post(who, f"{base}/{action}", {**body, "idempotency_key": k}, k, action) is None:
                return

    def transfer(self) -> None:
        k = self.key("transfer")
        body = {
            "from_member_id": self.recipient.member_id,
            "minutes": self.rng.randint(1, 30),
            "kind": "donation",
            "memo": "压测",
            "idempotency_key": k,
        }
        self.post(self.recipient, "/api/v1/transfers", body, k, "transfer")

    def redemption(self) -> None:
        k = self.key("redeem")
        body = {
            "member_id": self.recipient.member_id,
            "goods_id": self.world.goods_id,
            "quantity": self.rng.randint(1, 3),
            "outlet_id": self.world.outlet_id,
            "idempotency_key": k,
        }
        self.post(self.recipient, "/api/v1/goods/redemptions", body, k, "redemption")

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                pick = self.rng.random()
                if pick < 0.4:
                    self.order_flow()
                elif pick < 0.7:
                    self.transfer()
                else:
                    self.redemption()
        except Exception as exc:
            with self.tally.lock:
                self.tally.crashed.append(f"client {self.n}: {exc!r}")
            raise


# ---------------------------------------------------------------- checks


def check(world: WorldInfo, tally: Tally) -> tuple[dict[str, int], list[str]]:
    """Every acknowledged request exactly once, nothing unacknowledged, the ledger whole."""
    from django.db import connection, connections
    from django.db.models import Count, F, Q, Sum
    from django.db.models.functions import Coalesce

    from timebank.goods.models import Goods, Redemption
    from timebank.ledger.models import Account, Transaction
    from timebank.ops.models import IdempotentRequest
    from timebank.orders.models import Order

    connections.close_all()
    problems: list[str] = []
    found = 0
    acked_orders = {a.body["id"]: a for a in tally.acks if a.kind == "order"}
    for ack in tally.acks:
        scope = f"user:{ack.user_id}"
        ok = True
        if ack.kind == "order":
            rows = list(Order.objects.filter(notes=ack.key).values_list("pk", flat=True))
            ok = rows == [ack.body["id"]]
        elif ack.kind in ("transfer", "redemption"):
            rows = list(
                Transaction.objects.filter(idem_scope=scope, idempotency_key=ack.key).values_list("pk", flat=True)
            )
            ok = rows == [ack.body["transaction_id"]]
            if ack.kind == "redemption":
                ok = ok and Redemption.objects.filter(transaction_id=ack.body["transaction_id"]).count() == 1
        elif ack.kind == "confirm":
            order = Order.objects.filter(pk=ack.body["id"]).first()
            txs = Transaction.objects.filter(memo__startswith=f"订单 #{ack.body['id']} ").count()
            ok = (
                order is not None
                and order.state == "confirmed"
                and order.transaction_id == ack.body["transaction_id"]
                and txs == 1
            )
        else:  # a state transition: its stored answer is there, once
            ok = (
                IdempotentRequest.objects.filter(scope=scope, key=ack.key, status__gte=200, status__lt=300).count() == 1
            )
        # Every acknowledged write committed its stored answer together with its effect.
        ok = ok and IdempotentRequest.objects.filter(scope=scope, key=ack.key).count() == 1
        if ok:
            found += 1
        else:
            problems.append(f"acknowledged {ack.kind} {ack.key} is not in the database exactly once")

    # Nothing that no client heard about (clients retry until answered, so there should be none).
    stray_orders = Order.objects.filter(notes__startswith="crash-").exclude(pk__in=list(acked_orders)).count()
    if stray_orders:
        problems.append(f"{stray_orders} orders exist that no client was told about")
    for kind, tx_kind in (("transfer", "donation"), ("redemption", "goods_redemption")):
        acked = sum(1 for a in tally.acks if a.kind == kind)
        in_db = Transaction.objects.filter(kind=tx_kind, idempotency_key__startswith="crash-").count()
        if in_db != acked:
            problems.append(f"{in_db} {kind} transactions in the database, {acked} acknowledged")
    confirmed = Order.objects.filter(notes__startswith="crash-", state="confirmed").count()
    acked_confirms = sum(1 for a in tally.acks if a.kind == "confirm")
    if confirmed != acked_confirms:
        problems.append(f"{confirmed} confirmed orders, {acked_confirms} confirmations acknowledged")
    deposits = Transaction.objects.filter(memo__startswith="订单 #").count()
    if deposits != confirmed:
        problems.append(f"{deposits} order credits for {confirmed} confirmed orders")

    # No half-written transaction, and balances equal their legs.
    unbalanced = (
        Transaction.objects.annotate(total=Coalesce(Sum("legs__minutes"), 0), n=Count("legs"))
        .filter(~Q(total=0) | Q(n__lt=2))
        .count()
    )
    if unbalanced:
        problems.append(f"{unbalanced} transactions whose legs do not sum to zero")
    drift = Account.objects.annotate(s=Coalesce(Sum("legs__minutes"), 0)).exclude(balance_minutes=F("s")).count()
    if drift:
        problems.append(f"{drift} accounts whose balance differs from their legs")
    redeemed = Redemption.objects.aggregate(q=Coalesce(Sum("quantity"), 0))["q"]
    stock = Goods.objects.get(pk=world.goods_id).stock
    if stock != world.goods_stock - redeemed:
        problems.append(f"goods stock {stock} but {redeemed} redeemed from {world.goods_stock}")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM ops_idempotentrequest WHERE status = 0")
        if (pending := cursor.fetchone()[0]) != 0:
            problems.append(f"{pending} idempotency claims committed without an answer")
    counts = {
        "orders": Order.objects.filter(notes__startswith="crash-").count(),
        "confirmed_orders": confirmed,
        "ledger_transactions": Transaction.objects.count(),
        "redemptions": Redemption.objects.count(),
    }
    return {"found": found, **counts}, problems


def run_verify(database_url: str) -> tuple[bool, str]:
    done = subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), "verify"],
        env={**os.environ, "DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return done.returncode == 0, (done.stdout + done.stderr).strip()


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=240, help="seconds of load (default 240)")
    parser.add_argument("--app-kills", type=int, default=40, help="SIGKILLs of the app server (default 40)")
    parser.add_argument("--db-kills", type=int, default=3, help="SIGKILLs of PostgreSQL (default 3)")
    parser.add_argument("--sealer-kills", type=int, default=10, help="SIGKILLs of the sealer process (default 10)")
    parser.add_argument("--clients", type=int, default=8, help="client threads (default 8)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, data)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line at the end")
    args = parser.parse_args(argv)

    reason = missing_tools()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    become_subreaper()
    # A polite kill (Ctrl-C, a test's timeout) still stops our cluster and app server via `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="timebank-crash-"))
    cluster = PgCluster(workdir, database=DB_NAME, settings=DURABLE)
    app: AppServer | None = None
    sealer: SealerProcess | None = None
    started = time.monotonic()
    try:
        log(f"private PostgreSQL in {cluster.data} on port {cluster.port}")
        cluster.init()
        setup_django(cluster.url)
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)
        world = build_world(args.clients)
        from django.db import connections

        connections.close_all()
        app = AppServer(workdir, cluster.url)
        app.start()
        sealer = SealerProcess(workdir, cluster.url)
        sealer.start()
        log(f"app server on port {app.port}, a sealer process; {args.clients} clients for {args.duration:.0f} s")

        tally = Tally()
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=Client(i, app.port, world, tally, args.seed * 1000 + i).run, args=(stop,), daemon=True
            )
            for i in range(args.clients)
        ]
        for t in threads:
            t.start()

        # Kills spread over the run; the database kills fall among the app kills. Each kill waits until the
        # restarted system has acknowledged fresh requests, so every kill lands on live load, however slow
        # a restart is on a busy machine (the run then lasts longer than --duration).
        events = ["app"] * args.app_kills + ["db"] * args.db_kills + ["sealer"] * args.sealer_kills
        rng = random.Random(args.seed)
        rng.shuffle(events)
        load_start = time.monotonic()
        for i, event in enumerate(events):
            at = load_start + args.duration * (i + 1) / (len(events) + 1) + rng.uniform(-0.3, 0.3)
            time.sleep(max(0.0, at - time.monotonic()))
            wait_for_progress(tally, args.clients)
            if event == "app":
                app.kill9()
                app.start()
            elif event == "sealer":
                sealer.kill9()
                time.sleep(rng.uniform(0.2, 1.0))  # rows pile up unsealed meanwhile; writers go on
                sealer.start()
            else:
                cluster.kill9()
                time.sleep(rng.uniform(0.5, 2.0))  # clients hit a dead database meanwhile: 5xx, retry
                cluster.start()
            log(f"kill {i + 1}/{len(events)}: {event}; {tally.acknowledged} acknowledged so far")
        time.sleep(max(0.0, load_start + args.duration - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(timeout=Client.RETRY_FOR + 30)
        app.stop()
        db_kills = cluster.kills
        # One last crash of the database with nothing running, so the checks read what recovery kept.
        cluster.kill9()
        cluster.start()
        # A fresh sealer catches up on what its killed predecessors left (its first pass seals everything).
        sealer_kills = sealer.kills
        sealer.kill9()  # not counted: the run's kills are over
        sealer.start()
        sealer.stop()

        counts, problems = check(world, tally)
        sealed_counts, sealed_problems = sealing_problems(tally)
        counts.update(sealed_counts)
        problems += sealed_problems
        verified, verify_output = run_verify(cluster.url)
        if not verified:
            problems.append(f"manage.py verify failed: {verify_output[-2000:]}")
        if tally.refused:
            problems.append(f"refused requests (none expected): {dict(tally.refused)}")
        if tally.crashed:
            problems.append(f"client threads died: {tally.crashed}")
        if tally.given_up:
            problems.append(f"{len(tally.given_up)} requests never got an answer: {tally.given_up[:5]}")
        result = {
            "ok": not problems,
            "seconds": round(time.monotonic() - started, 1),
            "clients": args.clients,
            "app_kills": app.kills,
            "db_kills": db_kills,
            "sealer_kills": sealer_kills,
            "requests_sent": tally.sent,
            "http_attempts": tally.attempts,
            "retried": tally.retried,
            "acknowledged": tally.acknowledged,
            "replayed_answers": tally.replayed,
            "truncated_answers": tally.truncated,
            **counts,
            "verify": verify_output.splitlines()[-1] if verify_output else "",
            "problems": problems,
        }
        print_summary(result)
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        return 0 if not problems else 1
    finally:
        if app is not None:
            app.stop()
        if sealer is not None:
            sealer.stop()
        cluster.stop()
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def wait_for_progress(tally: Tally, clients: int, timeout: float = 120.0) -> None:
    """Until the clients have had at least `clients` more answers, and half a second more of load."""
    goal = tally.acknowledged + clients
    deadline = time.monotonic() + timeout
    while tally.acknowledged < goal and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)


def log(message: str) -> None:
    print(f"[crash] {message}", file=sys.stderr, flush=True)


def print_summary(r: dict[str, Any]) -> None:
    print(
        f"crash safety: {'OK' if r['ok'] else 'FAILED'} in {r['seconds']} s with {r['clients']} clients\n"
        f"  kills survived: app server {r['app_kills']} × SIGKILL, PostgreSQL {r['db_kills']} × SIGKILL, "
        f"sealer {r['sealer_kills']} × SIGKILL\n"
        f"  requests sent {r['requests_sent']} (HTTP attempts {r['http_attempts']}, retried {r['retried']}), "
        f"acknowledged {r['acknowledged']} ({r['replayed_answers']} answered from the stored reply, "
        f"{r['truncated_answers']} cut-off answers retried), "
        f"found exactly once {r['found']}\n"
        f"  in the database: {r['orders']} orders ({r['confirmed_orders']} confirmed), "
        f"{r['redemptions']} redemptions, {r['ledger_transactions']} ledger transactions\n"
        f"  sealed: {r['sealed_acknowledged_transactions']} acknowledged transactions sealed exactly once, "
        f"{r['unsealed_rows']} rows left unsealed after the sealer caught up\n"
        f"  verify: {r['verify']}"
    )
    for problem in r["problems"]:
        print(f"  PROBLEM: {problem}")


if __name__ == "__main__":
    sys.exit(main())
