"""The demo runs on SQLite and several people use it at once: concurrent requests never get a 5xx.

A real server process on a real SQLite file (not the test database), hammered by threads with
credit-moving writes, replays and reads.
"""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


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
        return exc.code, None


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the embedded SQLite demo's own check")
def test_concurrent_requests_on_the_sqlite_demo_never_fail(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "DEBUG": "0",
        "TIMEBANK_LOCAL_SECRETS": str(tmp_path / "secrets.json"),
        "AXES_ENABLED": "0",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    subprocess.run([*manage, "seed_demo", "--members", "30"], env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", "--noreload", f"127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(100):
            try:
                if call(base, "GET", "/openapi.json")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        tokens = {
            u: call(base, "POST", "/auth/token", {"username": u, "password": "demo12345"})[1]
            for u in ("staff", "volunteer", "relative")
        }
        volunteer = tokens["volunteer"]["member_id"]
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def worker(n: int) -> None:
            rng = random.Random(n)
            for i in range(12):
                choice = rng.random()
                if choice < 0.4:
                    status, _ = call(
                        base,
                        "POST",
                        "/ledger/adjustments",
                        {
                            "member_id": volunteer,
                            "minutes": rng.randint(1, 30),
                            "bucket": "reserve",
                            "reason": "并发测试",
                            "idempotency_key": f"adj-{n}-{i % 4}",
                        },
                        tokens["staff"]["token"],
                    )
                elif choice < 0.7:
                    status, _ = call(
                        base,
                        "POST",
                        "/transfers",
                        {
                            "from_member_id": volunteer,
                            "minutes": rng.randint(1, 5),
                            "kind": "donation",
                            "idempotency_key": f"don-{n}-{i % 3}",
                        },
                        tokens["volunteer"]["token"],
                    )
                elif choice < 0.85:
                    status, _ = call(base, "GET", f"/members/{volunteer}/statement", None, tokens["volunteer"]["token"])
                else:
                    status, _ = call(base, "POST", "/transfers", "{not json", tokens["relative"]["token"])
                with lock:
                    statuses[status] += 1

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(s >= 500 for s in statuses), statuses
        assert statuses[201] > 0 and statuses[200] > 0
        verify = subprocess.run([*manage, "verify"], env=env, cwd=ROOT, capture_output=True, text=True)
        assert verify.returncode == 0, verify.stderr
    finally:
        server.terminate()
        server.wait(10)
