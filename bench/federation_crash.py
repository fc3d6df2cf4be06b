"""Crash test across two nodes (issue 16): transfers both ways under load while either node's server (and its
`federation_sync` loop) is SIGKILLed and restarted; afterwards every acknowledged transfer is exactly once on both
sides, both ledgers verify, the clearing accounts mirror and the reconciled statements agree.

    .venv/bin/python bench/federation_crash.py                      # moderate size: 120 s of load, 16 server kills
    .venv/bin/python bench/federation_crash.py --duration 15 --baseline 5 --server-kills 4 --sync-kills 2 --clients 4

Two node processes, A and B (`manage.py runserver --noreload`), each on its own PostgreSQL database on the shared
server (`<prefix>_a`, `<prefix>_b`, created and dropped here; B is a copy of A's migrated database, so migrating
costs one run), each with its own secrets file (its own Ed25519 key) and FEDERATION_NODE_ID. Each has a bank,
members with logins and funded reserves, and the other node registered as a peer with a limit big enough.

Client threads send member-to-member transfers both ways (`POST /api/v1/federation/transfers`, each with its body
`idempotency_key`; half of them also with the `Idempotency-Key` header, which defers delivery to the outbox), and
retry with the same key after a connection error or a 5xx until they get an answer; a 201 is an acknowledgement.
One transfer in `--refuse-every` names the receiver wrongly: the receiver refuses it (`name_mismatch`) and the
sender gives the minutes back. Each node runs a `federation_sync` loop process that delivers its outbox.

First a baseline: the same load for `--baseline` seconds with no kills (transfers/s). Then the crash phase: a
killer SIGKILLs A's or B's server (and sometimes a sync loop) at random moments and restarts it after 0.2-1.5 s.
Afterwards, with both servers up, each node's outbox is synced until nothing is pending, then checked: every
acknowledged transfer exactly once on the sender (by its key, debited once) and exactly once on the receiver
(credited once when completed; refused ones refunded once on the sender), the same outcome on both sides,
nothing on a receiver that its sender lacks, no transfer left pending, `manage.py verify` clean on both, A's
clearing account for B = -(B's for A) = what the completed transfers add up to, and `federation_reconcile` clean
on both nodes for every day with transfers. Prints the figures; exits non-zero on any problem. What runs inside a
node (building its world, the sync loop, the final inspection) is bench/_federation_node.py.
"""

from __future__ import annotations

import argparse
import base64
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from timebank.lib.pgcluster import free_port  # noqa: E402

PYTHON = sys.executable
PG_HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PGPORT", "5432")
NODE_IDS = {"a": "fedcrash-a", "b": "fedcrash-b"}
NODE_SIDE = ROOT / "bench" / "_federation_node.py"  # what runs inside a node: setup, the sync loop, inspect
WRONG_NAME = "查无此人"


def database_url(name: str) -> str:
    return f"postgres://postgres@{PG_HOST}:{PG_PORT}/{name}"


def admin_sql(*statements: str) -> None:
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True) as conn:
        for sql in statements:
            conn.execute(sql)


def public_key_of(secrets: dict[str, str]) -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(secrets["FEDERATION_SIGNING_KEY"]))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


# ---------------------------------------------------------------- the node processes


