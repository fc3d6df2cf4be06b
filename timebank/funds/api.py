from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, paginate
from timebank.funds import actions
from timebank.funds.access import access_fund_entry, access_fund_org, access_stock, get_org, visible_fund_entries
from timebank.funds.disclosure import Period, as_text, check_period, disclose
from timebank.funds.models import Direction, FundEntry
from timebank.funds.schemas import (
    BoughtServiceOut,
    BuyServiceIn,
    DisclosureOut,
    FundCode,
    FundEntryIn,
    FundEntryOut,
    InKindIn,
    ReverseIn,
)
from timebank.lib.errors import Forbidden
from timebank.orders.access import access_order
from timebank.orders.api import order_out
from timebank.orders.rules import TRANSITIONS
from timebank.orgs.api import caller

router = Router(tags=["funds"])

DateFrom = Annotated[dt.date | None, Query(alias="from")]
DateTo = Annotated[dt.date | None, Query(alias="to")]


def _entry_by_pk(pk: int) -> FundEntry:
    return FundEntry.objects.select_related("org", "created_by", "reversed_by").get(pk=pk)


def _answer(response: HttpResponse, entry: FundEntry, replayed: bool) -> Status[FundEntry]:
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, _entry_by_pk(entry.pk))


@router.get("/funds/entries", response=Page[FundEntryOut])
def list_entries(
    request: HttpRequest,
    org_id: PathId | None = None,
    date_from: DateFrom = None,
    date_to: DateTo = None,
    direction: Direction | None = None,
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
    return {"items": rows, "next_cursor": nxt}


@router.post("/funds/entries", response={201: FundEntryOut})
def create_entry(request: HttpRequest, response: HttpResponse, payload: FundEntryIn) -> Status[FundEntry]:
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
def get_entry(request: HttpRequest, entry_id: PathId) -> FundEntry:
    return _entry_by_pk(access_fund_entry(caller(request), entry_id).pk)


@router.post("/funds/entries/{entry_id}/reverse", response={201: FundEntryOut})
def reverse_entry(request: HttpRequest, entry_id: PathId, payload: ReverseIn) -> Status[FundEntry]:
    """Correct a mistake with a reversing entry (the amount negated). Entries are never edited or deleted."""
    user = caller(request)
    entry = access_fund_entry(user, entry_id)
    reversal = actions.do_reverse_entry(user, entry, reason=payload.reason)
    return Status(201, _entry_by_pk(reversal.pk))


@router.post("/funds/in-kind", response={201: FundEntryOut})
def record_in_kind(request: HttpRequest, response: HttpResponse, payload: InKindIn) -> Status[FundEntry]:
    """A donation in kind (goods from a company or residents), booked at its estimated value. With `stock`,
    the goods go on an outlet's shelf in the same transaction: `goods_id` restocks existing goods, or
    `name` and `price_minutes` create new ones."""
    user = caller(request)
    org = access_fund_org(user, payload.org_id)
    stock = None
    if payload.stock is not None:
        s = payload.stock
        stock = access_stock(
            user,
            outlet_id=s.outlet_id,
            quantity=s.quantity,
            goods_id=s.goods_id,
            name=s.name,
            price_minutes=s.price_minutes,
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


@router.post("/orders/{order_id}/buy-service", response=BoughtServiceOut, tags=["funds", "orders"])
def buy_service(request: HttpRequest, order_id: PathId, payload: BuyServiceIn) -> dict[str, Any]:
    """专项基金: an order paid from stored time that volunteers could not take within the rules'
    `dispatch_within_hours` (or that staff judge unfillable: `unfillable` with a `note`) is bought from a
    paid provider. The order is confirmed, the recipient's minutes are redeemed as for any service, and
    the money is booked to the emergency fund of `org_id` (default: the order's org; it may be an org
    above it). Staff of the order's subtree."""
    user = caller(request)
    order, roles = access_order(user, order_id)
    if not roles & TRANSITIONS["buy-service"].roles:  # staff of the order's subtree (orders.rules)
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
