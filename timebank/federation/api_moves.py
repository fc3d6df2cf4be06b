"""Moving home across nodes (跨城迁移, API-CONTRACT.md "Federation: moving home"): the routes on the federation
router. Actions: moves.py."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from django.db import connection
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Path, Schema, Status
from pydantic import StringConstraints

from timebank.api.types import Id, NoNul
from timebank.federation import moves
from timebank.federation.access import access_move, access_move_request
from timebank.federation.api import _configured, router
from timebank.federation.models import Direction, FederatedMove, Peer
from timebank.lib.errors import NotFound
from timebank.orgs.api import caller

MoveKey = Annotated[str, Path(max_length=64)]


class FederatedMoveIn(Schema):
    member_id: Id
    peer_id: Id
    to_org_id: Id  # the receiving community's id on the peer node
    consent_share_id_number: bool = False
    reason: Annotated[str, StringConstraints(strict=True, max_length=500), NoNul] = ""


class FederatedMoveRejectIn(Schema):
    reason: Annotated[str, StringConstraints(strict=True, max_length=200), NoNul] = ""


class FederatedMoveOut(Schema):
    move_id: uuid.UUID
    direction: str
    state: str
    reason: str
    peer_id: int
    member_id: int | None
    to_org_id: str
    remote_member_id: str
    earned_minutes: int
    goods_minutes: int
    reserve_minutes: int
    created_at: dt.datetime
    completed_at: dt.datetime | None


def _deliver_after_commit() -> None:
    """Under an Idempotency-Key header the view runs inside the middleware's transaction: the network is not
    called then; the task worker (or `federation_sync`) delivers after commit."""
    from django.db import transaction

    from timebank.federation.tasks import enqueue_sync

    transaction.on_commit(enqueue_sync)


def move_out(m: FederatedMove) -> dict[str, Any]:
    return {
        "move_id": m.move_id,
        "direction": m.direction,
        "state": m.state,
        "reason": m.reason,
        "peer_id": m.peer_id,
        "member_id": m.member_id,
        "to_org_id": str(m.to_org_id) if m.direction == Direction.IN else m.remote_org,
        "remote_member_id": m.remote_member,
        "earned_minutes": m.earned_minutes,
        "goods_minutes": m.goods_minutes,
        "reserve_minutes": m.reserve_minutes,
        "created_at": m.created_at,
        "completed_at": m.completed_at,
    }


@router.post("/federation/moves", response={201: FederatedMoveOut})
def request_move(request: HttpRequest, payload: FederatedMoveIn) -> Status[dict[str, Any]]:
    """A member moving to a community on a peer node asks (the member, or staff of their home subtree). Every
    bucket leaves at once into the clearing account for the peer; the request goes to the peer's head office."""
    _configured()
    user = caller(request)
    member = access_move_request(user, payload.member_id)
    peer = Peer.objects.filter(pk=payload.peer_id).first()
    if peer is None:
        raise NotFound(_("找不到这个对接节点。"), code="peer_not_found")
    move = moves.do_request_move(
        user,
        member=member,
        peer=peer,
        to_org=str(payload.to_org_id),
        consent_share_id_number=payload.consent_share_id_number,
        reason=payload.reason,
    )
    if connection.in_atomic_block:
        _deliver_after_commit()
    else:
        move = moves.deliver_request(move)
    return Status(201, move_out(move))


@router.get("/federation/moves/{federated_move_id}", response=FederatedMoveOut)
def get_move(request: HttpRequest, federated_move_id: MoveKey) -> dict[str, Any]:
    return move_out(access_move(caller(request), federated_move_id))


@router.post("/federation/moves/{federated_move_id}/approve", response=FederatedMoveOut)
def approve_move(request: HttpRequest, federated_move_id: MoveKey) -> dict[str, Any]:
    """The receiving bank's head office approves: the member arrives with their balances and records."""
    _configured()
    user = caller(request)
    move = moves.do_approve_move(user, access_move(user, federated_move_id, decide=True))
    if connection.in_atomic_block:
        _deliver_after_commit()
    else:
        move = moves.notify(move)
    return move_out(move)


@router.post("/federation/moves/{federated_move_id}/reject", response=FederatedMoveOut)
def reject_move(request: HttpRequest, federated_move_id: MoveKey, payload: FederatedMoveRejectIn) -> dict[str, Any]:
    _configured()
    user = caller(request)
    move = moves.do_reject_move(user, access_move(user, federated_move_id, decide=True), payload.reason)
    if connection.in_atomic_block:
        _deliver_after_commit()
    else:
        move = moves.notify(move)
    return move_out(move)
