"""Issue 16, "Pages": a member sends minutes to a relative on another node from 我的时间, and reads the outcome;
head-office admins (and the superuser) see each peer of their bank: balance, limit, pending and refused transfers
with their reason or last delivery error, and the comparison of both nodes' statements for a day.

Fast by design: no second node. The peers' addresses answer nothing (connection refused at once), so transfers
stay `pending`; the other states are made with the core's own `apply_outcome`, as a peer's answer would."""

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
from timebank.federation import actions
from timebank.federation.actions import apply_outcome, do_create_peer, do_send_transfer
from timebank.federation.models import FederatedTransfer, Outbox, Peer, TransferState
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import AccountKind
from timebank.orders.views_member import balances

DOWN = "https://127.0.0.1:9"  # nothing listens: connection refused at once


def _key() -> str:
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


@pytest.fixture
def node(world: World, settings: Any) -> World:
    settings.FEDERATION_NODE_ID = "node-here"
    settings.FEDERATION_SIGNING_KEY = "A" * 43 + "="
    do_adjustment(
        world.users["superuser"], member=world.members["volunteer"], minutes=300, bucket="reserve", reason="期初"
    )
    return world


def _peer(
    w: World, node_id: str = "qingdao", *, bank: Any = None, limit: int = 100_000, name: str = "青岛市时间银行"
) -> Peer:
    return do_create_peer(
        w.users["superuser"],
        node_id=node_id,
        name=name,
        url=DOWN,
        public_key=_key(),
        bank=bank or w.bank,
        limit_minutes=limit,
    )


def _spendable(w: World, persona: str = "volunteer") -> int:
    parts = balances(w.members[persona])
    return parts[AccountKind.EARNED] + parts[AccountKind.RESERVE]


def _form(client: Client) -> dict[str, str]:
    html = client.get("/me/federation/send/").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html)
    assert key, html
    return {"idempotency_key": key.group(1)}


def _links(html: str) -> list[str]:
    return re.findall(r'href="([^"#]+)', html)


def test_from_the_members_home_to_a_pending_transfer(node: World) -> None:
    peer = _peer(node)
    client = web_client(node.users["volunteer"])
    home = client.get("/")
    assert home.status_code == 200 and "/me/time/" in _links(home.content.decode())
    my_time = client.get("/me/time/").content.decode()
    assert "/me/federation/send/" in _links(my_time)
    page = client.get("/me/federation/send/")
    assert page.status_code == 200 and "青岛市时间银行" in page.content.decode()
    data = {
        **_form(client),
        "peer": str(peer.pk),
        "to_account": "7",
        "to_name": "王小红",
        "hours": "1",
        "minutes": "30",
        "memo": "给女儿",
    }
    done = client.post("/me/federation/send/", data)
    transfer = FederatedTransfer.objects.get()
    assert done.status_code == 302 and done["Location"] == f"/me/federation/{transfer.transfer_id}/"
    assert (transfer.minutes, transfer.remote_account, transfer.remote_name, transfer.memo) == (
        90,
        "7",
        "王小红",
        "给女儿",
    )
    assert transfer.state == TransferState.PENDING and _spendable(node) == 210
    result = client.get(done["Location"]).content.decode()
    assert "待对方入账" in result and "王小红" in result and "1 小时 30 分钟" in result
    # The peer is down: the worker's sync tries, fails, and the transfer stays pending (minutes still out).
    assert actions.sync().pending == 1
    box = Outbox.objects.get(transfer=transfer)
    assert box.attempts == 1 and box.last_error and box.delivered_at is None
    assert "待对方入账" in client.get(done["Location"]).content.decode()


def test_a_bank_without_peers_sees_no_link_and_no_form(node: World) -> None:
    _peer(node, bank=node.other_bank)
    client = web_client(node.users["volunteer"])
    assert "/me/federation/send/" not in _links(client.get("/me/time/").content.decode())
    page = client.get("/me/federation/send/").content.decode()
    assert "还没有和其他城市的时间银行对接" in page and 'name="to_account"' not in page


