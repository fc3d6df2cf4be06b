"""Scale-out: two production server processes (gunicorn, several workers each) share one PostgreSQL.

Concurrent confirmations of the same orders and concurrent transfers from one account, spread over
both servers, never credit twice and never overdraw; the ledger verifies afterwards. The servers are
real processes in production settings on the test database (committed data: `transactional_db`).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from tests.conftest import World
from tests.ledger_checks import ledger_problems
from timebank.catalogue.actions import do_create_service_item
from timebank.ledger.actions import do_adjustment, member_account_ids
from timebank.ledger.models import Account, AccountKind, Transaction
from timebank.ledger.verify import verify
from timebank.orders import actions as orders
from timebank.orders.models import Order
from timebank.orgs.actions import do_issue_token

ROOT = Path(__file__).resolve().parent.parent

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="several server processes sharing one database is the PostgreSQL deployment; SQLite is the one-process demo",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, raw[:300]


def server_env() -> dict[str, str]:
    """Production settings on the test database, with the test run's own keys (encrypted fields must read)."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    if db.get("PASSWORD"):
        url = f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "TIMEBANK_PRODUCTION": "1",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",  # nginx terminates TLS in front; here the tests talk plain HTTP
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "FIELD_HASH_KEY": settings.FIELD_HASH_KEY,
        "CHAIN_KEY": settings.CHAIN_KEY,  # the chains the test wrote are keyed with it
        "CHECKPOINT_SIGNING_KEY": settings.CHECKPOINT_SIGNING_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_LOG_LEVEL": "warning",
        "LOG_LEVEL": "ERROR",  # the refused transfers (409) are expected here, not worth a warning line each
        "CACHE_URL": "db",  # several processes share one cache (docs/deploy.md)
    }


def start(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    if gunicorn.exists() or shutil.which("gunicorn"):
        cmd = [str(gunicorn if gunicorn.exists() else "gunicorn"), "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    else:  # no gunicorn installed: still two separate processes on one database
        cmd = [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{port}"]
    return subprocess.Popen(cmd, env={**env, "GUNICORN_BIND": f"127.0.0.1:{port}"}, cwd=ROOT)


@pytest.fixture
def servers(transactional_db: None) -> Iterator[list[str]]:
    env = server_env()
    subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "createcachetable"], env=env, cwd=ROOT, check=True, timeout=120
    )
    ports = [free_port(), free_port()]
    procs = [start(port, env) for port in ports]
    bases = [f"http://127.0.0.1:{port}/api/v1" for port in ports]
    try:
        for base, proc in zip(bases, procs, strict=True):
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, "the server process exited"
                try:
                    if call(base, "GET", "/health")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the server did not answer within 60 s"
                time.sleep(0.2)
        yield bases
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def completed_orders(w: World, n: int) -> list[Order]:
    item = do_create_service_item(
        w.users["superuser"], head_office=w.bank, name="助浴", category="mutual_care", tier="technical"
    )
    done = []
    for _ in range(n):
        order = orders.do_create_order(
            w.users["staff"],
            recipient=w.members["recipient"],
            service_item=item,
            scheduled_start=timezone.now(),
            planned_minutes=60,
            payer="subsidy",
            channel="hotline",
        )
        orders.do_dispatch(w.users["staff"], order, w.members["volunteer"])
        orders.do_accept(w.users["volunteer"], order)
        orders.do_check_in(w.users["volunteer"], order)
        done.append(orders.do_check_out(w.users["volunteer"], order))
    return done


def spendable(member_id: int) -> int:
    ids = member_account_ids(member_id)
    return sum(
        Account.objects.filter(pk__in=[ids[AccountKind.EARNED], ids[AccountKind.RESERVE]]).values_list(
            "balance_minutes", flat=True
        )
    )


@postgres_only
def test_two_servers_never_double_credit(transactional_db: None, world: World, servers: list[str]) -> None:
    w = world
    rng = random.Random(11)
    tokens = {p: do_issue_token(w.users[p]) for p in ("staff", "volunteer", "recipient", "relative")}
    volunteer = w.members["volunteer"]
    before = spendable(volunteer.pk)

    # 1. Every way to confirm, at once, on both servers: the recipient replaying one key, the recipient
    #    with fresh keys, a relative, staff, and the volunteer with the code.
    done = completed_orders(w, 4)
    jobs: list[tuple[int, str, dict[str, Any]]] = []
    for order in done:
        for i in range(3):
            jobs.append((order.pk, "recipient", {"idempotency_key": f"same-{order.pk}"}))
            jobs.append((order.pk, "recipient", {"idempotency_key": f"fresh-{order.pk}-{i}"}))
        jobs.append((order.pk, "relative", {}))
        jobs += [(order.pk, "staff", {"idempotency_key": f"staff-{order.pk}"})] * 2
        jobs.append((order.pk, "volunteer", {"code": order.code}))
    rng.shuffle(jobs)

    def confirm(n: int) -> tuple[int, int, Any]:
        order_id, persona, body = jobs[n]
        status, answer = call(servers[n % 2], "POST", f"/orders/{order_id}/confirm", body, tokens[persona])
        return order_id, status, answer

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(confirm, range(len(jobs))))
    assert all(status in (200, 409) for _, status, _ in answers), [a for a in answers if a[1] not in (200, 409)]
    credited: dict[int, set[int]] = defaultdict(set)
    for order_id, status, answer in answers:
        if status == 200:
            credited[order_id].add(answer["transaction_id"])
    expected = 0
    for order in done:
        order.refresh_from_db()
        assert credited[order.pk] == {order.transaction_id}, "each order is credited by exactly one transaction"
        assert order.credited_minutes is not None
        expected += order.credited_minutes
    deposits = Transaction.objects.filter(bank_id=w.bank.pk, kind="deposit")
    assert deposits.count() == len(done)
    assert spendable(volunteer.pk) == before + expected

    # 2. Transfers from one account, on both servers at once: 20 keys that together ask for more than the
    #    account holds, each key sent twice (a client retrying on the other server).
    do_adjustment(
        w.users["head_office_admin"],
        member=volunteer,
        minutes=100,
        bucket="reserve",
        reason="期初",
        idempotency_key="open",
    )
    available = spendable(volunteer.pk)
    keys = [f"don-{i}" for i in range(20)]
    # Together a little more than the account holds, whatever the orders above credited.
    minutes = available // len(keys) + 1
    assert len(keys) * minutes > available
    sends = [k for k in keys for _ in range(2)]
    rng.shuffle(sends)

    def transfer(n: int) -> tuple[str, int, Any]:
        body = {"from_member_id": volunteer.pk, "minutes": minutes, "kind": "donation", "idempotency_key": sends[n]}
        status, answer = call(servers[n % 2], "POST", "/transfers", body, tokens["volunteer"])
        return sends[n], status, answer

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(transfer, range(len(sends))))
    assert all(status in (200, 201, 409) for _, status, _ in results), [r for r in results if r[1] >= 500]
    by_key: dict[str, set[int]] = defaultdict(set)
    for key, status, answer in results:
        if status in (200, 201):
            by_key[key].add(answer["transaction_id"])
        else:
            assert answer["error"]["code"] == "insufficient_balance", answer
    assert all(len(ids) == 1 for ids in by_key.values()), "a replayed key answers with its one transaction"
    moved = len(by_key) * minutes
    assert moved <= available
    remaining = spendable(volunteer.pk)
    assert remaining == available - moved
    assert 0 <= remaining < minutes, "refusals happen only when the balance cannot pay"
    assert Transaction.objects.filter(bank_id=w.bank.pk, kind="donation").count() == len(by_key)

    # 3. The ledger: balances are the sums of their legs, no overdraft, one transaction per key, chains intact.
    assert ledger_problems(w.bank.pk) == []
    report = verify([w.bank.pk])
    assert report.ok, report.problems


