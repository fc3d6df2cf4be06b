"""The two-node setup of the federation tests (tests/test_federation.py, tests/test_federation_moves.py).

Node A is the test process on the test database; node B is a second server process (`manage.py runserver
--noreload`) on its own database (SQLite: a temp file; PostgreSQL: its own database), with its own secrets file and
FEDERATION_NODE_ID. A test module takes the fixtures by assigning them at its top level
(`node_b = nodes.node_b`, ...): each module then gets its own node B, started and migrated once for the module."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from django.conf import settings as django_settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
# The key both nodes of the test federation hash ID numbers with when a member moves (federation/moves.py).
ID_HASH_KEY = "test-federation-id-hash-key"


def _new_key() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


A_ID = "node-a"
A_KEY = _new_key()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


B_SETUP = """
import json
from django.core.management import call_command
call_command("migrate", verbosity=0)
from tests.conftest import make_member
from timebank.federation.actions import do_create_peer
from timebank.orgs.actions import do_create_org, do_issue_token
from timebank.orgs.models import User
root = User.objects.create_superuser("root", password="root-pass-1")
bank = do_create_org(root, name="青岛市时间银行", kind="head_office", parent=None)
branch = do_create_org(root, name="市南区", kind="branch", parent=bank)
community = do_create_org(root, name="八大关社区", kind="sub_branch", parent=branch)
member = make_member(community, "王小红", roles=["volunteer"])
peer = do_create_peer(root, node_id=%(a_id)r, name="台儿庄", url="http://127.0.0.1:9", public_key=%(a_pub)r,
                      bank=bank, limit_minutes=100000)
print(json.dumps({"member": member.pk, "name": member.name, "peer": peer.pk, "bank": bank.pk,
                  "token": do_issue_token(root), "community": community.pk}))
"""


@dataclass
class NodeB:
    base: str
    node_id: str
    public_key: str
    member_id: int
    member_name: str
    peer_id: int  # node A as a peer of node B
    bank_id: int
    token: str
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    community_id: int = 0  # a community of B's bank (where a member moving to B arrives)

    def get(self, path: str) -> Any:
        status, body = http("GET", self.base + path, headers={"Authorization": f"Bearer {self.token}"})
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: dict[str, Any]) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return http("POST", self.base + path, json.dumps(body).encode(), headers)

    def reserve(self) -> int:
        return int(self.get(f"/api/v1/members/{self.member_id}/balance")["buckets"]["reserve"])

    def clearing(self) -> int:
        return int(self.get(f"/api/v1/federation/peers/{self.peer_id}")["balance_minutes"])

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(150):
            try:
                if http("GET", self.base + "/api/v1/federation/node")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("node B did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


def _a_public() -> str:
    key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(A_KEY)).public_key()
    from cryptography.hazmat.primitives.serialization import PublicFormat

    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _database_for_b(tmp: Path) -> tuple[str, Any]:
    """B's own database: a SQLite file, or a database of its own on the PostgreSQL server the tests use."""
    if connection.vendor != "postgresql":
        return f"sqlite:///{tmp / 'node_b.sqlite3'}", None
    import psycopg

    params = django_settings.DATABASES["default"]
    name = f"{params['NAME']}_node_b"[:60]
    admin = psycopg.connect(
        host=params["HOST"] or "127.0.0.1",
        port=params["PORT"] or 5432,
        user=params["USER"],
        password=params["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    )
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    user = urllib.parse.quote(params["USER"] or "postgres")
    password = f":{urllib.parse.quote(params['PASSWORD'])}" if params["PASSWORD"] else ""
    url = f"postgres://{user}{password}@{params['HOST'] or '127.0.0.1'}:{params['PORT'] or 5432}/{name}"

    def drop() -> None:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()

    return url, drop


@dataclass
class Prepared:
    process: subprocess.Popen[bytes]
    env: dict[str, str]


@pytest.fixture(scope="session", autouse=True)
def _node_b_prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    """Node B's database, migrated and given a bank, a member and node A as a peer, in a process started before
    the test database is made (session fixtures come first), so both sets of migrations run at once."""
    tmp = tmp_path_factory.mktemp("node_b")
    database_url, drop = _database_for_b(tmp)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "TASKS_BACKEND": "immediate",
        "TIMEBANK_LOCAL_SECRETS": str(tmp / "secrets.json"),
        "FEDERATION_NODE_ID": "node-b",
        "FEDERATION_ALLOW_HTTP_LOOPBACK": "1",
        "FEDERATION_ID_HASH_KEY": ID_HASH_KEY,
        "AXES_ENABLED": "0",
        "DJANGO_SETTINGS_MODULE": "timebank.settings",
    }
    env.pop("FEDERATION_SIGNING_KEY", None)
    setup = B_SETUP % {"a_id": A_ID, "a_pub": _a_public()}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", setup],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield Prepared(process, env)
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()
        if drop is not None:
            drop()


@pytest.fixture(scope="module")
def node_b(_node_b_prepared: Prepared) -> Iterator[NodeB]:
    out, err = _node_b_prepared.process.communicate(timeout=300)
    assert _node_b_prepared.process.returncode == 0, err.decode()[-2000:]
    made = json.loads(out.decode().strip().splitlines()[-1])
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = _node_b_prepared.env
    b = NodeB(base, "", "", made["member"], made["name"], made["peer"], made["bank"], made["token"], port, env)
    b.community_id = made["community"]
    b.start()
    try:
        node = http("GET", base + "/api/v1/federation/node")[1]
        b.node_id, b.public_key = node["node_id"], node["public_key"]
        assert b.node_id == "node-b"
        yield b
    finally:
        b.stop()


@pytest.fixture(autouse=True)
def _node_a(settings: Any) -> None:
    settings.FEDERATION_NODE_ID = A_ID
    settings.FEDERATION_SIGNING_KEY = A_KEY
    settings.FEDERATION_ALLOW_HTTP_LOOPBACK = True
    settings.FEDERATION_TIMEOUT_SECONDS = 5
    settings.FEDERATION_ID_HASH_KEY = ID_HASH_KEY
