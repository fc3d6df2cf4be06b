from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema, Status
from pydantic import BeforeValidator, Field, StringConstraints, WithJsonSchema

from timebank.api.types import Id, IdempotencyKey, Memo, NoNul, Page, PathId, Reason, paginate
from timebank.funds import actions
from timebank.funds.access import access_fund_entry, access_fund_org, get_org, visible_fund_entries
from timebank.funds.disclosure import Period, as_text, check_period, disclose
from timebank.funds.models import FundEntry
from timebank.funds.money import parse_money, yuan
from timebank.goods.access import access_goods
from timebank.lib.errors import Forbidden, Invalid
from timebank.orders.access import STAFF, access_order
from timebank.orders.api import OrderOut, order_out
from timebank.orgs.access import has_role
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES

router = Router(tags=["funds"])

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
SourceCode = Literal["government", "society", "enterprise", "residents"]
KindCode = Literal["goods_purchase", "insurance", "training", "awards", "market_services", "operations"]
FundCode = Literal["general", "emergency"]
DateFrom = Annotated[dt.date | None, Query(alias="from")]
DateTo = Annotated[dt.date | None, Query(alias="to")]


class FundEntryIn(Schema):
    org_id: Id
    direction: Literal["income", "expense"]
    source: SourceCode | None = None
    kind: KindCode | None = None
    fund: FundCode = "general"
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


def entry_out(e: FundEntry) -> dict[str, Any]:
    reversal = getattr(e, "reversed_by", None)
    return {
        "id": e.pk,
        "org_id": e.org_id,
        "org_name": e.org.name,
        "direction": e.direction,
        "source": e.source,
        "kind": e.kind,
        "category_label": str(e.get_source_display() if e.source else e.get_kind_display()),
        "fund": e.fund,
        "amount": yuan(e.amount),
        "occurred_on": e.occurred_on,
        "description": e.description,
        "donor_name": e.donor_name,
        "provider": e.provider,
        "in_kind": e.in_kind,
        "item_description": e.item_description,
        "goods_id": e.goods_id,
        "order_id": e.order_id,
        "reverses_id": e.reverses_id,
        "reversed_by_id": reversal.pk if reversal is not None else None,
        "reason": e.reason,
        "created_by": (e.created_by.display_name or e.created_by.username) if e.created_by else None,
        "created_at": e.created_at,
    }


def _entry_by_pk(pk: int) -> dict[str, Any]:
    return entry_out(FundEntry.objects.select_related("org", "created_by", "reversed_by").get(pk=pk))


def _answer(response: HttpResponse, entry: FundEntry, replayed: bool) -> Status[dict[str, Any]]:
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, _entry_by_pk(entry.pk))