BAD = [
    ({"hours": "-1"}, "hours"),
    ({"hours": "99999999"}, "hours"),
    ({"hours": "abc"}, "hours"),
    ({"hours": "0", "minutes": "0"}, "hours"),
    ({"hours": "100"}, "hours"),  # more than the member has: 409 insufficient_balance, beside the amount
    ({"peer": "999999"}, "peer"),
    ({"peer": "other"}, "peer"),  # the other bank's peer
    ({"peer": "abc"}, "peer"),
    ({"to_account": "abc"}, "to_account"),
    ({"to_account": ""}, "to_account"),
    ({"to_name": ""}, "to_name"),
    ({"minutes": "7"}, "minutes"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_input_comes_back_beside_the_field_and_moves_nothing(
    node: World, change: dict[str, str], field: str
) -> None:
    peer = _peer(node)
    other = _peer(node, "nanchong-peer", bank=node.other_bank, name="外行的节点")
    client = web_client(node.users["volunteer"])
    data = {**_form(client), "peer": str(peer.pk), "to_account": "7", "to_name": "王小红", "hours": "1", "minutes": "0"}
    data.update(change)
    if data["peer"] == "other":
        data["peer"] = str(other.pk)
    response = client.post("/me/federation/send/", data)
    assert response.status_code == 422
    assert f'id="id_{field}_error_1"' in response.content.decode()
    assert not FederatedTransfer.objects.exists() and not Outbox.objects.exists()
    assert _spendable(node) == 300


def test_the_peer_limit_is_refused_beside_the_amount(node: World) -> None:
    peer = _peer(node, limit=30)
    client = web_client(node.users["volunteer"])
    data = {**_form(client), "peer": str(peer.pk), "to_account": "7", "to_name": "王小红", "hours": "1", "minutes": "0"}
    response = client.post("/me/federation/send/", data)
    assert response.status_code == 422 and 'id="id_hours_error_1"' in response.content.decode()
    assert "往来限额" in response.content.decode()
    assert not FederatedTransfer.objects.exists() and _spendable(node) == 300


def test_a_double_submit_moves_the_minutes_once(node: World) -> None:
    peer = _peer(node)
    client = web_client(node.users["volunteer"])
    data = {**_form(client), "peer": str(peer.pk), "to_account": "7", "to_name": "王小红", "hours": "1", "minutes": "0"}
    first = client.post("/me/federation/send/", data)
    second = client.post("/me/federation/send/", data, follow=True)
    transfer = FederatedTransfer.objects.get()
    assert first["Location"] == second.redirect_chain[-1][0] == f"/me/federation/{transfer.transfer_id}/"
    assert "没有重复送出" in second.content.decode()
    assert Outbox.objects.count() == 1 and _spendable(node) == 240


def _sent(w: World, peer: Peer, minutes: int = 60, key: str | None = None) -> FederatedTransfer:
    transfer, _replayed = do_send_transfer(
        w.users["volunteer"],
        member=w.members["volunteer"],
        peer=peer,
        to_account="7",
        to_name="王小红",
        minutes=minutes,
        idempotency_key=key or uuid.uuid4().hex,
    )
    return transfer


def test_the_result_page_shows_completed_and_refused_with_the_reason(node: World) -> None:
    peer = _peer(node)
    done = apply_outcome(_sent(node, peer), TransferState.COMPLETED, "")
    refused = apply_outcome(_sent(node, peer), TransferState.REFUSED, "name_mismatch")
    assert _spendable(node) == 240  # the refused minutes came back
    client = web_client(node.users["volunteer"])
    assert "已完成" in client.get(f"/me/federation/{done.transfer_id}/").content.decode()
    page = client.get(f"/me/federation/{refused.transfer_id}/").content.decode()
    assert "被退回" in page and "姓名和会员编号对不上" in page and "退回给您" in page
    # The sender's relatives and home-subtree staff read it; other members and other banks do not.
    for persona in ("staff", "head_office_admin", "superuser"):
        assert web_client(node.users[persona]).get(f"/me/federation/{refused.transfer_id}/").status_code == 200
    for persona in ("neighbour", "stranger", "other_bank_admin", "other_bank_staff", "staff_next"):
        status = web_client(node.users[persona]).get(f"/me/federation/{refused.transfer_id}/").status_code
        assert status in (403, 404), persona
    assert web_client(node.users["volunteer"]).get(f"/me/federation/{uuid.uuid4()}/").status_code == 404


def test_head_office_admin_sees_peers_pending_and_refused(node: World) -> None:
    peer = _peer(node, limit=5000)
    pending = _sent(node, peer, 45)
    actions.deliver(pending)  # the peer is down: one failed attempt, its error kept
    apply_outcome(_sent(node, peer, 30), TransferState.REFUSED, "unknown_account")
    apply_outcome(_sent(node, peer, 20), TransferState.COMPLETED, "")
    client = web_client(node.users["head_office_admin"])
    manage = client.get("/manage/").content.decode()
    assert "/manage/federation/" in _links(manage)
    listing = client.get("/manage/federation/").content.decode()
    assert f"/manage/federation/{peer.pk}/" in _links(listing)
    assert "65 分钟" in listing and "5000 分钟" in listing  # balance: 45 pending + 20 completed; the limit
    detail = client.get(f"/manage/federation/{peer.pk}/")
    assert detail.status_code == 200
    html = detail.content.decode()
    box = Outbox.objects.get(transfer=pending)
    assert box.attempts == 1 and box.last_error
    assert "1 次" in html and box.last_error.split(":")[0] in html
    assert "对方时间银行没有这个会员编号" in html and "unknown_account" in html
    assert "最近完成的" in html


def test_the_peers_pages_are_for_that_banks_head_office_admins_and_the_superuser(node: World) -> None:
    peer = _peer(node)
    own = _peer(node, "nanchong-peer", bank=node.other_bank, name="外行的节点")
    assert web_client(node.users["superuser"]).get(f"/manage/federation/{peer.pk}/").status_code == 200
    superuser_list = web_client(node.users["superuser"]).get("/manage/federation/").content.decode()
    assert "青岛市时间银行" in superuser_list and "外行的节点" in superuser_list
    other_admin = web_client(node.users["other_bank_admin"])
    listing = other_admin.get("/manage/federation/")
    assert listing.status_code == 200 and "青岛市时间银行" not in listing.content.decode()
    assert "外行的节点" in listing.content.decode()
    assert other_admin.get(f"/manage/federation/{peer.pk}/").status_code == 403
    assert other_admin.get(f"/manage/federation/{own.pk}/").status_code == 200
    for persona in ("other_bank_staff", "staff", "branch_admin", "operator", "supervisor", "volunteer"):
        client = web_client(node.users[persona])
        assert client.get("/manage/federation/").status_code == 403, persona
        assert client.get(f"/manage/federation/{peer.pk}/").status_code in (403, 404), persona
    assert web_client(node.users["head_office_admin"]).get("/manage/federation/999999/").status_code == 404
    assert web_client(None).get("/manage/federation/").status_code == 302


def test_reconciliation_for_a_chosen_day(node: World, monkeypatch: pytest.MonkeyPatch) -> None:
    peer = _peer(node)
    done = apply_outcome(_sent(node, peer, 25), TransferState.COMPLETED, "")
    day = done.agreed_at.astimezone().date().isoformat()
    client = web_client(node.users["head_office_admin"])
    url = f"/manage/federation/{peer.pk}/?date={day}"
    # The peer is down: the comparison says its statement is not available.
    assert "statement not available" in client.get(url).content.decode()
    mirror = actions.statement(peer, done.agreed_at.astimezone().date())

    def answer(entries: list[dict[str, Any]]) -> Any:
        def fake(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return {
                "peer_node_id": "node-here",
                "date": day,
                "opening_minutes": -mirror["opening_minutes"],
                "closing_minutes": -mirror["closing_minutes"],
                "entries": entries,
            }

        return fake

    theirs = [{**e, "minutes": -e["minutes"]} for e in mirror["entries"]]
    monkeypatch.setattr(actions, "signed_request", answer(theirs))
    assert "两边的对账单一致" in client.get(url).content.decode()
    monkeypatch.setattr(actions, "signed_request", answer([]))
    html = client.get(url).content.decode()
    assert "对不上" in html and str(done.transfer_id) in html
    assert client.get(f"/manage/federation/{peer.pk}/?date=not-a-day").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_page_tries_the_peer_at_once_and_parallel_submits_move_once(settings: Any) -> None:
    """As in production (pages run outside a transaction): the submit tries the peer at once; it is down, so the
    transfer stays pending with one failed attempt and its error. The same form submitted five times at once
    (PostgreSQL: five threads, each its own connection; SQLite serialises writers, so one after the other) moves
    the minutes once and every answer leads to the same transfer."""
    import threading

    from django.db import connection, connections

    from tests.conftest import MODEL_BACKEND, build_world

    w = build_world()
    settings.FEDERATION_NODE_ID = "node-here"
    settings.FEDERATION_SIGNING_KEY = "A" * 43 + "="
    do_adjustment(w.users["superuser"], member=w.members["volunteer"], minutes=300, bucket="reserve", reason="期初")
    peer = _peer(w)
    data = {
        **_form(web_client(w.users["volunteer"])),
        "peer": str(peer.pk),
        "to_account": "7",
        "to_name": "王小红",
        "hours": "1",
        "minutes": "0",
    }
    parallel = connection.vendor == "postgresql"
    barrier = threading.Barrier(5 if parallel else 1)
    answers: list[tuple[int, str]] = []

    def submit() -> None:
        try:
            client = Client(raise_request_exception=False)
            client.force_login(w.users["volunteer"], backend=MODEL_BACKEND)
            barrier.wait(timeout=30)
            resp = client.post("/me/federation/send/", data)
            answers.append((resp.status_code, resp.get("Location", "")))
        finally:
            if parallel:
                connections.close_all()

    if parallel:
        pool = [threading.Thread(target=submit) for _ in range(5)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=60)
    else:
        for _ in range(5):
            submit()
    transfer = FederatedTransfer.objects.get()
    assert answers == [(302, f"/me/federation/{transfer.transfer_id}/")] * 5
    box = Outbox.objects.get()
    assert box.attempts == 1 and box.last_error and transfer.state == TransferState.PENDING
    assert _spendable(w) == 240
