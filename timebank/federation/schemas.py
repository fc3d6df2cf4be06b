"""The schemas of the federation API (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Annotated

from ninja import Schema
from pydantic import StringConstraints

from timebank.api.types import Id, IdempotencyKey, Memo, Minutes, NoNul

if TYPE_CHECKING:
    from timebank.federation.models import Peer

Text = Annotated[str, StringConstraints(strict=True, max_length=300), NoNul]


class NodeOut(Schema):
    node_id: str
    name: str
    public_key: str


class PeerIn(Schema):
    node_id: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64), NoNul]
    name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200), NoNul]
    url: Text
    public_key: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100), NoNul]
    bank_id: Id
    limit_minutes: Minutes


class PeerOut(Schema):
    id: int
    node_id: str
    name: str
    url: str
    bank_id: int
    limit_minutes: int
    balance_minutes: int

    # Read from the Peer row (with its clearing account): what the peer owes us (+) or we owe it (-).
    @staticmethod
    def resolve_balance_minutes(peer: Peer) -> int:
        return peer.clearing_account.balance_minutes


class FederatedTransferIn(Schema):
    from_member_id: Id
    peer_id: Id
    to_account: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64), NoNul]
    to_name: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100), NoNul]
    minutes: Minutes
    memo: Memo = ""
    idempotency_key: IdempotencyKey


class FederatedTransferOut(Schema):
    transfer_id: uuid.UUID
    state: str
    reason: str
    minutes: int
    peer_id: int
    to_account: str
    created_at: dt.datetime


class FederatedTransferStatusOut(FederatedTransferOut):
    """GET /federation/transfers/{id}: the contract's fields, and beyond them (docs/federation.md) whether a
    `pending` transfer is stuck (滞留: a delivery failed, or it waited past federation/stuck.py's threshold) with the
    outbox's attempts and last delivery error. Not in the POST's answer: a replay of the key answers the first
    answer's bytes, and these change while the outbox retries."""

    stuck: bool = False
    attempts: int = 0
    last_error: str = ""


class InboxOut(Schema):
    uuid: str
    state: str
    reason: str


class StatementEntryOut(Schema):
    transfer_id: str
    minutes: int
    at: str


class PeerStatementOut(Schema):
    peer_node_id: str
    date: str
    opening_minutes: int
    closing_minutes: int
    entries: list[StatementEntryOut]
