"""Issue 16, pages for moving home across nodes (跨城迁移) across two real nodes (tests/federation_nodes.py): staff of
node A ask from the member's page, node B's head office decides, and A's move page shows the outcome after
`federation_sync`: the refusal's reason in words, or the member's id on B."""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.management import call_command

from tests import federation_nodes as nodes
from tests.conftest import World, build_world, web_client
from tests.federation_nodes import NodeB
from tests.test_federation_move_pages import _ask, _buckets
from timebank.federation.actions import do_create_peer
from timebank.federation.models import Direction, FederatedMove, MoveState, Peer
from timebank.ledger.actions import do_adjustment
from timebank.lib import crypto
from timebank.members.models import Member

# ---- two nodes: the sending page learns the receiving head office's decision ---------------------------------


_node_b_prepared, node_b = nodes._node_b_prepared, nodes.node_b


@pytest.fixture
def two(node_b: NodeB, settings: Any) -> tuple[World, Peer]:
    settings.FEDERATION_NODE_ID = nodes.A_ID
    settings.FEDERATION_SIGNING_KEY = nodes.A_KEY
    settings.FEDERATION_ALLOW_HTTP_LOOPBACK = True
    settings.FEDERATION_TIMEOUT_SECONDS = 5
    settings.FEDERATION_ID_HASH_KEY = nodes.ID_HASH_KEY
    w = build_world()
    peer = do_create_peer(
        w.users["superuser"],
        node_id=node_b.node_id,
        name="青岛",
        url=node_b.base,
        public_key=node_b.public_key,
        bank=w.bank,
        limit_minutes=100_000,
    )
    do_adjustment(w.users["superuser"], member=w.members["volunteer"], minutes=120, bucket="reserve", reason="期初")
    # An ID number of its own: the test world's numbers come from a counter that node B's process counts too.
    Member.objects.filter(pk=w.members["volunteer"].pk).update(id_number_encrypted=crypto.encrypt("110105194801010012"))
    return w, peer


@pytest.mark.django_db(transaction=True)
def test_across_two_nodes_the_page_shows_approval_then_refusal_with_its_reason(
    node_b: NodeB, two: tuple[World, Peer]
) -> None:
    w, peer = two
    client = web_client(w.users["staff"])
    member = w.members["volunteer"]
    resp = _ask(client, w, peer, to_org_id=str(node_b.community_id))
    assert resp.status_code == 302, resp.content.decode()[:3000]
    move = FederatedMove.objects.get()
    assert move.notified_at is not None  # delivered to B at once, after commit
    status, body = node_b.post(f"/api/v1/federation/moves/{move.move_id}/reject", {"reason": "社区已满"})
    assert status == 200 and body["state"] == "refused", body
    call_command("federation_sync", stdout=io.StringIO())
    shown = client.get(resp["Location"]).content.decode()
    assert "被拒绝" in shown and "社区已满" in shown and "时间已经退回" in shown
    assert _buckets(member)["reserve"] == 120
    # A community B does not have: refused on arrival, and the page says why in words.
    resp = _ask(client, w, peer, idempotency_key="u" * 32, to_org_id=str(10**9))
    assert resp.status_code == 302
    assert "对方节点没有这个社区编号" in client.get(resp["Location"]).content.decode()
    # Asked again, approved there: the page shows the member's id on B.
    resp = _ask(client, w, peer, idempotency_key="v" * 32, to_org_id=str(node_b.community_id))
    assert resp.status_code == 302
    move = FederatedMove.objects.filter(direction=Direction.OUT, state=MoveState.REQUESTED).get()
    status, body = node_b.post(f"/api/v1/federation/moves/{move.move_id}/approve", {})
    assert status == 200 and body["state"] == "completed", body
    call_command("federation_sync", stdout=io.StringIO())
    shown = client.get(resp["Location"]).content.decode()
    assert "已迁入" in shown and str(body["member_id"]) in shown
    member.refresh_from_db()
    assert member.status == "left"
