"""Issue 16: a move across nodes is not a transfer. The daily statements list completed transfers only (the
contract's `entries` are transfers), so after a member moves between two nodes the two statements still mirror each
other and `federation_reconcile` finds nothing; the move's minutes are in both clearing accounts (mirrored too),
so a statement's closing differs from the clearing balance by exactly the completed moves (docs/federation.md)."""

from __future__ import annotations

import io
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests import federation_nodes as nodes
from tests.conftest import World, build_world
from tests.federation_nodes import NodeB
from timebank.federation.actions import reconcile, statement
from timebank.federation.models import FederatedMove, Peer
from timebank.ledger.actions import do_adjustment
from timebank.ledger.verify import verify
from timebank.lib import crypto
from timebank.members.models import Member

pytestmark = pytest.mark.django_db(transaction=True)

_node_b_prepared, node_b, _node_a = nodes._node_b_prepared, nodes.node_b, nodes._node_a


def _world(b: NodeB) -> tuple[World, Peer]:
    w = build_world()
    body = {
        "node_id": b.node_id,
        "name": "青岛",
        "url": b.base,
        "public_key": b.public_key,
        "bank_id": w.bank.pk,
        "limit_minutes": 100_000,
    }
    resp = w.api("superuser").post("/api/v1/federation/peers", body)
    assert resp.status_code == 201, resp.content
    root = w.users["superuser"]
    do_adjustment(root, member=w.members["volunteer"], minutes=300, bucket="reserve", reason="期初")
    do_adjustment(root, member=w.members["recipient"], minutes=100, bucket="reserve", reason="期初")
    # An ID number of its own (the test world's come from a counter node B's process counts too).
    Member.objects.filter(pk=w.members["volunteer"].pk).update(id_number_encrypted=crypto.encrypt("110105194702020013"))
    return w, Peer.objects.get(pk=resp.json()["id"])


def _send(w: World, b: NodeB, peer: Peer, minutes: int) -> Any:
    body = {
        "from_member_id": w.members["recipient"].pk,
        "peer_id": peer.pk,
        "to_account": str(b.member_id),
        "to_name": b.member_name,
        "minutes": minutes,
        "memo": "给女儿",
        "idempotency_key": uuid.uuid4().hex,
    }
    return w.api("recipient").post("/api/v1/federation/transfers", body).json()


def test_statements_still_mirror_after_a_member_moves_between_the_nodes(node_b: NodeB) -> None:
    w, peer = _world(node_b)
    b_clearing = node_b.clearing()
    assert _send(w, node_b, peer, 30)["state"] == "completed"
    resp = w.api("staff").post(
        "/api/v1/federation/moves",
        {
            "member_id": w.members["volunteer"].pk,
            "peer_id": peer.pk,
            "to_org_id": node_b.community_id,
            "consent_share_id_number": True,
        },
    )
    assert resp.status_code == 201 and resp.json()["state"] == "requested", resp.content
    move_id = resp.json()["move_id"]
    status, arrived = node_b.post(f"/api/v1/federation/moves/{move_id}/approve", {})
    assert status == 200 and arrived["state"] == "completed", arrived
    call_command("federation_sync", stdout=io.StringIO())
    assert FederatedMove.objects.get(move_id=move_id).state == "completed"
    assert _send(w, node_b, peer, 15)["state"] == "completed"  # a transfer after the move, the same day

    today = timezone.localdate()
    assert reconcile(peer, today).problems == []
    call_command("federation_reconcile", "--date", today.isoformat(), stdout=io.StringIO())  # exits 0
    ours = statement(peer, today)
    theirs = node_b.get(f"/api/v1/federation/peers/{node_b.peer_id}/statement?date={today.isoformat()}")
    assert sorted((e["transfer_id"], e["minutes"]) for e in ours["entries"]) == sorted(
        (e["transfer_id"], -e["minutes"]) for e in theirs["entries"]
    )
    assert (ours["closing_minutes"], theirs["closing_minutes"]) == (45, -45)
    assert move_id not in {e["transfer_id"] for e in ours["entries"]}  # a move is not a transfer
    # Both clearing accounts carry the transfers and the move, mirrored: the statement's closing differs from
    # the clearing balance by exactly the completed move's minutes.
    peer.clearing_account.refresh_from_db()
    a_clearing = peer.clearing_account.balance_minutes
    assert a_clearing == 45 + 300 and node_b.clearing() - b_clearing == -(45 + 300)
    assert verify(None).ok and node_b.get("/api/v1/ledger/verify")["ok"] is True
