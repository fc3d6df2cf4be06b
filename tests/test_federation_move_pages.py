"""Issue 16, pages for moving home across nodes (跨城迁移): staff of the member's home subtree ask from the member's
page; the receiving node's head-office admins find incoming moves waiting on their federation page and approve or
reject them (with a reason) on the move's page; the move's page shows its state and the refusal's reason; the
sending side lists its outgoing moves. Each page asks the endpoint's access function (federation/access.py) and
calls its action (federation/moves.py).

Mostly one node: the peers' addresses answer nothing, so a request stays `requested` and an incoming move is
received through the inbox's own `moves.receive`. Across two real nodes: tests/test_federation_move_pages_2.py."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.test import Client

from tests.conftest import World, web_client
from timebank.audit.models import AuditEntry
from timebank.federation import moves
from timebank.federation.actions import do_create_peer
from timebank.federation.models import FederatedMove, Peer
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account
from timebank.members.models import Member

DOWN = "https://127.0.0.1:9"  # nothing listens: connection refused at once


def _key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def node(world: World, settings: Any) -> World:
    settings.FEDERATION_NODE_ID = "node-here"
    settings.FEDERATION_SIGNING_KEY = "A" * 43 + "="
    settings.FEDERATION_ID_HASH_KEY = "test-id-hash-key"
    do_adjustment(
        world.users["superuser"], member=world.members["volunteer"], minutes=300, bucket="reserve", reason="期初"
    )
    return world


def _peer(w: World, node_id: str = "qingdao", *, bank: Any = None, name: str = "青岛市时间银行") -> Peer:
    return do_create_peer(
        w.users["superuser"],
        node_id=node_id,
        name=name,
        url=DOWN,
        public_key=_key(),
        bank=bank or w.bank,
        limit_minutes=100_000,
    )


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"#]+)', html)


def _buckets(member: Member) -> dict[str, int]:
    return dict(Account.objects.filter(member=member).values_list("kind", "balance_minutes"))


def _url(w: World, persona: str = "volunteer") -> str:
    return f"/staff/members/{w.members[persona].pk}/federation-moves/"


def _ask(client: Client, w: World, peer: Peer, **over: Any) -> Any:
    body = {
        "idempotency_key": "k" * 32,
        "peer_id": str(peer.pk),
        "to_org_id": "41",
        "consent_share_id_number": "on",
        "reason": "随女儿搬到青岛",
        **over,
    }
    return client.post(_url(w), {k: v for k, v in body.items() if v is not None})


def _incoming(peer: Peer, to_org: int, *, earned: int = 60, name: str = "李四") -> FederatedMove:
    """A peer's `move_request` as the inbox keeps it (the signature was checked before `receive`)."""
    message = {
        "type": "move_request",
        "uuid": str(uuid.uuid4()),
        "member_id": "77",
        "to_org": str(to_org),
        "snapshot": {
            "member": {"name": name, "birth_date": "1950-01-02", "is_volunteer": True},
            "id_number_hash": "",
            "consent_share_id_number": True,
            "buckets": {"earned": earned, "goods": 0, "reserve": 30},
            "lifetime_minutes": {"mutual_care": earned},
            "certificates": [],
            "insurance": [],
            "consents": {},
        },
    }
    answer = moves.receive(peer, uuid.uuid4().hex, message)
    assert answer["state"] == "requested", answer
    return FederatedMove.objects.get(move_id=answer["uuid"])


# ---- the sending node: the member's page -------------------------------------------------------------------


def test_staff_ask_from_the_members_page_and_follow_the_move(node: World) -> None:
    peer = _peer(node)
    _peer(node, "nanchong", bank=node.other_bank, name="别家的节点")
    client = web_client(node.users["staff"])
    member = node.members["volunteer"]
    # From the staff home to the member's page, to the move form.
    home = client.get("/", follow=True).content.decode()
    assert "/staff/members/" in _links(home)
    listing = client.get("/staff/members/").content.decode()
    assert f"/staff/members/{member.pk}/" in _links(listing)
    page = client.get(f"/staff/members/{member.pk}/").content.decode()
    assert _url(node) in _links(page) and "迁往其他城市" in page
    form = client.get(_url(node))
    html = form.content.decode()
    assert form.status_code == 200 and "青岛市时间银行" in html and "别家的节点" not in html
    for field in ("peer_id", "to_org_id", "consent_share_id_number", "reason"):
        assert f'name="{field}"' in html, field

    resp = _ask(client, node, peer)
    move = FederatedMove.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/federation/moves/{move.move_id}/"
    assert (move.direction, move.state, move.member_id, move.remote_org, move.reason) == (
        "out",
        "requested",
        member.pk,
        "41",
        "随女儿搬到青岛",
    )
    assert move.requested_by_id == node.users["staff"].pk and move.reserve_minutes == 300
    assert _buckets(member)["reserve"] == 0  # the minutes left at once (the peer is down: it stays requested)
    shown = client.get(resp["Location"]).content.decode()
    assert "待对方总行审批" in shown and "5 小时" in shown and "41" in shown
    listed = client.get(_url(node)).content.decode()
    assert f"/federation/moves/{move.move_id}/" in _links(listed) and "待对方总行审批" in listed
    # The head office sees it among its outgoing moves.
    admin = web_client(node.users["head_office_admin"]).get("/manage/federation/").content.decode()
    assert f"/federation/moves/{move.move_id}/" in _links(admin) and "王秀英" in admin
    # The sending side cannot decide its own outgoing move.
    approve = web_client(node.users["head_office_admin"]).post(
        f"/federation/moves/{move.move_id}/approve/", {"idempotency_key": "a" * 32}
    )
    assert approve.status_code == 403
    assert FederatedMove.objects.get().state == "requested"