@postgres_only
def test_a_dropped_database_connection_costs_no_error(transactional_db: None, world: World, servers: list[str]) -> None:
    """Workers keep their PostgreSQL connections (DB_CONN_MAX_AGE): when the database drops them (a restart,
    a failover), the next request on each worker checks the connection first and opens a new one."""
    token = do_issue_token(world.users["volunteer"])
    path = f"/members/{world.members['volunteer'].pk}/balance"
    for n in range(8):
        assert call(servers[n % 2], "GET", path, None, token)[0] == 200
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        (dropped,) = cursor.fetchone()
    assert dropped >= 2, "the workers held their connections"
    statuses = [call(servers[n % 2], "GET", path, None, token)[0] for n in range(12)]
    assert statuses == [200] * 12


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@postgres_only
def test_a_double_submit_on_two_servers_is_done_once(transactional_db: None, world: World, servers: list[str]) -> None:
    """The pages' double-submit guard claims a form's key in the database (timebank/ops/idempotency.py
    form_once): every process sees the claim, so the same hotline form sent to both servers at once logs one
    call."""
    from django.test import Client

    from tests.conftest import MODEL_BACKEND
    from timebank.hotline.forms import CALLER_KINDS
    from timebank.hotline.models import CallLog
    from timebank.hotline.views import unknown_call_orgs

    operator = world.users["operator"]
    browser = Client()
    browser.force_login(operator, backend=MODEL_BACKEND)
    session = browser.cookies["sessionid"].value
    csrf = "a" * 32
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": csrf,
            "unknown-phone": "13900000000",
            "unknown-kind": CALLER_KINDS[0][0],
            "unknown-summary": "同一张表单提交了六次",
            "unknown-org": unknown_call_orgs(operator)[0][0],
            "unknown-idempotency_key": "one-form",
        }
    ).encode()
    opener = urllib.request.build_opener(_NoRedirect)

    def submit(n: int) -> int:
        root = servers[n % 2].removesuffix("/api/v1")
        request = urllib.request.Request(f"{root}/hotline/calls/", data=form, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        request.add_header("Cookie", f"sessionid={session}; csrftoken={csrf}")
        try:
            with opener.open(request, timeout=60) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(submit, range(6)))
    assert statuses == [302] * 6, statuses
    assert CallLog.objects.filter(summary="同一张表单提交了六次").count() == 1


def test_health_answers_without_login_or_database(db: None, client: Any, django_assert_num_queries: Any) -> None:
    """What nginx and the load balancer poll, and the benchmark's ceiling: no login, no SQL, a tiny body."""
    with django_assert_num_queries(0):
        response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
