"""Two fund pages for staff: a donation in kind booked at its estimated value (`POST /api/v1/funds/in-kind`,
from the fund book), and buying an unfilled order's service from the emergency fund (`POST
/api/v1/orders/{id}/buy-service`, from the staff's order page). Each asks its endpoint's access checks and calls
its action."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from timebank.funds.access import access_fund_org, access_stock
from timebank.funds.actions import StockInput, do_buy_market_service, do_record_in_kind
from timebank.funds.forms import BuyServiceForm, InKindForm, StockForm
from timebank.lib import clock
from timebank.lib.errors import ApiError, Forbidden, NotFound
from timebank.ops.idempotency import submit_once
from timebank.orders.access import access_order
from timebank.orders.models import Order
from timebank.orders.rules import TRANSITIONS
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, Org, OrgKind, User
from timebank.orgs.scope import user_of
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, explain, page


def _outlets(user: User, org: Org) -> list[tuple[int, str]]:
    """Where donated goods may go: the outlets and communities of the org's subtree the caller manages."""
    places = Org.objects.filter(
        head_office_id=org.head_office_id, path__startswith=org.path, kind__in=[OrgKind.OUTLET, OrgKind.SUB_BRANCH]
    )
    return [(o.pk, o.name) for o in places.order_by("path")[:300] if has_role(user, MANAGING_ROLES, o)]


# An action's refusal about the `stock` part names it "stock.<field>": next to that field of the stock form.
STOCK_FIELDS = {f"stock.{name}": name for name in ("outlet_id", "quantity", "goods_id", "name", "price_minutes")}


@page("workbench")
def in_kind(request: HttpRequest, org_id: int) -> HttpResponse:
    """登记捐赠物品: staff, branch and head-office admins of the org (access_fund_org); with `stock`, the goods go on
    an outlet's shelf in the same step (access_stock, as the endpoint). The action keeps the form's key: a double
    submit books it once."""
    user = user_of(request)
    org = access_fund_org(user, org_id)
    initial = {"idempotency_key": new_idempotency_key(), "occurred_on": clock.localdate()}
    form = InKindForm(request.POST or None, initial=initial)
    stock_form = StockForm(request.POST or None, outlets=_outlets(user, org))
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid() and stock_form.is_valid():
            data, shelf = form.cleaned_data, stock_form.cleaned_data
            try:
                stock = None
                if shelf["outlet_id"] is not None:
                    stock = _stock(user, stock_form)
                if not stock_form.errors:
                    entry, replayed = do_record_in_kind(
                        user,
                        org,
                        source=data["source"],
                        estimated_value=data["estimated_value"],
                        occurred_on=data["occurred_on"],
                        item_description=data["item_description"],
                        donor_name=data["donor_name"],
                        description=data["description"],
                        fund=data["fund"],
                        stock=stock,
                        idempotency_key=data["idempotency_key"],
                    )
            except ApiError as exc:
                if any(name in STOCK_FIELDS for name in exc.fields):
                    add_form_error(stock_form, exc, STOCK_FIELDS)
                else:
                    add_form_error(form, exc, {"amount": "estimated_value"})
                status = exc.status
            if not form.errors and not stock_form.errors:
                if replayed:
                    messages.info(request, _("这一笔刚才已经记过了，没有重复记账。"))
                else:
                    messages.success(
                        request,
                        _("已登记捐赠物品：%(item)s，折价 %(amount)s 元。")
                        % {"item": entry.item_description, "amount": entry.amount},
                    )
                return redirect("web:funds", org_id=org.pk)
    context = {"org": org, "form": form, "stock_form": stock_form}
    return render(request, "funds/in_kind.html", context, status=status)


def _stock(user: User, stock_form: StockForm) -> StockInput | None:
    """The shelf, as the endpoint checks it; a refusal of the outlet or the goods goes next to that field."""
    shelf = stock_form.cleaned_data
    try:
        return access_stock(
            user,
            outlet_id=shelf["outlet_id"],
            quantity=shelf["quantity"],
            goods_id=shelf["goods_id"],
            name=shelf["name"],
            price_minutes=shelf["price_minutes"],
        )
    except (Forbidden, NotFound) as exc:
        # The outlets offered are those the caller manages: a refusal that is not "no such org" is the goods'.
        field = "outlet_id" if exc.code == "org_not_found" or not shelf["goods_id"] else "goods_id"
        stock_form.add_error(field, explain(exc))
        return None


def _staff_order(user: User, order_id: int) -> Order:
    """As the endpoint: the order, for staff of its subtree (the transition table's roles for buy-service)."""
    order, roles = access_order(user, order_id)
    if not roles & TRANSITIONS["buy-service"].roles:
        raise Forbidden(_("只有订单所在社区及上级的工作人员可以动用专项基金。"), code="not_allowed")
    return order


def _paying_orgs(user: User, order: Order) -> list[tuple[int, str]]:
    """The order's org and those above it whose fund the caller may use (access_fund_org), nearest first."""
    chain: list[Org] = []
    org: Org | None = order.org
    while org is not None:
        chain.append(org)
        org = org.parent
    choices = []
    for candidate in chain:
        try:
            access_fund_org(user, candidate.pk)
        except ApiError:
            continue
        choices.append((candidate.pk, candidate.name))
    return choices


@page("workbench")
def buy_service(request: HttpRequest, order_id: int) -> HttpResponse:
    """由专项基金购买服务: an order paid from stored time that no volunteer could take is bought from a paid provider;
    the recipient's minutes are redeemed and the money is booked to the emergency fund."""
    user = user_of(request)
    order = _staff_order(user, order_id)
    orgs = _paying_orgs(user, order)
    initial = {"idempotency_key": new_idempotency_key(), "occurred_on": clock.localdate(), "org_id": order.org_id}
    form = BuyServiceForm(request.POST or None, orgs=orgs, initial=initial)
    if request.method != "POST":
        return render(request, "funds/buy_service.html", {"order": order, "form": form})
    return submit_once(
        request,
        form,
        "funds.buy_service",
        lambda data: do_buy_market_service(
            user,
            order,
            fund_org=access_fund_org(user, data["org_id"]),
            provider=data["provider"],
            amount=data["amount"],
            note=data["note"],
            unfillable=data["unfillable"],
            occurred_on=data["occurred_on"],
        ),
        success=_("已由专项基金购买服务，订单已完成，老人的时间已按服务扣除。"),
        done=lambda _kept: redirect("web:staff_order", order_id=order.pk),
        again=lambda status: render(request, "funds/buy_service.html", {"order": order, "form": form}, status=status),
        aliases={"available": "amount", "dispatch_within_hours": "unfillable"},
        refusal_status=True,
    )