@router.get("/funds/entries", response=Page[FundEntryOut])
def list_entries(
    request: HttpRequest,
    org_id: PathId | None = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    direction: Literal["income", "expense"] | None = None,
    fund: FundCode | None = None,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """The fund book, newest first: entries of the caller's subtree (or of `org_id`'s subtree)."""
    user = caller(request)
    period = check_period(date_from, date_to)
    qs = visible_fund_entries(user).select_related("org", "created_by", "reversed_by")
    if org_id:
        qs = qs.filter(org__path__startswith=access_fund_org(user, org_id).path)
    if period.start:
        qs = qs.filter(occurred_on__gte=period.start)
    if period.end:
        qs = qs.filter(occurred_on__lte=period.end)
    if direction:
        qs = qs.filter(direction=direction)
    if fund:
        qs = qs.filter(fund=fund)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": [entry_out(e) for e in rows], "next_cursor": nxt}


@router.post("/funds/entries", response={201: FundEntryOut})
def create_entry(request: HttpRequest, response: HttpResponse, payload: FundEntryIn) -> Status[dict[str, Any]]:
    """Book an income (by `source`) or an expense (by `kind`) for an org. Staff of the org's subtree.
    Amounts are yuan as a string with at most two decimals. An `idempotency_key` makes a double submit
    answer with the first entry."""
    user = caller(request)
    org = access_fund_org(user, payload.org_id)
    entry, replayed = actions.do_record_entry(
        user,
        org,
        actions.EntryInput(
            direction=payload.direction,
            amount=payload.amount,
            occurred_on=payload.occurred_on,
            source=payload.source or "",
            kind=payload.kind or "",
            fund=payload.fund,
            description=payload.description,
            donor_name=payload.donor_name,
            provider=payload.provider,
        ),
        idempotency_key=payload.idempotency_key,
    )
    return _answer(response, entry, replayed)


@router.get("/funds/entries/{entry_id}", response=FundEntryOut)
def get_entry(request: HttpRequest, entry_id: PathId) -> dict[str, Any]:
    return _entry_by_pk(access_fund_entry(caller(request), entry_id).pk)


class ReverseIn(Schema):
    reason: Reason


@router.post("/funds/entries/{entry_id}/reverse", response={201: FundEntryOut})
def reverse_entry(request: HttpRequest, entry_id: PathId, payload: ReverseIn) -> Status[dict[str, Any]]:
    """Correct a mistake with a reversing entry (the amount negated). Entries are never edited or deleted."""
    user = caller(request)
    entry = access_fund_entry(user, entry_id)
    reversal = actions.do_reverse_entry(user, entry, reason=payload.reason)
    return Status(201, _entry_by_pk(reversal.pk))


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
    fund: FundCode = "general"
    stock: StockIn | None = None
    idempotency_key: IdempotencyKey | None = None


@router.post("/funds/in-kind", response={201: FundEntryOut})
def record_in_kind(request: HttpRequest, response: HttpResponse, payload: InKindIn) -> Status[dict[str, Any]]:
    """A donation in kind (goods from a company or residents), booked at its estimated value. With `stock`,
    the goods go on an outlet's shelf in the same transaction: `goods_id` restocks existing goods, or
    `name` and `price_minutes` create new ones."""
    user = caller(request)
    org = access_fund_org(user, payload.org_id)
    stock = None
    if payload.stock is not None:
        s = payload.stock
        outlet = get_org(s.outlet_id)
        if not has_role(user, MANAGING_ROLES, outlet):
            raise Forbidden(_("只有网点所在社区及上级的工作人员可以管理物品。"), code="outside_subtree")
        goods = access_goods(user, s.goods_id, manage=True) if s.goods_id else None
        if goods is None and (not s.name.strip() or s.price_minutes is None):
            raise Invalid(_("新物品需要填写名称和价格（分钟）。"), fields={"stock.name": "required"})
        stock = actions.StockInput(
            outlet=outlet, quantity=s.quantity, goods=goods, name=s.name, price_minutes=s.price_minutes or 0
        )
    entry, replayed = actions.do_record_in_kind(
        user,
        org,
        source=payload.source,
        estimated_value=payload.estimated_value,
        occurred_on=payload.occurred_on,
        item_description=payload.item_description,
        donor_name=payload.donor_name,
        description=payload.description,
        fund=payload.fund,
        stock=stock,
        idempotency_key=payload.idempotency_key,
    )
    return _answer(response, entry, replayed)


class BuyServiceIn(Schema):
    amount: Money
    provider: Annotated[str, StringConstraints(strict=True, min_length=1, max_length=100), NoNul]
    note: Memo = ""
    unfillable: bool = False
    org_id: Id | None = None
    occurred_on: dt.date | None = None


class BoughtServiceOut(OrderOut):
    fund_entry: FundEntryOut


@router.post("/orders/{order_id}/buy-service", response=BoughtServiceOut, tags=["funds", "orders"])
def buy_service(request: HttpRequest, order_id: PathId, payload: BuyServiceIn) -> dict[str, Any]:
    """专项基金: an order paid from stored time that volunteers could not take within the rules'
    `dispatch_within_hours` (or that staff judge unfillable: `unfillable` with a `note`) is bought from a
    paid provider. The order is confirmed, the recipient's minutes are redeemed as for any service, and
    the money is booked to the emergency fund of `org_id` (default: the order's org; it may be an org
    above it). Staff of the order's subtree."""
    user = caller(request)
    order, roles = access_order(user, order_id)
    if STAFF not in roles:
        raise Forbidden(_("只有订单所在社区及上级的工作人员可以动用专项基金。"), code="not_allowed")
    fund_org = access_fund_org(user, payload.org_id) if payload.org_id else order.org
    order, entry = actions.do_buy_market_service(
        user,
        order,
        fund_org=fund_org,
        provider=payload.provider,
        amount=payload.amount,
        note=payload.note,
        unfillable=payload.unfillable,
        occurred_on=payload.occurred_on,
    )
    fresh, roles = access_order(user, order.pk)
    return {**order_out(fresh, roles), "fund_entry": _entry_by_pk(entry.pk)}


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


def _report(org_id: int, date_from: dt.date | None, date_to: dt.date | None) -> tuple[Period, dict[str, Any]]:
    period = check_period(date_from, date_to)
    return period, as_text(disclose(get_org(org_id), period))


@router.get("/funds/summary", response=DisclosureOut, by_alias=True)
def fund_summary(
    request: HttpRequest, org_id: PathId, date_from: DateFrom = None, date_to: DateTo = None
) -> dict[str, Any]:
    """Rolled-up totals of an org's subtree for staff and admins above it (the same figures as the
    public disclosure)."""
    user = caller(request)
    access_fund_org(user, org_id)
    return _report(org_id, date_from, date_to)[1]


@router.get("/disclosure", response=DisclosureOut, auth=None, by_alias=True, tags=["funds", "public"])
def disclosure(
    request: HttpRequest, org_id: PathId, date_from: DateFrom = None, date_to: DateTo = None
) -> dict[str, Any]:
    """公示, no login: an org's income by source, expenses by kind, balances per fund and service totals for
    its subtree in the period (dates inclusive; neither means all time). Totals only: no person's data;
    donating enterprises are named."""
    return _report(org_id, date_from, date_to)[1]