class Node:
    """One deployment: its database, secrets, server port, server process and sync loop process."""

    def __init__(self, name: str, workdir: Path, db: str) -> None:
        self.name = name
        self.node_id = NODE_IDS[name]
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.secrets_path = workdir / f"secrets_{name}.json"
        self.log = (workdir / f"node_{name}.log").open("ab")
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url(db),
            "DEBUG": "0",
            "PYTHONUNBUFFERED": "1",
            "TIMEBANK_LOCAL_SECRETS": str(self.secrets_path),
            "FEDERATION_NODE_ID": self.node_id,
            "FEDERATION_ALLOW_HTTP_LOOPBACK": "1",
            "FEDERATION_TIMEOUT_SECONDS": "5",
            "AXES_ENABLED": "0",
            "DJANGO_SETTINGS_MODULE": "timebank.settings",
        }
        for name_ in ("FEDERATION_SIGNING_KEY", "TIMEBANK_PRODUCTION"):
            self.env.pop(name_, None)
        self.server: subprocess.Popen[bytes] | None = None
        self.sync: subprocess.Popen[bytes] | None = None
        self.server_kills = 0
        self.sync_kills = 0
        self.public_key = ""
        self.world: dict[str, Any] = {}

    def role(self, role: str, *extra: str, timeout: float = 600) -> dict[str, Any]:
        """Run a role of _federation_node.py on this node (its database and secrets); read its last JSON line."""
        done = subprocess.run(
            [PYTHON, str(NODE_SIDE), role, *extra],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        self.log.write(done.stderr.encode())
        self.log.flush()
        if done.returncode != 0:
            raise RuntimeError(f"node {self.name} {role} failed: {done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    def start_server(self) -> None:
        self.spawn_server()
        self.wait_server()

    def spawn_server(self) -> None:
        self.server = subprocess.Popen(
            [PYTHON, str(ROOT / "manage.py"), "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{self.port}"],
            env=self.env,
            stdout=self.log,
            stderr=self.log,
            cwd=ROOT,
        )

    def wait_server(self) -> None:
        assert self.server is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"node {self.name}'s server exited at start; see its log")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/federation/node")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"node {self.name}'s server did not answer within 60 s")

    def start_sync(self) -> None:
        self.sync = subprocess.Popen(
            [PYTHON, str(NODE_SIDE), "sync-loop"], env=self.env, stdout=self.log, stderr=self.log, cwd=ROOT
        )

    def kill_server(self) -> None:
        assert self.server is not None
        self.server.send_signal(signal.SIGKILL)
        self.server.wait()
        self.server_kills += 1

    def kill_sync(self) -> None:
        assert self.sync is not None
        self.sync.send_signal(signal.SIGKILL)
        self.sync.wait()
        self.sync_kills += 1

    def stop(self) -> None:
        for proc in (self.server, self.sync):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        self.server = self.sync = None


def prepare(nodes: dict[str, Node]) -> None:
    """Both databases (B copied from A once A is migrated: migrating is the slow part), and both secrets files:
    the same keys for everything but each node's own Ed25519 signing key."""
    from timebank.lib.env import _new_signing_key, local_secrets

    a, b = nodes["a"], nodes["b"]
    secrets = local_secrets(a.secrets_path)
    secrets_b = {**secrets, "FEDERATION_SIGNING_KEY": _new_signing_key()}
    b.secrets_path.write_text(json.dumps(secrets_b), encoding="utf-8")
    a.public_key, b.public_key = public_key_of(secrets), public_key_of(secrets_b)
    drop(nodes)
    admin_sql(f'CREATE DATABASE "{a.db}"')
    subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), "migrate", "-v0", "--skip-checks"], env=a.env, cwd=ROOT, check=True
    )
    admin_sql(f'CREATE DATABASE "{b.db}" TEMPLATE "{a.db}"')


def drop(nodes: dict[str, Node]) -> None:
    admin_sql(*(f'DROP DATABASE IF EXISTS "{n.db}" WITH (FORCE)' for n in nodes.values()))


# ---------------------------------------------------------------- the clients


@dataclass
class Ack:
    sender: str  # "a" or "b"
    key: str
    transfer_id: str
    state: str  # as answered: pending, completed or refused
    wrong_name: bool


