"""Issue 16: two deployments ("nodes") exchange credits (API-CONTRACT.md "Federation").

Two processes, two databases, loopback: node A is this test process on the test database; node B is a second
server process (`manage.py runserver --noreload`) on its own database (SQLite: a temp file; PostgreSQL: its own
database), with its own secrets file and FEDERATION_NODE_ID. B is started and migrated once for the module and
shared by the tests, which therefore compare B's balances before and after, never absolute figures.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from tests import federation_nodes as nodes
from tests.conftest import World, build_world
from tests.federation_nodes import A_ID, A_KEY, NodeB, _a_public, _new_key, http
from timebank.federation import signing
from timebank.federation.models import FederatedTransfer, Outbox, Peer
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account
from timebank.ledger.verify import verify

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


# The fixtures of the two-node setup, for this module (one node B for it).
_node_b_prepared, node_b, _node_a = nodes._node_b_prepared, nodes.node_b, nodes._node_a


@dataclass
class Pair:
    w: World
    b: NodeB
    peer: dict[str, Any]  # node B as a peer of node A

    def send(self, minutes: int, *, name: str | None = None, key: str | None = None, persona: str = "recipient") -> Any:
        body = {
            "from_member_id": self.w.members["recipient"].pk,
            "peer_id": self.peer["id"],
            "to_account": str(self.b.member_id),
            "to_name": self.b.member_name if name is None else name,
            "minutes": minutes,
            "memo": "给在青岛的女儿",
            "idempotency_key": key or uuid.uuid4().hex,
        }
        return self.w.api(persona).post("/api/v1/federation/transfers", body)

    def a_reserve(self) -> int:
        return Account.objects.get(member=self.w.members["recipient"], kind="reserve").balance_minutes

    def a_clearing(self) -> int:
        return int(self.w.api("superuser").get(f"/api/v1/federation/peers/{self.peer['id']}").json()["balance_minutes"])


def _pair(b: NodeB, *, limit: int = 10_000, url: str | None = None) -> Pair:
    w = build_world()
    do_adjustment(w.users["superuser"], member=w.members["recipient"], minutes=300, bucket="reserve", reason="期初")
    body = {
        "node_id": b.node_id,
        "name": "青岛",
        "url": url or b.base,
        "public_key": b.public_key,
        "bank_id": w.bank.pk,
        "limit_minutes": limit,
    }
    resp = w.api("superuser").post("/api/v1/federation/peers", body)
    assert resp.status_code == 201, resp.content
    return Pair(w, b, resp.json())


def _both_verify(b: NodeB) -> None:
    report = verify(None)
    assert report.ok, report.problems
    assert b.get("/api/v1/ledger/verify")["ok"] is True


# ---------------------------------------------------------------------------------------------


def test_node_identity_and_peers(node_b: NodeB) -> None:
    w = build_world()
    node = w.api("anonymous").get("/api/v1/federation/node").json()
    assert node == {"node_id": A_ID, "name": A_ID, "public_key": _a_public()}
    body = {
        "node_id": node_b.node_id,
        "name": "青岛",
        "url": node_b.base,
        "public_key": node_b.public_key,
        "bank_id": w.bank.pk,
        "limit_minutes": 600,
    }
    # Only the superuser registers a peer; the URL must be https (or the loopback, when allowed).
    assert w.api("head_office_admin").post("/api/v1/federation/peers", body).status_code == 403
    bad = w.api("superuser").post("/api/v1/federation/peers", {**body, "url": "http://tb.example.org"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"] == {"url": "not_https"}
    bad = w.api("superuser").post("/api/v1/federation/peers", {**body, "public_key": "bm90IGEga2V5"})
    assert bad.status_code == 422
    assert Peer.objects.count() == 0 and not Account.objects.filter(kind="federation").exists()
    resp = w.api("superuser").post("/api/v1/federation/peers", body)
    assert resp.status_code == 201, resp.content
    peer = resp.json()
    assert peer == {
        "id": peer["id"],
        "node_id": "node-b",
        "name": "青岛",
        "url": node_b.base,
        "bank_id": w.bank.pk,
        "limit_minutes": 600,
        "balance_minutes": 0,
    }
    assert Account.objects.filter(kind="federation", bank=w.bank, member__isnull=True).count() == 1
    assert w.api("superuser").post("/api/v1/federation/peers", body).status_code == 409  # one node, once
    # Read: the superuser and that bank's head-office admins.
    for persona, status in [("superuser", 200), ("head_office_admin", 200), ("other_bank_admin", 403), ("staff", 403)]:
        assert w.api(persona).get(f"/api/v1/federation/peers/{peer['id']}").status_code == status, persona
    assert [p["id"] for p in w.api("head_office_admin").get("/api/v1/federation/peers").json()["items"]] == [peer["id"]]
    assert w.api("other_bank_admin").get("/api/v1/federation/peers").json()["items"] == []
    # The private key is nowhere in the database.
    with connection.cursor() as cursor:
        for table in ("federation_peer", "ledger_account", "audit_auditentry"):
            cursor.execute(f"SELECT * FROM {table}")
            assert A_KEY not in json.dumps(cursor.fetchall(), default=str)


def test_a_transfer_completes_and_both_sides_move(node_b: NodeB) -> None:
    pair = _pair(node_b)
    b_reserve, b_clearing = node_b.reserve(), node_b.clearing()
    resp = pair.send(90)
    assert resp.status_code == 201, resp.content
    out = resp.json()
    assert out["state"] == "completed", Outbox.objects.values_list("last_error", flat=True)[:1]
    assert out["minutes"] == 90 and out["to_account"] == str(node_b.member_id)
    assert pair.a_reserve() == 210 and pair.a_clearing() == 90
    assert node_b.reserve() == b_reserve + 90 and node_b.clearing() == b_clearing - 90
    # Replaying the key answers the same transfer and moves nothing more.
    again = pair.send(90, key=None)
    assert again.status_code == 201
    key = uuid.uuid4().hex
    first = pair.send(10, key=key).json()
    replay = pair.send(10, key=key)
    assert replay.json() == first and replay["Idempotent-Replayed"] == "true"
    assert pair.a_reserve() == 110 and node_b.reserve() == b_reserve + 190
    # The sender, their relative and their staff read it; others do not.
    tid = out["transfer_id"]
    readers = [("recipient", 200), ("relative", 200), ("staff", 200), ("branch_admin", 200), ("head_office_admin", 200)]
    others = [("staff_next", 403), ("operator", 403), ("volunteer", 403), ("stranger", 403), ("other_bank_admin", 403)]
    for persona, status in readers + others:
        assert pair.w.api(persona).get(f"/api/v1/federation/transfers/{tid}").status_code == status, persona
    assert pair.w.api("recipient").get("/api/v1/federation/transfers/not-a-uuid").status_code == 404
    # Only from one's own account.
    assert pair.send(5, persona="relative").status_code == 403
    _both_verify(node_b)


def test_name_mismatch_is_refused_and_the_minutes_come_back(node_b: NodeB) -> None:
    pair = _pair(node_b)
    b_reserve, b_clearing = node_b.reserve(), node_b.clearing()
    resp = pair.send(60, name="王小绿")
    assert resp.status_code == 201
    assert resp.json()["state"] == "refused" and resp.json()["reason"] == "name_mismatch"
    assert pair.a_reserve() == 300 and pair.a_clearing() == 0
    assert node_b.reserve() == b_reserve and node_b.clearing() == b_clearing
    _both_verify(node_b)


def test_limit_and_balance_are_409_and_move_nothing(node_b: NodeB) -> None:
    pair = _pair(node_b, limit=100)
    b_reserve = node_b.reserve()
    resp = pair.send(101)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "peer_limit"
    assert pair.send(100).json()["state"] == "completed"
    resp = pair.send(1)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "peer_limit"
    Peer.objects.filter(pk=pair.peer["id"]).update(limit_minutes=10_000)
    resp = pair.send(201)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "insufficient_balance"
    assert pair.a_reserve() == 200 and pair.a_clearing() == 100
    assert node_b.reserve() == b_reserve + 100
    assert FederatedTransfer.objects.count() == 1


def _message(b: NodeB, minutes: int = 5, name: str | None = None) -> bytes:
    msg = {
        "type": "transfer",
        "uuid": str(uuid.uuid4()),
        "state": "pending",
        "payer": "1",
        "payee": str(b.member_id),
        "payee_name": b.member_name if name is None else name,
        "quant": minutes,
        "description": "",
        "written": dt.datetime.now(dt.UTC).isoformat(),
        "to": b.node_id,
        "from": signing.node_id(),
    }
    return json.dumps(msg).encode()


def test_a_message_addressed_to_another_node_or_from_another_sender_is_401(node_b: NodeB) -> None:
    """A peer cannot replay our signed message to a third node: the body names its recipient and its sender."""
    build_world()
    url = node_b.base + "/api/v1/federation/inbox"
    b_reserve, b_clearing = node_b.reserve(), node_b.clearing()
    for change in ({"to": "node-c"}, {"from": "node-c"}, {"to": None}, {"from": None}):
        msg = {k: v for k, v in {**json.loads(_message(node_b)), **change}.items() if v is not None}
        body = json.dumps(msg).encode()
        status, answer = http(
            "POST", url, body, {"Content-Type": "application/json", **signing.sign("POST", url, body)}
        )
        assert status == 401 and answer["error"]["code"] == "misaddressed", (change, answer)
    # A payee that is digits but not ASCII ("²".isdigit() is True) is an unknown account, not an error.
    msg = {**json.loads(_message(node_b)), "payee": "²"}
    body = json.dumps(msg).encode()
    status, answer = http("POST", url, body, {"Content-Type": "application/json", **signing.sign("POST", url, body)})
    assert status == 200 and (answer["state"], answer["reason"]) == ("refused", "unknown_account"), answer
    # A `written` time from the future (beyond the signature's skew) is refused.
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6)).isoformat()
    body = json.dumps({**json.loads(_message(node_b)), "written": future}).encode()
    assert http("POST", url, body, {"Content-Type": "application/json", **signing.sign("POST", url, body)})[0] == 422
    assert node_b.reserve() == b_reserve and node_b.clearing() == b_clearing


def test_unsigned_forged_stale_unknown_and_replayed_inbox_messages_are_401(node_b: NodeB, settings: Any) -> None:
    build_world()
    url = node_b.base + "/api/v1/federation/inbox"
    b_reserve, b_clearing = node_b.reserve(), node_b.clearing()

    def post(body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        return http("POST", url, body, {"Content-Type": "application/json", **headers})

    body = _message(node_b)
    assert post(body, {})[0] == 401  # unsigned
    headers = signing.sign("POST", url, body)
    assert post(_message(node_b), headers)[0] == 401  # the body is not the one signed
    forged = dict(headers, Signature=headers["Signature"].replace(headers["Signature"][10:20], "A" * 10))
    assert post(body, forged)[0] == 401  # a bad signature
    stale = signing.sign("POST", url, body, created=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=6))
    assert post(body, stale)[0] == 401  # more than 5 minutes old
    future = signing.sign("POST", url, body, created=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=6))
    assert post(body, future)[0] == 401
    other = signing.sign("POST", node_b.base + "/api/v1/federation/inboxx", body)
    assert post(body, other)[0] == 401  # signed for another path
    settings.FEDERATION_SIGNING_KEY = _new_key()
    assert post(body, signing.sign("POST", url, body))[0] == 401  # another key under A's name
    settings.FEDERATION_NODE_ID = "node-x"
    status, answer = post(body, signing.sign("POST", url, body))
    assert status == 401, answer  # an unknown node
    assert node_b.reserve() == b_reserve and node_b.clearing() == b_clearing
    settings.FEDERATION_NODE_ID, settings.FEDERATION_SIGNING_KEY = A_ID, A_KEY
    status, answer = post(body, headers)  # the genuine message, once
    assert status == 200 and answer["state"] == "completed", answer
    assert node_b.reserve() == b_reserve + 5
    status, answer = post(body, headers)  # the same message again: its nonce was seen
    assert status == 401 and answer["error"]["code"] == "replayed"
    assert node_b.reserve() == b_reserve + 5 and node_b.clearing() == b_clearing - 5
    # A re-delivery (new signature, same transfer) answers the original outcome and credits nothing more.
    status, answer = post(body, signing.sign("POST", url, body))
    assert status == 200 and answer["state"] == "completed"
    assert node_b.reserve() == b_reserve + 5
    # One new transfer delivered five times at once (as two sync runs racing): credited once, every answer the same.
    body = _message(node_b, minutes=3)
    signed = [signing.sign("POST", url, body) for _ in range(5)]
    answers: list[tuple[int, Any]] = []
    threads = [threading.Thread(target=lambda h=h: answers.append(post(body, h))) for h in signed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(a[0] for a in answers) == [200] * 5, answers
    assert {a[1]["state"] for a in answers} == {"completed"}
    assert node_b.reserve() == b_reserve + 8 and node_b.clearing() == b_clearing - 8


def test_a_transfer_while_the_peer_is_down_is_delivered_by_federation_sync_exactly_once(node_b: NodeB) -> None:
    pair = _pair(node_b)
    b_reserve, b_clearing = node_b.reserve(), node_b.clearing()
    node_b.stop()
    try:
        resp = pair.send(45)
        assert resp.status_code == 201, resp.content
        assert resp.json()["state"] == "pending"
        tid = resp.json()["transfer_id"]
        assert pair.a_reserve() == 255 and pair.a_clearing() == 45  # the minutes left at once
        box = Outbox.objects.get(transfer__transfer_id=tid)
        assert box.delivered_at is None and box.attempts == 1 and box.last_error
        call_command("federation_sync")  # still down: still pending
        assert FederatedTransfer.objects.get(transfer_id=tid).state == "pending"
    finally:
        node_b.start()
    assert node_b.reserve() == b_reserve
    call_command("federation_sync")
    assert pair.w.api("recipient").get(f"/api/v1/federation/transfers/{tid}").json()["state"] == "completed"
    call_command("federation_sync")  # nothing left to deliver
    transfer = FederatedTransfer.objects.get(transfer_id=tid)
    # Delivered again by hand (as after a crash between the peer's answer and ours): the peer answers the same.
    FederatedTransfer.objects.filter(pk=transfer.pk).update(state="pending")
    from timebank.federation.actions import deliver

    assert deliver(FederatedTransfer.objects.get(pk=transfer.pk)).state == "completed"
    assert node_b.reserve() == b_reserve + 45 and node_b.clearing() == b_clearing - 45
    assert pair.a_reserve() == 255 and pair.a_clearing() == 45
    assert FederatedTransfer.objects.filter(transfer_id=tid).count() == 1
    _both_verify(node_b)


def test_statements_mirror_and_reconcile_names_the_transfers_that_differ(node_b: NodeB, settings: Any) -> None:
    # A fresh pair of nodes (node A under another id), so the transfers of the tests above are not on it.
    settings.FEDERATION_NODE_ID = "node-a2"
    status, b_peer = node_b.post(
        "/api/v1/federation/peers",
        {
            "node_id": "node-a2",
            "name": "台儿庄（二）",
            "url": "http://127.0.0.1:9",
            "public_key": _a_public(),
            "bank_id": node_b.bank_id,
            "limit_minutes": 100_000,
        },
    )
    assert status == 201, b_peer
    pair = _pair(node_b)
    assert pair.send(30).json()["state"] == "completed"
    assert pair.send(20, name="王小绿").json()["state"] == "refused"
    assert pair.send(15).json()["state"] == "completed"
    today = timezone.localdate().isoformat()
    call_command("federation_reconcile", "--date", today)  # no difference: returns
    ours = pair.w.api("head_office_admin").get(f"/api/v1/federation/peers/{pair.peer['id']}/statement", {"date": today})
    assert ours.status_code == 200, ours.content
    ours = ours.json()
    theirs = node_b.get(f"/api/v1/federation/peers/{b_peer['id']}/statement?date={today}")
    assert ours["peer_node_id"] == "node-b" and theirs["peer_node_id"] == "node-a2"
    assert ours["closing_minutes"] == 45 and theirs["closing_minutes"] == -45 and ours["opening_minutes"] == 0
    assert sorted((e["transfer_id"], e["minutes"]) for e in ours["entries"]) == sorted(
        (e["transfer_id"], -e["minutes"]) for e in theirs["entries"]
    )
    assert len(ours["entries"]) == 2
    assert (
        pair.w.api("staff").get(f"/api/v1/federation/peers/{pair.peer['id']}/statement", {"date": today}).status_code
        == 403
    )
    # The peer node itself reads it with a signed request; the same signed request again is a replay.
    url = f"{node_b.base}/api/v1/federation/peers/{b_peer['id']}/statement?date={today}"
    # Not addressed to B and from A (the query names both): 401.
    for query in ("", "&to=node-b", "&from=node-a2", "&to=node-c&from=node-a2", "&to=node-b&from=node-x"):
        status, answer = http("GET", url + query, None, signing.sign("GET", url + query, b""))
        assert status == 401 and answer["error"]["code"] == "misaddressed", (query, answer)
    url += "&to=node-b&from=node-a2"
    headers = signing.sign("GET", url, b"")
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as resp:
        raw, answer_headers = resp.read(), dict(resp.headers.items())
    assert json.loads(raw) == theirs
    # The answer is signed by node B: its status and body, with B's key.
    b_key = signing.load_public_key(node_b.public_key)
    assert b_key is not None
    signing.verify_answer(200, answer_headers, raw, "node-b", b_key)
    with pytest.raises(signing.Unverified):
        signing.verify_answer(200, answer_headers, raw.replace(b"-45", b"-46"), "node-b", b_key)
    with pytest.raises(signing.Unverified):
        signing.verify_answer(200, answer_headers, raw, "node-b", signing.load_public_key(_a_public()))  # type: ignore[arg-type]
    assert http("GET", url, None, headers)[0] == 401  # the same signed request again: a replay
    assert http("GET", url, None, signing.sign("GET", url + "x", b""))[0] == 401  # signed for another query

    def differences() -> str:
        err = io.StringIO()
        with pytest.raises(CommandError):
            call_command("federation_reconcile", "--date", today, stderr=err)
        return err.getvalue()

    # A tampered record here: reconcile names it.
    first = FederatedTransfer.objects.filter(state="completed").order_by("pk").first()
    assert first is not None
    FederatedTransfer.objects.filter(pk=first.pk).update(minutes=31)
    assert str(first.transfer_id) in differences()
    FederatedTransfer.objects.filter(pk=first.pk).update(minutes=30)
    call_command("federation_reconcile", "--date", today)
    # A transfer the peer has and this node does not: named too.
    inbox = node_b.base + "/api/v1/federation/inbox"
    body = _message(node_b, minutes=7)
    status, answer = http(
        "POST", inbox, body, {"Content-Type": "application/json", **signing.sign("POST", inbox, body)}
    )
    assert status == 200 and answer["state"] == "completed"
    assert answer["uuid"] in differences()
    _both_verify(node_b)


def test_a_signed_request_follows_no_redirect(node_b: NodeB) -> None:
    """Whoever answers at a peer's address cannot send our signed request on elsewhere: a redirect is an error."""
    import http.server

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(302)
            self.send_header("Location", node_b.base + "/api/v1/federation/node")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        pair = _pair(node_b, url=f"http://127.0.0.1:{server.server_address[1]}")
        b_reserve = node_b.reserve()
        resp = pair.send(5)
        assert resp.status_code == 201 and resp.json()["state"] == "pending", resp.content
        assert "HTTP 302" in Outbox.objects.get().last_error
        assert node_b.reserve() == b_reserve
    finally:
        server.shutdown()
        server.server_close()