def test_a_double_submit_asks_once(node: World) -> None:
    peer = _peer(node)
    client = web_client(node.users["staff"])
    audits = AuditEntry.objects.filter(action="federation.move_request").count()
    first, second = _ask(client, node, peer), _ask(client, node, peer)
    assert first.status_code == second.status_code == 302 and first["Location"] == second["Location"]
    assert FederatedMove.objects.count() == 1
    assert AuditEntry.objects.filter(action="federation.move_request").count() == audits + 1
    # A new form while one is open: refused beside the form, nothing more written.
    again = _ask(client, node, peer, idempotency_key="j" * 32)
    assert again.status_code == 409 and "已有一个待审批的跨节点迁移" in again.content.decode()
    assert FederatedMove.objects.count() == 1


def test_bad_input_is_refused_and_nothing_is_written(node: World) -> None:
    peer = _peer(node)
    other = _peer(node, "nanchong", bank=node.other_bank, name="别家的节点")
    client = web_client(node.users["staff"])
    member = node.members["volunteer"]
    before = _buckets(member)
    audits = AuditEntry.objects.count()
    bad: list[dict[str, Any]] = [
        {"peer_id": str(peer.pk + 999)},  # an unknown peer
        {"peer_id": str(other.pk)},  # another bank's peer
        {"peer_id": "abc"},
        {"to_org_id": str(10**30)},  # huge
        {"to_org_id": "0"},
        {"to_org_id": "-5"},
        {"to_org_id": ""},
        {"consent_share_id_number": None},  # no consent
        {"reason": "长" * 501},
    ]
    for i, over in enumerate(bad):
        resp = _ask(client, node, peer, idempotency_key=f"bad-{i}", **over)
        assert resp.status_code == 422, (over, resp.status_code)
    assert _buckets(member) == before and not FederatedMove.objects.exists()
    assert AuditEntry.objects.count() == audits
    # A member who has left cannot ask.
    Member.objects.filter(pk=member.pk).update(status="left")
    resp = _ask(client, node, peer, idempotency_key="left")
    assert resp.status_code == 409 and not FederatedMove.objects.exists()


def test_only_the_members_home_subtree_asks_or_reads(node: World) -> None:
    peer = _peer(node)
    move = moves.do_request_move(
        node.users["staff"],
        member=node.members["volunteer"],
        peer=peer,
        to_org="41",
        consent_share_id_number=True,
    )
    for persona in ("staff_next", "other_bank_admin", "other_bank_staff", "operator", "stranger", "relative"):
        client = web_client(node.users[persona])
        assert client.get(_url(node)).status_code in (403, 404), persona
        resp = _ask(client, node, peer, idempotency_key=f"x-{persona}")
        assert resp.status_code in (403, 404), persona
        assert client.get(f"/federation/moves/{move.move_id}/").status_code in (403, 404), persona
    assert FederatedMove.objects.count() == 1
    assert web_client(None).get(_url(node)).status_code == 302  # to the login page
    # The head office and the branch above may read it; an unknown move is 404.
    for persona in ("head_office_admin", "branch_admin", "staff"):
        assert web_client(node.users[persona]).get(f"/federation/moves/{move.move_id}/").status_code == 200
    assert web_client(node.users["staff"]).get(f"/federation/moves/{uuid.uuid4()}/").status_code == 404


# ---- the receiving node: the head office's federation page -------------------------------------------------


def test_the_head_office_approves_an_incoming_move_from_its_federation_page(node: World) -> None:
    peer = _peer(node)
    move = _incoming(peer, node.community.pk)
    client = web_client(node.users["head_office_admin"])
    assert "/manage/federation/" in _links(client.get("/manage/").content.decode())
    listing = client.get("/manage/federation/").content.decode()
    url = f"/federation/moves/{move.move_id}/"
    assert url in _links(listing) and "李四" in listing and "顺河社区" in listing
    page = client.get(url).content.decode()
    assert f"{url}approve/" in page and f"{url}reject/" in page
    clearing = Account.objects.get(pk=peer.clearing_account_id).balance_minutes
    audits = AuditEntry.objects.filter(action="federation.move_approve").count()
    first = client.post(f"{url}approve/", {"idempotency_key": "a" * 32})
    second = client.post(f"{url}approve/", {"idempotency_key": "a" * 32})  # a double submit
    assert first.status_code == second.status_code == 302 and first["Location"] == url
    move.refresh_from_db()
    assert (
        move.state == "completed"
        and move.member is not None
        and move.decided_by_id == node.users["head_office_admin"].pk
    )
    assert Member.objects.filter(name="李四").count() == 1
    assert _buckets(move.member) == {"earned": 60, "goods": 0, "reserve": 30}
    assert Account.objects.get(pk=peer.clearing_account_id).balance_minutes == clearing - 90
    assert AuditEntry.objects.filter(action="federation.move_approve").count() == audits + 1
    shown = client.get(url).content.decode()
    assert "已迁入" in shown and f"{url}approve/" not in shown
    assert url not in _links(client.get("/manage/federation/").content.decode())  # no longer waiting
    # A later form (a new key) is refused with the reason; nothing more is credited.
    late = client.post(f"{url}reject/", {"idempotency_key": "r" * 32, "reason": "晚了"})
    assert late.status_code == 409 and "已经办结" in late.content.decode()
    assert _buckets(move.member)["earned"] == 60