@dataclass
class Tally:
    sent: int = 0  # logical transfers (one per key)
    attempts: int = 0
    retried: int = 0
    acknowledged: int = 0
    replayed: int = 0  # 201s answered from the stored first answer
    refused: Counter[str] = field(default_factory=Counter)  # 4xx: none expected
    given_up: list[str] = field(default_factory=list)
    crashed: list[str] = field(default_factory=list)
    acks: list[Ack] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Client:
    RETRY_FOR = 180.0

    def __init__(self, n: int, nodes: dict[str, Node], tally: Tally, seed: int, refuse_every: int) -> None:
        self.n = n
        self.nodes = nodes
        self.tally = tally
        self.rng = random.Random(seed)
        self.refuse_every = refuse_every
        self.seq = 0

    def run(self, stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                self.transfer()
        except Exception as exc:  # a harness bug: reported as a problem
            with self.tally.lock:
                self.tally.crashed.append(f"client {self.n}: {type(exc).__name__}: {exc}")

    def transfer(self) -> None:
        sender = self.rng.choice("ab")
        receiver = "b" if sender == "a" else "a"
        members_from = self.nodes[sender].world["members"]
        payer = members_from[self.n % len(members_from)]
        payee = self.rng.choice(self.nodes[receiver].world["members"])
        self.seq += 1
        key = f"fc-{self.n}-{self.seq}"
        wrong_name = self.refuse_every > 0 and self.seq % self.refuse_every == 0
        body = {
            "from_member_id": payer["id"],
            "peer_id": self.nodes[sender].world["peer"],
            "to_account": str(payee["id"]),
            "to_name": WRONG_NAME if wrong_name else payee["name"],
            "minutes": self.rng.randint(1, 30),
            "memo": key,
            "idempotency_key": key,
        }
        headers = {"Authorization": f"Bearer {payer['token']}", "Content-Type": "application/json"}
        if self.rng.random() < 0.5:
            headers["Idempotency-Key"] = key  # the middleware's transaction: delivery left to the outbox
        answer = self.post(sender, body, headers, key)
        if answer is not None:
            with self.tally.lock:
                self.tally.acks.append(Ack(sender, key, answer["transfer_id"], answer["state"], wrong_name))

    def post(self, node: str, body: dict[str, Any], headers: dict[str, str], key: str) -> dict[str, Any] | None:
        """Send until a definite answer, with the same key every time."""
        payload = json.dumps(body).encode()
        with self.tally.lock:
            self.tally.sent += 1
        attempts = 0
        deadline = time.monotonic() + self.RETRY_FOR
        while True:
            attempts += 1
            with self.tally.lock:
                self.tally.attempts += 1
                self.tally.retried += attempts == 2
            status, data, replayed = -1, b"", False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.nodes[node].port, timeout=30)
                conn.request("POST", "/api/v1/federation/transfers", body=payload, headers=headers)
                resp = conn.getresponse()
                status, data, replayed = resp.status, resp.read(), resp.getheader("Idempotent-Replayed") == "true"
                conn.close()
            except (OSError, http.client.HTTPException):
                status = -1
            code = ""
            if 400 <= status < 500:
                try:
                    code = json.loads(data)["error"]["code"]
                except (ValueError, KeyError, TypeError):
                    code = "?"
            if status == 201:
                try:
                    answer: dict[str, Any] = json.loads(data)
                except ValueError:
                    answer = {}  # the server died between the status line and the end of the body: no answer
                if answer.get("transfer_id"):
                    with self.tally.lock:
                        self.tally.acknowledged += 1
                        self.tally.replayed += replayed
                    return answer
            elif 400 <= status < 500 and code != "concurrent_update":
                with self.tally.lock:
                    self.tally.refused[f"{status}:{code}"] += 1
                return None
            if time.monotonic() > deadline:
                with self.tally.lock:
                    self.tally.given_up.append(key)
                return None
            time.sleep(0.1 + self.rng.random() * 0.3)


def wait_for_progress(tally: Tally, clients: int, timeout: float = 120.0) -> None:
    """Until the clients have had `clients` more answers and a little more load: every kill lands on live load."""
    goal = tally.acknowledged + clients
    deadline = time.monotonic() + timeout
    while tally.acknowledged < goal and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)


def run_load(
    nodes: dict[str, Node], tally: Tally, args: argparse.Namespace, seconds: float, events: list[str], seed: int
) -> float:
    """Clients for `seconds` while the `events` (kills) happen, spread over the time; returns the seconds taken."""
    stop = threading.Event()
    base = len(tally.acks) + 10_000 * seed
    threads = [
        threading.Thread(
            target=Client(base + i, nodes, tally, seed * 1000 + i, args.refuse_every).run, args=(stop,), daemon=True
        )
        for i in range(args.clients)
    ]
    rng = random.Random(seed)
    started = time.monotonic()
    for t in threads:
        t.start()
    for i, event in enumerate(events):
        at = started + seconds * (i + 1) / (len(events) + 1) + rng.uniform(-0.3, 0.3)
        time.sleep(max(0.0, at - time.monotonic()))
        wait_for_progress(tally, args.clients)
        node = nodes[event[-1]]
        if event.startswith("server"):
            node.kill_server()
            time.sleep(rng.uniform(0.2, 1.5))  # the other node's deliveries to it fail meanwhile: pending
            node.start_server()
        else:
            node.kill_sync()
            time.sleep(rng.uniform(0.2, 1.0))
            node.start_sync()
        log(f"kill {i + 1}/{len(events)}: {event}; {tally.acknowledged} acknowledged so far")
    time.sleep(max(0.0, started + seconds - time.monotonic()))
    stop.set()
    for t in threads:
        t.join(timeout=Client.RETRY_FOR + 30)
    return time.monotonic() - started


