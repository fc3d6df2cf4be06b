"""The schemas of the ledger API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

from ninja import Schema

from timebank.api.types import Id, IdempotencyKey, Memo, Minutes, Reason

if TYPE_CHECKING:
    from timebank.ledger.models import InterBankMove


class LegOut(Schema):
    bucket: str
    member_id: int | None
    minutes: int


class TransactionOut(Schema):
    transaction_id: int
    kind: str
    minutes: int
    created_at: dt.datetime
    memo: str
    reverses_id: int | None
    legs: list[LegOut]


class BalanceOut(Schema):
    member_id: int
    total_minutes: int
    buckets: dict[str, int]


class StatementEntry(Schema):
    transaction_id: int
    kind: str
    bucket: str
    minutes: int
    balance_after_minutes: int
    created_at: dt.datetime
    memo: str


class TransferIn(Schema):
    from_member_id: Id
    to_member_id: Id | None = None
    minutes: Minutes
    kind: Literal["relative", "donation"]
    memo: Memo = ""
    idempotency_key: IdempotencyKey


class AdjustmentIn(Schema):
    member_id: Id
    minutes: Minutes
    bucket: Literal["earned", "goods", "reserve"]
    reason: Reason
    idempotency_key: IdempotencyKey


class WithdrawalIn(Schema):
    member_id: Id
    minutes: Minutes
    memo: Memo = ""
    idempotency_key: IdempotencyKey


class ReversalIn(Schema):
    transaction_id: Id
    reason: Reason
    idempotency_key: IdempotencyKey | None = None


class VerifyOut(Schema):
    ok: bool
    transactions: int
    problems: list[str]


class SettlementIn(Schema):
    head_office_id: Id
    period_end: dt.date


class SettlementOut(Schema):
    id: int
    head_office_id: int
    period_end: dt.date
    status: str
    members: int
    moved_minutes: int
    goods_minutes: int
    reserve_minutes: int
    already_settled: bool


class MoveIn(Schema):
    member_id: Id
    to_org_id: Id
    reason: Memo = ""


class MoveOut(Schema):
    id: int
    member_id: int
    to_org_id: int
    status: str
    new_member_id: int | None
    source_approved: bool
    target_approved: bool
    earned_minutes: int
    goods_minutes: int
    reserve_minutes: int

    # Read from the InterBankMove row: each side has approved once its head office's approver is set.
    @staticmethod
    def resolve_source_approved(move: InterBankMove) -> bool:
        return move.source_approved_by_id is not None

    @staticmethod
    def resolve_target_approved(move: InterBankMove) -> bool:
        return move.target_approved_by_id is not None


class MoveRejectIn(Schema):
    reason: Reason


class PoolOut(Schema):
    head_office_id: int
    balance_minutes: int
    items: list[StatementEntry]
    next_cursor: str | None
