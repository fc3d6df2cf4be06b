"""Issue 16, moving home across nodes (跨城迁移): a member of node A (this test process) moves to a community of node
B (a second server process, one for this module: tests/federation_nodes.py). B's head office approves; the member
arrives on B with their buckets, lifetime credited minutes (star levels count them), certificates, insurance and
consents; A marks them `left` with where they went."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests import federation_nodes as nodes
from tests.conftest import World, build_world
from tests.federation_nodes import NodeB, http
from timebank.audit.models import AuditEntry
from timebank.catalogue.models import ServiceItem
from timebank.federation import signing
from timebank.federation.models import FederatedMove, Peer
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account
from timebank.ledger.verify import verify
from timebank.lib import crypto
from timebank.members.actions import do_record_consent
from timebank.members.models import Certificate, InsurancePolicy, Member
from timebank.orders.records import do_service_record

pytestmark = pytest.mark.django_db(transaction=True)

# The fixtures of the two-node setup, for this module (one node B for it).
_node_b_prepared, node_b, _node_a = nodes._node_b_prepared, nodes.node_b, nodes._node_a

ID_NUMBER = "110105194912310021"


def _world(b: NodeB) -> tuple[World, dict[str, Any]]:
    """Node A's world with node B as a peer, and the volunteer 王秀英 with balances, a service record (90 min of
    mutual care), a certificate, an insurance policy, consents and an ID number."""
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
    member = w.members["volunteer"]
    root = w.users["superuser"]
    do_adjustment(root, member=member, minutes=300, bucket="reserve", reason="期初")
    item = ServiceItem.objects.create(head_office=w.bank, name="陪聊", category="mutual_care", tier="ordinary")
    do_service_record(
        root, volunteer=member, service_item=item, minutes=90, served_at=timezone.now() - dt.timedelta(days=2)
    )
    Certificate.objects.create(member=member, kind="first_aid", issuer="红十字会", valid_until=dt.date(2030, 1, 1))
    InsurancePolicy.objects.create(
        member=member,
        insurer="人保",
        policy_number="PA-1",
        starts_on=dt.date(2026, 1, 1),
        ends_on=dt.date(2026, 12, 31),
    )
    do_record_consent(root, member, scope="sensitive_personal_info", granted=True, channel="staff")
    do_record_consent(root, member, scope="health_info", granted=False, channel="staff")
    Member.objects.filter(pk=member.pk).update(
        id_number_encrypted=crypto.encrypt(ID_NUMBER), id_number_hash=crypto.keyed_hash(ID_NUMBER, scope="id_number")
    )
    return w, resp.json()


def _buckets(member: Member) -> dict[str, int]:
    return dict(Account.objects.filter(member=member).values_list("kind", "balance_minutes"))


def _ask(w: World, b: NodeB, peer: dict[str, Any], persona: str = "volunteer", **over: Any) -> Any:
    body = {
        "member_id": w.members["volunteer"].pk,
        "peer_id": peer["id"],
        "to_org_id": b.community_id,
        "consent_share_id_number": True,
        "reason": "随女儿搬到青岛",
        **over,
    }
    return w.api(persona).post("/api/v1/federation/moves", body)


def test_a_member_moves_with_balance_history_and_records_exactly_once(node_b: NodeB) -> None:
    w, peer = _world(node_b)
    member = w.members["volunteer"]
    before = _buckets(member)
    assert before == {"earned": 90, "goods": 0, "reserve": 300}
    b_clearing = int(node_b.get(f"/api/v1/federation/peers/{node_b.peer_id}")["balance_minutes"])

    resp = _ask(w, node_b, peer)
    assert resp.status_code == 201, resp.content
    move = resp.json()
    assert move["state"] == "requested" and move["direction"] == "out"
    assert (move["earned_minutes"], move["reserve_minutes"]) == (90, 300)
    # Every bucket left at once into the clearing account for B; the member waits for B's head office.
    assert _buckets(member) == {"earned": 0, "goods": 0, "reserve": 0}
    assert w.api("superuser").get(f"/api/v1/federation/peers/{peer['id']}").json()["balance_minutes"] == 390
    out = FederatedMove.objects.get(move_id=move["move_id"])
    assert out.snapshot["id_number_hash"] and ID_NUMBER not in json.dumps(out.snapshot)
    # A second request while one is open is 409.
    assert _ask(w, node_b, peer).status_code == 409

    # B's head office approves: the member arrives there.
    status, arrived = node_b.post(f"/api/v1/federation/moves/{move['move_id']}/approve", {})
    assert status == 200, arrived
    assert arrived["state"] == "completed" and arrived["direction"] == "in"
    new_id = arrived["member_id"]
    balance = node_b.get(f"/api/v1/members/{new_id}/balance")["buckets"]
    assert (balance["earned"], balance["goods"], balance["reserve"]) == (90, 0, 300)
    assert node_b.get(f"/api/v1/federation/peers/{node_b.peer_id}")["balance_minutes"] == b_clearing - 390
    assert node_b.get(f"/api/v1/members/{new_id}/star-level")["credited_minutes"] == 90
    certs = node_b.get(f"/api/v1/members/{new_id}/certificates")["items"]
    assert [(c["kind"], c["valid_until"]) for c in certs] == [("first_aid", "2030-01-01")]
    policies = node_b.get(f"/api/v1/members/{new_id}/insurance-policies")["items"]
    assert [(p["insurer"], p["policy_number"]) for p in policies] == [("人保", "PA-1")]
    consents = {c["scope"]: c["granted"] for c in node_b.get(f"/api/v1/members/{new_id}/consents")}
    assert consents["sensitive_personal_info"] is True and consents["health_info"] is False
    assert node_b.get(f"/api/v1/members/{new_id}")["name"] == member.name

    # A cannot be reached from B here (no server for A): A learns the decision by asking, as `federation_sync`
    # (and the task worker) does. The member has left, with where they went.
    member.refresh_from_db()
    assert member.status == "active"
    out_ = io.StringIO()
    call_command("federation_sync", stdout=out_)
    assert "still pending 0" in out_.getvalue()
    member.refresh_from_db()
    assert member.status == "left" and member.user is None
    seen = w.api("staff").get(f"/api/v1/federation/moves/{move['move_id']}").json()
    assert seen["state"] == "completed"
    assert (seen["peer_id"], seen["to_org_id"], seen["remote_member_id"]) == (
        peer["id"],
        str(node_b.community_id),
        str(new_id),
    )

    # The request delivered again (a fresh signature) answers the same and credits nothing twice; a second
    # approval is 409; the same signed bytes again are 401.
    body = json.dumps(
        {
            "type": "move_request",
            "uuid": move["move_id"],
            "member_id": str(member.pk),
            "to_org": str(node_b.community_id),
            "snapshot": out.snapshot,
            "to": node_b.node_id,
            "from": nodes.A_ID,
        },
        separators=(",", ":"),
    ).encode()
    url = node_b.base + "/api/v1/federation/inbox"
    headers = signing.sign("POST", url, body)
    assert http("POST", url, body, headers) == (200, {"uuid": move["move_id"], "state": "completed", "reason": ""})
    assert http("POST", url, body, headers)[0] == 401
    assert node_b.post(f"/api/v1/federation/moves/{move['move_id']}/approve", {})[0] == 409
    balance = node_b.get(f"/api/v1/members/{new_id}/balance")["buckets"]
    assert (balance["earned"], balance["reserve"]) == (90, 300)
    assert node_b.get(f"/api/v1/federation/peers/{node_b.peer_id}")["balance_minutes"] == b_clearing - 390

    # A member with the same ID number cannot arrive twice at B: a second move of the same person is refused
    # there as a duplicate (B compares the keyed hashes).
    twin = w.members["neighbour"]
    Member.objects.filter(pk=twin.pk).update(id_number_encrypted=crypto.encrypt(ID_NUMBER))
    do_adjustment(w.users["superuser"], member=twin, minutes=10, bucket="reserve", reason="期初")
    again = w.api("staff_next").post(
        "/api/v1/federation/moves",
        {
            "member_id": twin.pk,
            "peer_id": peer["id"],
            "to_org_id": node_b.community_id,
            "consent_share_id_number": True,
        },
    )
    assert again.status_code == 201, again.content
    status, body2 = node_b.post(f"/api/v1/federation/moves/{again.json()['move_id']}/approve", {})
    assert status == 409 and body2["error"]["code"] == "duplicate_id_number"
    assert verify(None).ok
    assert node_b.get("/api/v1/ledger/verify")["ok"] is True


def test_without_consent_or_by_someone_else_nothing_changes(node_b: NodeB) -> None:
    w, peer = _world(node_b)
    member = w.members["volunteer"]
    before = _buckets(member)
    audits = AuditEntry.objects.count()
    resp = _ask(w, node_b, peer, consent_share_id_number=False)
    assert resp.status_code == 422 and resp.json()["error"]["fields"] == {"consent_share_id_number": "required"}
    assert _ask(w, node_b, peer, consent_share_id_number=None).status_code == 422
    for persona in ("neighbour", "relative", "stranger", "staff_next", "other_bank_admin", "operator", "anonymous"):
        assert _ask(w, node_b, peer, persona=persona).status_code in (401, 403), persona
    # An unknown peer or community there: refused, nothing written either.
    assert _ask(w, node_b, peer, peer_id=peer["id"] + 999).status_code == 404
    assert _buckets(member) == before
    assert not FederatedMove.objects.exists() and AuditEntry.objects.count() == audits
    member.refresh_from_db()
    assert member.status == "active"
    # Staff of the member's home subtree may ask for them; B answers a community it does not have with a
    # refusal, and the minutes come back.
    resp = _ask(w, node_b, peer, persona="staff", to_org_id=10**9)
    assert resp.status_code == 201, resp.content
    assert resp.json()["state"] == "refused" and resp.json()["reason"] == "unknown_org"
    assert _buckets(member) == before
    # B's head office rejects a move: A learns it at its next sync and the minutes come back.
    resp = _ask(w, node_b, peer)
    assert resp.status_code == 201 and resp.json()["state"] == "requested", resp.content
    assert _buckets(member) == {"earned": 0, "goods": 0, "reserve": 0}
    status, body = node_b.post(f"/api/v1/federation/moves/{resp.json()['move_id']}/reject", {"reason": "社区已满"})
    assert status == 200 and body["state"] == "refused", body
    call_command("federation_sync", stdout=io.StringIO())
    assert _buckets(member) == before
    seen = w.api("volunteer").get(f"/api/v1/federation/moves/{resp.json()['move_id']}").json()
    assert (seen["state"], seen["reason"]) == ("refused", "社区已满")
    member.refresh_from_db()
    assert member.status == "active"
    assert verify(None).ok
    # Only B's head office approves an incoming move; A cannot approve its own outgoing one.
    assert (
        w.api("head_office_admin").post(f"/api/v1/federation/moves/{resp.json()['move_id']}/approve", {}).status_code
        == 403
    )


def _forged(b: NodeB, snapshot: dict[str, Any], **over: Any) -> tuple[int, Any]:
    """A validly signed `move_request` from A to B carrying `snapshot`."""
    msg = {
        "type": "move_request",
        "uuid": str(uuid.uuid4()),
        "member_id": "1",
        "to_org": str(b.community_id),
        "snapshot": snapshot,
        "to": b.node_id,
        "from": nodes.A_ID,
        **over,
    }
    body = json.dumps(msg).encode()
    url = b.base + "/api/v1/federation/inbox"
    return http("POST", url, body, {"Content-Type": "application/json", **signing.sign("POST", url, body)})


def _snap(**over: Any) -> dict[str, Any]:
    return {
        "member": {"name": "李四", "birth_date": "1950-01-02"},
        "id_number_hash": "",
        "consent_share_id_number": True,
        "buckets": {"earned": 10, "goods": 0, "reserve": 5},
        "lifetime_minutes": {"mutual_care": 10},
        "certificates": [],
        "insurance": [],
        "consents": {},
        **over,
    }


def test_forged_or_malformed_move_requests_are_refused_and_credit_nothing(node_b: NodeB) -> None:
    build_world()
    b_clearing = node_b.clearing()
    bad: list[dict[str, Any]] = [
        _snap(buckets={"earned": -1_000, "goods": 0, "reserve": 0}),
        _snap(buckets={"earned": 10_000_001, "goods": 0, "reserve": 0}),
        _snap(buckets={"earned": 500, "goods": -500, "reserve": 0}),  # self-cancelling
        _snap(lifetime_minutes={"mutual_care": 10**12}),
        _snap(lifetime_minutes={"mutual_care": -5}),
        _snap(certificates=["first_aid"]),
        _snap(certificates=[{"kind": "first_aid", "valid_until": "2030-02-31"}]),
        _snap(insurance=[{"insurer": "人保", "policy_number": "P", "starts_on": "2026-01-01"}]),
        _snap(insurance={"insurer": "人保"}),
        _snap(consents=["health_info"]),
        _snap(member={"name": "李四", "birth_date": "yesterday"}),
        _snap(member={"name": "李四", "phone": 13800000000}),
        _snap(member={"name": "李" * 51}),
        _snap(member={"name": "李四", "skills": "做饭"}),
        _snap(member={"name": "李四", "is_volunteer": "yes"}),
    ]
    for snapshot in bad:
        status, answer = _forged(node_b, snapshot)
        assert status == 422, (snapshot, status, answer)
    # Over the limit with A (100 000 minutes on B's side): refused on arrival, nothing credited.
    status, answer = _forged(node_b, _snap(buckets={"earned": 100_001 + b_clearing, "goods": 0, "reserve": 0}))
    assert status == 200 and (answer["state"], answer["reason"]) == ("refused", "peer_limit"), answer
    # A community that is digits but not ASCII: an unknown community, not an error.
    status, answer = _forged(node_b, _snap(), to_org="²")
    assert status == 200 and (answer["state"], answer["reason"]) == ("refused", "unknown_org"), answer
    assert node_b.clearing() == b_clearing
    # Within the limit on arrival, past it at approval (another move arrived first): the approval is 409.
    first = _forged(node_b, _snap(buckets={"earned": 60_000, "goods": 0, "reserve": 0}))[1]
    second = _forged(node_b, _snap(buckets={"earned": 60_000, "goods": 0, "reserve": 0}))[1]
    assert first["state"] == second["state"] == "requested", (first, second)
    status, approved = node_b.post(f"/api/v1/federation/moves/{first['uuid']}/approve", {})
    assert status == 200 and approved["state"] == "completed", approved
    status, refused = node_b.post(f"/api/v1/federation/moves/{second['uuid']}/approve", {})
    assert status == 409 and refused["error"]["code"] == "peer_limit", refused
    assert node_b.clearing() == b_clearing - 60_000
    assert node_b.get(f"/api/v1/federation/moves/{second['uuid']}")["state"] == "requested"
    assert node_b.get("/api/v1/ledger/verify")["ok"] is True


def test_the_sending_side_keeps_to_the_peer_limit(node_b: NodeB) -> None:
    w, peer = _world(node_b)
    member = w.members["volunteer"]
    Peer.objects.filter(pk=peer["id"]).update(limit_minutes=100)
    before = _buckets(member)
    resp = _ask(w, node_b, peer)
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "peer_limit", resp.content
    assert _buckets(member) == before and not FederatedMove.objects.exists()
