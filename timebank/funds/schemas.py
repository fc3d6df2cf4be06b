"""The schemas of the funds API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated

from ninja import Schema
from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema

from timebank.api.types import Id, IdempotencyKey, Memo, NoNul, Reason
from timebank.funds.models import Direction, ExpenseKind, Fund, Source
from timebank.funds.money import parse_money, yuan
from timebank.orders.schemas import OrderOut

if TYPE_CHECKING:
    from timebank.funds.models import FundEntry

# Yuan as a decimal string ("12.30") or an integer; never a float, which cannot hold cents exactly.
Money = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "pattern": r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,2})?$"}, {"type": "integer"}],
            "description": "元，最多两位小数，大于 0、不超过 100000000 / yuan, at most two decimal places",
            "examples": ["1280.50"],
        }
    ),
]
OrgText = Annotated[str, StringConstraints(strict=True, max_length=100), NoNul]
ItemText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200), NoNul]
SourceCode = Source
KindCode = ExpenseKind
FundCode = Fund


class FundEntryIn(Schema):
    org_id: Id
    direction: Direction
    source: SourceCode | None = None
    kind: KindCode | None = None
    fund: FundCode = Fund.GENERAL
    amount: Money
    occurred_on: dt.date
    description: Memo = ""
    donor_name: OrgText = ""
    provider: OrgText = ""
    idempotency_key: IdempotencyKey | None = None


class FundEntryOut(Schema):
    id: int
    org_id: int
    org_name: str
    direction: str
    source: str
    kind: str
    category_label: str
    fund: str
    amount: str
    occurred_on: dt.date
    description: str
    donor_name: str
    provider: str
    in_kind: bool
    item_description: str
    goods_id: int | None
    order_id: int | None
    reverses_id: int | None
    reversed_by_id: int | None
    reason: str
    created_by: str | None
    created_at: dt.datetime

    # Read from the FundEntry row (with its org, created_by and reversed_by). Amounts in yuan as a string.
    @staticmethod
    def resolve_org_name(entry: FundEntry) -> str:
        return entry.org.name

    @staticmethod
    def resolve_category_label(entry: FundEntry) -> str:
        return str(entry.get_source_display() if entry.source else entry.get_kind_display())

    @staticmethod
    def resolve_amount(entry: FundEntry) -> str:
        return yuan(entry.amount)

    @staticmethod
    def resolve_reversed_by_id(entry: FundEntry) -> int | None:
        reversal = getattr(entry, "reversed_by", None)
        return reversal.pk if reversal is not None else None

    @staticmethod
    def resolve_created_by(entry: FundEntry) -> str | None:
        user = entry.created_by
        return (user.display_name or user.username) if user is not None else None


class ReverseIn(Schema):
    reason: Reason


class StockIn(Schema):
    outlet_id: Id
    quantity: Annotated[int, Field(strict=True, ge=1, le=1_000_000)]
    goods_id: Id | None = None
    name: OrgText = ""
    price_minutes: Annotated[int, Field(strict=True, ge=1, le=100_000)] | None = None


class InKindIn(Schema):
    org_id: Id
    source: SourceCode
    donor_name: OrgText = ""
    estimated_value: Money
    occurred_on: dt.date
    item_description: ItemText
    description: Memo = ""
    fund: FundCode = Fund.GENERAL
    stock: StockIn | None = None
    idempotency_key: IdempotencyKey | None = None


class BuyServiceIn(Schema):
    amount: Money
    provider: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100), NoNul]
    note: Memo = ""
    unfillable: bool = False
    org_id: Id | None = None
    occurred_on: dt.date | None = None


class SourceTotal(Schema):
    source: str
    label: str
    cash: str
    in_kind: str
    total: str


class IncomeOut(Schema):
    by_source: list[SourceTotal]
    cash: str
    in_kind: str
    total: str


class KindTotal(Schema):
    kind: str
    label: str
    amount: str


class ExpenseOut(Schema):
    by_kind: list[KindTotal]
    total: str


class FundTotal(Schema):
    fund: str
    label: str
    income: str
    in_kind: str
    expense: str
    net: str


class DonorTotal(Schema):
    name: str
    amount: str


class ChildTotal(Schema):
    org_id: int
    name: str
    kind: str
    income: str
    expense: str
    net: str


class ServiceTotals(Schema):
    orders_completed: int
    orders_bought_by_fund: int
    order_minutes: int
    service_records: int
    service_record_minutes: int
    service_minutes: int
    credited_minutes: int


class BankRef(Schema):
    id: int
    name: str


class OrgRef(BankRef):
    kind: str
    kind_label: str


class DisclosureOut(Schema):
    org: OrgRef
    bank: BankRef
    from_: dt.date | None = Field(None, alias="from")
    to: dt.date | None
    currency: str
    entries: int
    income: IncomeOut
    expense: ExpenseOut
    opening_balance: str
    net: str
    closing_balance: str
    funds: list[FundTotal]
    donors: list[DonorTotal]
    children: list[ChildTotal]
    services: ServiceTotals
    generated_at: dt.datetime


class BoughtServiceOut(OrderOut):
    fund_entry: FundEntryOut