def test_the_head_office_rejects_with_a_reason_shown_on_the_moves_page(node: World) -> None:
    peer = _peer(node)
    move = _incoming(peer, node.community.pk)
    client = web_client(node.users["head_office_admin"])
    url = f"/federation/moves/{move.move_id}/"
    for blank in ("", "   "):
        resp = client.post(f"{url}reject/", {"idempotency_key": "r" * 32, "reason": blank})
        assert resp.status_code == 422 and "请写明拒绝原因。" in resp.content.decode()
    assert client.post(f"{url}reject/", {"idempotency_key": "r" * 32, "reason": "长" * 201}).status_code == 422
    move.refresh_from_db()
    assert move.state == "requested"
    resp = client.post(f"{url}reject/", {"idempotency_key": "r" * 32, "reason": "社区已满"})
    again = client.post(f"{url}reject/", {"idempotency_key": "r" * 32, "reason": "社区已满"})
    assert resp.status_code == again.status_code == 302
    move.refresh_from_db()
    assert (move.state, move.reason, move.member_id) == ("refused", "社区已满", None)
    assert AuditEntry.objects.filter(action="federation.move_reject").count() == 1
    shown = client.get(url).content.decode()
    assert "被拒绝" in shown and "社区已满" in shown and f"{url}approve/" not in shown
    assert not Member.objects.filter(name="李四").exists()


def test_only_that_banks_head_office_decides_an_incoming_move(node: World) -> None:
    peer = _peer(node)
    move = _incoming(peer, node.community.pk)
    url = f"/federation/moves/{move.move_id}/"
    for persona in ("other_bank_admin", "branch_admin", "staff", "operator", "volunteer", "stranger"):
        client = web_client(node.users[persona])
        assert client.get(url).status_code in (403, 404), persona
        assert client.post(f"{url}approve/", {"idempotency_key": f"a-{persona}"}).status_code in (403, 404)
        assert client.post(f"{url}reject/", {"idempotency_key": f"r-{persona}", "reason": "不"}).status_code in (
            403,
            404,
        )
    other_listing = web_client(node.users["other_bank_admin"]).get("/manage/federation/").content.decode()
    assert url not in _links(other_listing)
    move.refresh_from_db()
    assert move.state == "requested" and not Member.objects.filter(name="李四").exists()
    admin = web_client(node.users["head_office_admin"])
    assert admin.post(f"/federation/moves/{uuid.uuid4()}/approve/", {"idempotency_key": "z"}).status_code == 404
    assert admin.get(url + "approve/").status_code == 405  # a decision is a POST
    assert web_client(node.users["superuser"]).get(url).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_decision_tells_the_peer_once_after_commit(node: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The approve and reject pages run through `submit_once`: the peer is told after the keyed transaction has
    committed (no atomic block open, the decision already readable), and a double submit tells it once. The reject
    form is the inter-bank move's form with the federated move's own reason field (200 characters, its words)."""
    from django.db import connection

    told: list[tuple[uuid.UUID, bool, str]] = []

    def notify(move: FederatedMove) -> None:
        stored = FederatedMove.objects.get(pk=move.pk).state
        told.append((move.move_id, connection.in_atomic_block, stored))

    monkeypatch.setattr(moves, "notify", notify)
    peer = _peer(node)
    client = web_client(node.users["head_office_admin"])
    approved = _incoming(peer, node.community.pk)
    url = f"/federation/moves/{approved.move_id}/"
    for _ in range(2):
        assert client.post(f"{url}approve/", {"idempotency_key": "a" * 32}).status_code == 302
    assert told == [(approved.move_id, False, "completed")]
    refused = _incoming(peer, node.community.pk, name="王五")
    url = f"/federation/moves/{refused.move_id}/"
    blank = client.post(f"{url}reject/", {"idempotency_key": "r" * 32, "reason": " "})
    form = blank.content.decode().split(f'action="{url}reject/"')[1].split("</form>")[0]
    assert blank.status_code == 422 and "拒绝原因" in form and 'maxlength="200"' in form and 'class="error"' in form
    for _ in range(2):
        assert client.post(f"{url}reject/", {"idempotency_key": "r" * 32, "reason": "社区已满"}).status_code == 302
    assert told[1:] == [(refused.move_id, False, "refused")]
