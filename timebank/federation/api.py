"""Federation between deployments (API-CONTRACT.md "Federation"): this node, its peers, transfers to their members,
and the signed inbox other nodes post to."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Path, Router, Status

from timebank.api.types import Page, PathId
from timebank.federation import actions, signing
from timebank.federation.access import (
    access_create_peer,
    access_peer,
    access_transfer,
    reads_delivery_errors,
    visible_peers,
)
from timebank.federation.models import FederatedTransfer, Peer
from timebank.federation.schemas import (
    FederatedTransferIn,
    FederatedTransferOut,
    FederatedTransferStatusOut,
    InboxOut,
    NodeOut,
    PeerIn,
    PeerOut,
    PeerStatementOut,
)
from timebank.federation.stuck import delivery
from timebank.lib.errors import ApiError, Invalid, NotAuthenticated, NotFound
from timebank.members.access import access_own_member
from timebank.orgs.api import caller
from timebank.orgs.auth import BearerToken, SessionAuth
from timebank.orgs.models import Org

router = Router(tags=["federation"])


class NotConfigured(ApiError):
    status = 503
    code = "federation_not_configured"


def _configured() -> None:
    if not settings.FEDERATION_NODE_ID or not settings.FEDERATION_SIGNING_KEY:
        raise NotConfigured(_("本节点没有配置跨节点对接。"))


@router.get("/federation/node", response=NodeOut, auth=None, tags=["federation", "public"])
def node(request: HttpRequest) -> dict[str, Any]:
    """This node's identity: its id, its name and its Ed25519 public key (base64). Public."""
    _configured()
    return {
        "node_id": signing.node_id(),
        "name": settings.FEDERATION_NAME or signing.node_id(),
        "public_key": signing.public_key_b64(),
    }


@router.post("/federation/peers", response={201: PeerOut})
def create_peer(request: HttpRequest, payload: PeerIn) -> Status[Peer]:
    """Register a peer node for one head office (the superuser), with its clearing account and limit."""
    user = caller(request)
    access_create_peer(user)
    bank = Org.objects.filter(pk=payload.bank_id).first()
    if bank is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    peer = actions.do_create_peer(
        user,
        node_id=payload.node_id,
        name=payload.name,
        url=payload.url,
        public_key=payload.public_key,
        bank=bank,
        limit_minutes=payload.limit_minutes,
    )
    return Status(201, Peer.objects.select_related("clearing_account").get(pk=peer.pk))


@router.get("/federation/peers", response=Page[PeerOut])
def list_peers(request: HttpRequest) -> dict[str, Any]:
    """The superuser: every peer. A head-office admin: their bank's peers."""
    return {"items": list(visible_peers(caller(request))[:200]), "next_cursor": None}


@router.get("/federation/peers/{peer_id}", response=PeerOut)
def get_peer(request: HttpRequest, peer_id: PathId) -> Peer:
    return access_peer(caller(request), peer_id)


def transfer_out(t: FederatedTransfer) -> dict[str, Any]:
    return {
        "transfer_id": t.transfer_id,
        "state": t.state,
        "reason": t.reason,
        "minutes": t.minutes,
        "peer_id": t.peer_id,
        "to_account": t.remote_account,
        "created_at": t.created_at,
    }


@router.post("/federation/transfers", response={201: FederatedTransferOut})
def create_transfer(
    request: HttpRequest, response: HttpResponse, payload: FederatedTransferIn
) -> Status[dict[str, Any]]:
    """Send minutes to a member of a peer node, from the caller's own account. The minutes leave at once; the
    answer is `completed` or `refused` when the peer answers at once, else `pending` (delivered later)."""
    _configured()
    user = caller(request)
    actions.check_minutes(payload.minutes)
    member = access_own_member(user, payload.from_member_id)
    peer = Peer.objects.select_related("clearing_account").filter(pk=payload.peer_id).first()
    if peer is None:
        raise NotFound(_("找不到这个对接节点。"), code="peer_not_found")
    transfer, replayed = actions.do_send_transfer(
        user,
        member=member,
        peer=peer,
        to_account=payload.to_account,
        to_name=payload.to_name,
        minutes=payload.minutes,
        memo=payload.memo,
        idempotency_key=payload.idempotency_key,
    )
    if replayed:
        response["Idempotent-Replayed"] = "true"
    elif _in_transaction():
        from django.db import transaction

        from timebank.federation.tasks import enqueue_sync

        transaction.on_commit(enqueue_sync)
    else:
        transfer = actions.deliver(transfer)
    return Status(201, transfer_out(transfer))