# ---------------------------------------------------------------- the checks


def check(tally: Tally, seen: dict[str, dict[str, Any]]) -> tuple[dict[str, int], list[str]]:
    """Every acknowledged transfer exactly once on both sides, with the same outcome; nothing else."""
    problems: list[str] = []
    by_id = {n: {t["id"]: t for t in seen[n]["transfers"]} for n in "ab"}
    out_by_key: dict[str, Counter[str]] = {n: Counter() for n in "ab"}
    in_count: dict[str, Counter[str]] = {n: Counter() for n in "ab"}
    for n in "ab":
        for t in seen[n]["transfers"]:
            if t["dir"] == "out":
                out_by_key[n][t["key"]] += 1
            else:
                in_count[n][t["id"]] += 1
    counts = Counter[str]()
    for ack in tally.acks:
        other = "b" if ack.sender == "a" else "a"
        mine, theirs = by_id[ack.sender].get(ack.transfer_id), by_id[other].get(ack.transfer_id)
        memos_s, memos_r = seen[ack.sender]["memos"], seen[other]["memos"]
        once_s = (
            out_by_key[ack.sender][ack.key] == 1
            and mine is not None
            and mine["dir"] == "out"
            and memos_s.get(f"跨节点转账 {ack.transfer_id}") == 1
        )
        once_r = in_count[other][ack.transfer_id] == 1 and theirs is not None
        if not once_s:
            problems.append(f"{ack.sender}: acknowledged {ack.key} ({ack.transfer_id}) not exactly once on the sender")
        if not once_r:
            problems.append(f"{other}: acknowledged {ack.key} ({ack.transfer_id}) not exactly once on the receiver")
        counts["found_once_sender"] += once_s
        counts["found_once_receiver"] += once_r
        if mine is None or theirs is None:
            continue
        if mine["state"] != theirs["state"] or mine["minutes"] != theirs["minutes"]:
            problems.append(
                f"{ack.key}: {mine['state']} {mine['minutes']} min on the sender, "
                f"{theirs['state']} {theirs['minutes']} min on the receiver"
            )
            continue
        counts[mine["state"]] += 1
        # The receiver had committed well before the sender applied its answer: the answer was lost (the sender
        # killed, the receiver killed before answering, a timeout) and a re-delivery got the first outcome.
        counts["late_answers"] += (mine["done_at"] or 0) - (theirs["done_at"] or 0) > 1.0
        credits = memos_r.get(f"跨节点转入 {ack.transfer_id}", 0)
        refunds = memos_s.get(f"跨节点转账退回 {ack.transfer_id}", 0)
        if mine["state"] == "completed" and (credits != 1 or refunds != 0 or ack.wrong_name):
            problems.append(f"{ack.key}: completed with {credits} credits and {refunds} refunds")
        if mine["state"] == "refused" and (credits != 0 or refunds != 1 or not ack.wrong_name):
            problems.append(f"{ack.key}: refused ({mine['reason']}) with {credits} credits and {refunds} refunds")
    acked_keys = {(a.sender, a.key) for a in tally.acks}
    for n in "ab":
        other = "b" if n == "a" else "a"
        dupes = sum(c - 1 for c in out_by_key[n].values() if c > 1) + sum(c - 1 for c in in_count[n].values() if c > 1)
        counts["duplicates"] += dupes
        stray = [k for k in out_by_key[n] if (n, k) not in acked_keys]
        if stray:
            problems.append(f"{n}: {len(stray)} transfers no client was told about: {stray[:5]}")
        orphans = [t for t in in_count[n] if by_id[other].get(t, {}).get("dir") != "out"]
        if orphans:
            problems.append(f"{n}: {len(orphans)} received transfers their sender does not have: {orphans[:5]}")
        pending = [t["id"] for t in seen[n]["transfers"] if t["state"] == "pending"]
        if pending or seen[n]["undelivered"]:
            problems.append(f"{n}: {len(pending)} transfers still pending, {seen[n]['undelivered']} undelivered")
        if not seen[n]["verified"]:
            problems.append(f"{n}: manage.py verify failed: {seen[n]['verify'][-1500:]}")
        for day, outcome in seen[n]["reconciled"].items():
            if outcome != "ok":
                problems.append(f"{n}: federation_reconcile {day}: {outcome}")
        # The clearing account: what the completed transfers add up to (refused ones were refunded).
        owed = sum(
            (t["minutes"] if t["dir"] == "out" else -t["minutes"])
            for t in seen[n]["transfers"]
            if t["state"] == "completed"
        )
        if seen[n]["clearing"] != owed:
            problems.append(f"{n}: clearing balance {seen[n]['clearing']} but the completed transfers make {owed}")
    if seen["a"]["clearing"] != -seen["b"]["clearing"]:
        problems.append(f"clearing accounts do not mirror: A {seen['a']['clearing']}, B {seen['b']['clearing']}")
    if counts["duplicates"]:
        problems.append(f"{counts['duplicates']} duplicated transfers")
    return dict(counts), problems


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=120, help="seconds of load with kills (default 120)")
    parser.add_argument("--baseline", type=float, default=30, help="seconds of the same load, no kills (default 30)")
    parser.add_argument("--server-kills", type=int, default=16, help="SIGKILLs of the servers, A and B in turn")
    parser.add_argument("--sync-kills", type=int, default=6, help="SIGKILLs of the federation_sync loops, in turn")
    parser.add_argument("--clients", type=int, default=6, help="client threads (default 6)")
    parser.add_argument("--members", type=int, default=6, help="members per node (default 6)")
    parser.add_argument("--refuse-every", type=int, default=10, help="every Nth transfer names the payee wrongly")
    parser.add_argument("--db-prefix", default="tb_fedcrash", help="databases <prefix>_a and <prefix>_b")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the databases and the logs")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line at the end")
    args = parser.parse_args(argv)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a test's timeout still stops the nodes (finally)
    workdir = Path(tempfile.mkdtemp(prefix="timebank-fedcrash-"))
    nodes = {n: Node(n, workdir, f"{args.db_prefix}_{n}") for n in "ab"}
    started = time.monotonic()
    try:
        prepare(nodes)
        log("databases ready")
        a, b = nodes["a"], nodes["b"]
        made: dict[str, dict[str, Any]] = {}

        def setup(node: Node, other: Node) -> None:
            made[node.name] = node.role(
                "setup", "--members", str(args.members), "--peer", other.node_id, other.url, other.public_key
            )

        # The servers and sync loops start while the worlds are built (they read peers and members per request).
        for n in nodes.values():
            n.spawn_server()
            n.start_sync()
        setups = [threading.Thread(target=setup, args=(x, y)) for x, y in ((a, b), (b, a))]
        for t in setups:
            t.start()
        for t in setups:
            t.join()
        if set(made) != {"a", "b"}:
            raise RuntimeError("a node's setup failed; see the logs")
        log("worlds built")
        for n in nodes.values():
            n.world = made[n.name]
            n.wait_server()
        log(f"nodes up: A on {a.port} ({a.db}), B on {b.port} ({b.db}); {args.clients} clients")

        tally = Tally()
        base_seconds = run_load(nodes, tally, args, args.baseline, [], seed=args.seed)
        base_acked = tally.acknowledged
        log(f"baseline: {base_acked} acknowledged in {base_seconds:.1f} s")
        # Each node's server killed as often as the other's (one more for A when odd), and each sync loop.
        events = [f"server-{'ab'[i % 2]}" for i in range(args.server_kills)]
        events += [f"sync-{'ab'[i % 2]}" for i in range(args.sync_kills)]
        random.Random(args.seed).shuffle(events)
        crash_seconds = run_load(nodes, tally, args, args.duration, events, seed=args.seed + 1)
        crash_acked = tally.acknowledged - base_acked

        # The sync loops stop (the servers stay up); each node then delivers whatever it still has pending, waits
        # until the other has too, and inspects its side (verify, reconcile, its rows): one process per node.
        for n in nodes.values():
            if n.sync is not None:
                n.kill_sync()
                n.sync_kills -= 1  # the run's kills are over: not counted
        seen: dict[str, dict[str, Any]] = {}

        def inspect(node: Node, other: Node) -> None:
            seen[node.name] = node.role(
                "inspect", "--barrier", str(workdir / f"done_{node.name}"), str(workdir / f"done_{other.name}")
            )

        inspectors = [threading.Thread(target=inspect, args=(x, y)) for x, y in ((a, b), (b, a))]
        for t in inspectors:
            t.start()
        for t in inspectors:
            t.join()
        if set(seen) != {"a", "b"}:
            raise RuntimeError("a node's inspection failed; see the logs")
        log("both nodes inspected")
        counts, problems = check(tally, seen)
        if tally.refused:
            problems.append(f"refused requests (none expected): {dict(tally.refused)}")
        if tally.crashed:
            problems.append(f"client threads died: {tally.crashed}")
        if tally.given_up:
            problems.append(f"{len(tally.given_up)} transfers never got an answer: {tally.given_up[:5]}")
        result = {
            "ok": not problems,
            "seconds": round(time.monotonic() - started, 1),
            "clients": args.clients,
            "baseline_seconds": round(base_seconds, 1),
            "baseline_acknowledged": base_acked,
            "baseline_tps": round(base_acked / base_seconds, 2),
            "crash_seconds": round(crash_seconds, 1),
            "crash_acknowledged": crash_acked,
            "crash_tps": round(crash_acked / crash_seconds, 2),
            "kills_a": a.server_kills,
            "kills_b": b.server_kills,
            "sync_kills_a": a.sync_kills,
            "sync_kills_b": b.sync_kills,
            "sent": tally.sent,
            "http_attempts": tally.attempts,
            "retried": tally.retried,
            "acknowledged": tally.acknowledged,
            "replayed_answers": tally.replayed,
            "acked_pending": sum(1 for x in tally.acks if x.state == "pending"),
            "completed": counts.get("completed", 0),
            "refused": counts.get("refused", 0),
            "found_once_sender": counts.get("found_once_sender", 0),
            "found_once_receiver": counts.get("found_once_receiver", 0),
            "duplicates": counts.get("duplicates", 0),
            # Delivered only after at least one failed attempt (the peer down, killed mid-request, or too slow).
            "late_answers": counts.get("late_answers", 0),
            "redelivered": sum(
                1 for n in "ab" for t in seen[n]["transfers"] if t["dir"] == "out" and t["failed_attempts"]
            ),
            "final_sync": {n: seen[n]["final_sync"] for n in "ab"},
            "days_reconciled": sorted(set(seen["a"]["reconciled"]) | set(seen["b"]["reconciled"])),
            "clearing_a_for_b": seen["a"]["clearing"],
            "clearing_b_for_a": seen["b"]["clearing"],
            "problems": problems,
        }
        print_summary(result)
        if args.json:
            print(json.dumps(result, ensure_ascii=False))
        return 0 if not problems else 1
    finally:
        for n in nodes.values():
            n.stop()
            n.log.close()
        if args.keep:
            log(f"kept {workdir} and the databases")
        else:
            drop(nodes)
            shutil.rmtree(workdir, ignore_errors=True)


