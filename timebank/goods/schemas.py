"""The schemas of the goods API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from ninja import Schema
from pydantic import Field

from timebank.api.types import Id, IdempotencyKey, Memo, OrgName
from timebank.goods import actions
from timebank.ledger.schemas import TransactionOut

Count = Annotated[int, Field(strict=True, ge=0, le=actions.MAX_STOCK)]


class GoodsIn(Schema):
    outlet_id: Id
    name: OrgName
    price_minutes: Annotated[int, Field(strict=True, ge=1, le=actions.MAX_PRICE)]
    stock: Count = 0


class GoodsOut(Schema):
    id: int
    outlet_id: int
    name: str
    price_minutes: int
    stock: int
    active: bool


class RestockIn(Schema):
    quantity: Annotated[int, Field(strict=True, ge=1, le=actions.MAX_STOCK)]
    note: Memo = ""


class CountIn(Schema):
    counted: Count
    note: Memo = ""


# As read out or printed: 8 digits, maybe grouped "1234 5678".
MemberCode = Annotated[str, Field(max_length=20, pattern=r"^[0-9 -]*$")]


class RedemptionIn(Schema):
    member_id: Id
    goods_id: Id
    quantity: Annotated[int, Field(strict=True, ge=1, le=1000)] = 1
    outlet_id: Id
    idempotency_key: IdempotencyKey
    member_code: MemberCode | None = Field(
        None, description="The member's card code: needed when staff redeem for a member outside their subtree."
    )


class CardCodeOut(Schema):
    code: str


class CardUnlockOut(Schema):
    unlocked: bool
    cleared: int


class RedemptionOut(TransactionOut):
    redemption_id: int
    goods_id: int
    quantity: int
    voucher_code: str
    voucher_status: str
    handed_over_at: dt.datetime | None