def _in_transaction() -> bool:
    """Under an Idempotency-Key header the view runs inside the middleware's transaction: the network is not
    called then, and the transfer is delivered after commit by the task worker or `federation_sync`."""
    from django.db import connection

    return connection.in_atomic_block


@router.get("/federation/transfers/{transfer_id}", response=FederatedTransferStatusOut)
def get_transfer(request: HttpRequest, transfer_id: Annotated[str, Path(max_length=64)]) -> dict[str, Any]:
    """The sender, their relatives, and staff of the sender's home subtree."""
    transfer = access_transfer(caller(request), transfer_id)
    how = delivery(transfer)
    error = how.last_error if reads_delivery_errors(caller(request), transfer) else ""
    return transfer_out(transfer) | {"stuck": how.stuck, "attempts": how.attempts, "last_error": error}


def _peer_key(node_id: str) -> Any:
    peer = Peer.objects.filter(node_id=node_id).first()
    return signing.load_public_key(peer.public_key) if peer is not None else None


def verified_peer(request: HttpRequest, body: bytes) -> tuple[Peer, str]:
    """The peer node that signed this request, and the message's nonce; 401 for anything else."""
    _configured()
    try:
        verified = signing.verify(
            request.method or "", request.path, request.headers, body, _peer_key, request.META.get("QUERY_STRING", "")
        )
    except signing.Unverified as exc:
        raise NotAuthenticated(_("签名无效。"), code="bad_signature", fields={"signature": str(exc)[:200]}) from None
    peer = Peer.objects.filter(node_id=verified.key_id).first()
    if peer is None:
        raise NotAuthenticated(_("未登记的节点。"), code="unknown_node")
    return peer, verified.nonce


@router.post("/federation/inbox", response={200: InboxOut}, auth=None)
def inbox(request: HttpRequest) -> dict[str, Any]:
    """Messages from peer nodes, signed with their Ed25519 key (RFC 9421) over the method, the path, `created`,
    a nonce and the body's Content-Digest. Unsigned, forged, from an unknown node, more than 5 minutes off, or a
    nonce seen before: 401, and nothing changes. A transfer answers its outcome, the same on every re-delivery."""
    body = request.body
    peer, nonce = verified_peer(request, body)
    try:
        message = json.loads(body)
    except ValueError:
        raise Invalid(_("消息不是 JSON。"), fields={"body": "invalid"}) from None
    try:
        actions.check_address(peer, message)
    except actions.Misaddressed:
        raise NotAuthenticated(_("消息不是发给本节点的。"), code="misaddressed") from None
    try:
        if isinstance(message, dict) and str(message.get("type", "")).startswith("move_"):
            from django.http import JsonResponse

            from timebank.federation import moves

            return JsonResponse(moves.receive(peer, nonce, message))  # type: ignore[return-value]
        return actions.receive(peer, nonce, message)
    except actions.Replayed:
        raise NotAuthenticated(_("重复的消息。"), code="replayed") from None


class NodeSignature:
    """Authenticates a peer node by its signed request (the statement it fetches to reconcile)."""

    def __call__(self, request: HttpRequest) -> Peer | None:
        if "Signature" not in request.headers:
            return None
        peer, nonce = verified_peer(request, request.body)
        # The signed query names this node and the signer (a GET has no body to carry them): not replayable elsewhere.
        if request.GET.get("to") != signing.node_id() or request.GET.get("from") != peer.node_id:
            raise NotAuthenticated(_("消息不是发给本节点的。"), code="misaddressed")
        if not actions.note_nonce(peer, nonce):
            raise NotAuthenticated(_("重复的消息。"), code="replayed")
        return peer


@router.get(
    "/federation/peers/{peer_id}/statement",
    response=PeerStatementOut,
    auth=[BearerToken(), SessionAuth(), NodeSignature()],
)
def peer_statement(request: HttpRequest, peer_id: PathId, date: dt.date) -> dict[str, Any] | HttpResponse:
    """The completed transfers with a peer on one day, signed from this node's side (positive: the peer owes us
    more). The superuser and that bank's head-office admins; or the peer node itself, by a signed request: it
    then always gets its own statement (it does not know its id on this node), whatever the id in the path, and
    the answer carries this node's signature (RFC 9421, over its status and Content-Digest)."""
    who = request.auth  # type: ignore[attr-defined]
    if not isinstance(who, Peer):
        return actions.statement(access_peer(caller(request), peer_id), date)
    body = json.dumps(actions.statement(who, date), separators=(",", ":")).encode()
    response = HttpResponse(body, content_type="application/json")
    for name, value in signing.sign_answer(200, body).items():
        if name.lower() != "content-type":
            response[name] = value
    return response


from timebank.federation import api_moves  # noqa: E402,F401 - moving home across nodes: more routes on `router`