T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[federation-crash {time.monotonic() - T0:6.1f} s] {message}", file=sys.stderr, flush=True)


def print_summary(r: dict[str, Any]) -> None:
    print(
        f"federation crash test: {'OK' if r['ok'] else 'FAILED'} in {r['seconds']} s with {r['clients']} clients\n"
        f"  baseline (no kills): {r['baseline_acknowledged']} transfers in {r['baseline_seconds']} s = "
        f"{r['baseline_tps']} transfers/s\n"
        f"  under kills: {r['crash_acknowledged']} transfers in {r['crash_seconds']} s = {r['crash_tps']} transfers/s;"
        f" kills: server A {r['kills_a']}, server B {r['kills_b']}, sync loop A {r['sync_kills_a']}, "
        f"sync loop B {r['sync_kills_b']} (SIGKILL)\n"
        f"  transfers sent {r['sent']} (HTTP attempts {r['http_attempts']}, retried {r['retried']}), "
        f"acknowledged {r['acknowledged']} ({r['replayed_answers']} from the stored answer, "
        f"{r['acked_pending']} answered pending)\n"
        f"  outcome: completed {r['completed']}, refused {r['refused']} (minutes returned); "
        f"found exactly once on the sender {r['found_once_sender']}, on the receiver {r['found_once_receiver']}; "
        f"duplicates {r['duplicates']}; delivered after a failed attempt {r['redelivered']}; "
        f"the sender learned the outcome > 1 s after the receiver committed it {r['late_answers']}\n"
        f"  clearing: A for B {r['clearing_a_for_b']:+d}, B for A {r['clearing_b_for_a']:+d}; "
        f"reconciled days {', '.join(r['days_reconciled'])}; final sync {r['final_sync']}"
    )
    for problem in r["problems"]:
        print(f"  PROBLEM: {problem}")


if __name__ == "__main__":
    sys.exit(main())
