"""The 12349 hotline console: one screen to find a caller, see their situation, order and dispatch a service
for them and log the call. The two lists of calls to make are in views_visits.py, the forms in forms.py."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.catalogue.models import ServiceItem
from timebank.hotline.access import (
    access_member_at_desk,
    desk_scope,
    visible_calls,
    visible_welfare_checks,
)
from timebank.hotline.actions import (
    MAX_BACKDATE,
    do_log_call,
)
from timebank.hotline.forms import (
    CallForm,
    ConsoleDispatchForm,
    HotlineOrderForm,
    UnknownCallForm,
    default_start,
)
from timebank.hotline.models import CallKind, CallLog
from timebank.hotline.queries import due_return_visits, due_welfare_checks, find_callers
from timebank.hotline.views_calls import may_change
from timebank.ledger.models import AccountKind
from timebank.lib import clock
from timebank.lib.errors import ApiError, NotFound
from timebank.lib.masking import mask_phone
from timebank.members.access import can_see_personal_data
from timebank.members.actions import contact_fields, do_view_personal_data
from timebank.members.models import Gender, Member, RecipientCategory, RelativeLink
from timebank.needs.access import access_need
from timebank.needs.actions import do_link_order
from timebank.needs.models import OPEN_STATUSES, Need
from timebank.needs.priority import priority
from timebank.ops.idempotency import form_once
from timebank.orders import actions as order_actions
from timebank.orders.access import access_order
from timebank.orders.matching import Candidate, rank_candidates
from timebank.orders.models import Order, Payer
from timebank.orders.rules import allows
from timebank.orders.views_member import balances, service_items
from timebank.orgs.access import access_org, staff_scope, visible_orgs
from timebank.orgs.models import OrgKind, User
from timebank.orgs.scope import user_of
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, is_htmx, page

CANDIDATES_SHOWN = 5
RECENT_ORDERS = 5
RECENT_CALLS = 5
QUEUE_PAGE = 30


# ---- reading the caller's situation ---------------------------------------------------------------------


def _since(raw: Any) -> int:
    """When this call began (seconds since the epoch): carried from the first screen, else now."""
    now = clock.now()
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return int(now.timestamp())
    earliest = (now - MAX_BACKDATE + dt.timedelta(minutes=1)).timestamp()
    return value if earliest <= value <= now.timestamp() else int(now.timestamp())


def category_words(member: Member) -> str:
    """空巢、独居 — the recipient's categories in words, joined the way the language lists things."""
    cats = member.recipient_categories if isinstance(member.recipient_categories, list) else []
    return str(_("、")).join(str(RecipientCategory(c).label) for c in cats if c in RecipientCategory.values)


def _order_label(order: Order) -> str:
    return str(
        _("#%(id)s %(item)s（%(state)s）")
        % {"id": order.pk, "item": order.service_item.name, "state": order.get_state_display()}
    )


def _need_label(need: Need) -> str:
    notes = need.notes[:30] + ("…" if len(need.notes) > 30 else "")
    return str(
        _("需求 #%(id)s %(level)s %(notes)s") % {"id": need.pk, "level": need.get_level_display(), "notes": notes}
    ).strip()


def open_needs(member: Member) -> list[Need]:
    return list(
        Need.objects.filter(recipient=member, status__in=OPEN_STATUSES).prefetch_related("items").order_by("-pk")[:10]
    )


def recent_orders(member: Member) -> list[Order]:
    return list(
        Order.objects.filter(recipient=member)
        .select_related("service_item", "volunteer")
        .order_by("-created_at", "-pk")[:RECENT_ORDERS]
    )


def situation(user: User, member: Member) -> dict[str, Any]:
    """What the operator sees while on the phone: who, how they are, what is open, whom to call back."""
    today = clock.localdate()
    cats = member.recipient_categories if isinstance(member.recipient_categories, list) else []
    prio = priority(member.birth_date, cats, today)
    personal = can_see_personal_data(user, member)
    parts = balances(member)
    needs = open_needs(member)
    orders = recent_orders(member)
    relatives = []
    # The one caller's screen shows phones and the address in full to those allowed; each showing is audited.
    shown: list[tuple[Member, list[str]]] = []
    if personal:
        shown.append((member, contact_fields(member)))
    for link in RelativeLink.objects.filter(member=member).select_related("relative", "relative__home_org"):
        other = link.relative
        full = can_see_personal_data(user, other)
        if full and other.phone:
            shown.append((other, ["phone"]))
        phone = other.phone if full else mask_phone(other.phone)
        relatives.append({"name": other.name, "relation": link.relation, "phone": phone})
    do_view_personal_data(user, shown, via=f"caller:{member.pk}")
    return {
        "member": member,
        "age": prio.age,
        "gender": Gender(member.gender).label if member.gender in Gender.values else "",
        "categories": category_words(member),
        "priority": prio,
        "phone": member.phone if personal else mask_phone(member.phone),
        "address": member.address if personal else "",
        "needs": needs,
        "orders": orders,
        "spendable": parts[AccountKind.EARNED] + parts[AccountKind.RESERVE],
        "goods": parts[AccountKind.GOODS],
        "last_check": visible_welfare_checks(user).filter(member=member).order_by("-checked_at", "-pk").first(),
        "relatives": relatives,
        "calls": recent_calls(user, member),
    }


def recent_calls(user: User, member: Member) -> list[CallLog]:
    """The caller's last calls; those the operator may correct (views_calls.may_change) link to their page."""
    calls = list(
        visible_calls(user)
        .filter(member=member)
        .select_related("operator", "org")
        .order_by("-started_at", "-pk")[:RECENT_CALLS]
    )
    for call in calls:
        call.changeable = may_change(user, call)  # type: ignore[attr-defined]
    return calls


def _produced(user: User, member: Member, raw: Any) -> Order | None:
    """The order this call produced (`?order=`), if it is this caller's and the desk may dispatch it."""
    try:
        order_id = int(raw)
    except (TypeError, ValueError):
        return None
    if not 0 < order_id < 2**63:
        return None
    try:
        order, _roles = access_order(user, order_id, "dispatch")
    except ApiError:
        return None
    return order if order.recipient_id == member.pk else None


def candidates(order: Order) -> list[Candidate]:
    return rank_candidates(order, limit=CANDIDATES_SHOWN) if allows("dispatch", order.state) else []


def item_choices(member: Member) -> list[tuple[int, str]]:
    return [
        (i.pk, str(_("%(name)s（%(tier)s）") % {"name": i.name, "tier": i.get_tier_display()}))
        for i in service_items(member.bank_id, member.home_org_id)
    ]


def _forms_for(member: Member, situation_: dict[str, Any], produced: Order | None, since: int) -> dict[str, Any]:
    items = item_choices(member)
    needs = [(n.pk, _need_label(n)) for n in situation_["needs"]]
    orders = list(situation_["orders"])
    if produced is not None and produced.pk not in {o.pk for o in orders}:
        orders.insert(0, produced)
    hour_cost = 60  # the ordinary multiplier; the action checks the real price
    payer = Payer.RECIPIENT if situation_["spendable"] >= hour_cost else Payer.SUBSIDY
    linked_need = Need.objects.filter(orders=produced).values_list("pk", flat=True).first() if produced else None
    return {
        "order_form": HotlineOrderForm(
            items=items,
            needs=needs,
            prefix="order",
            initial={"start": default_start(), "payer": payer, "planned_minutes": 60},
        ),
        "call_form": CallForm(
            orders=[(o.pk, _order_label(o)) for o in orders],
            needs=needs,
            prefix="call",
            initial={
                "started_at": since,
                "kind": CallKind.ORDER if produced is not None else CallKind.OTHER,
                "order": produced.pk if produced is not None else None,
                "need": linked_need,
            },
        ),
    }


def _caller_page(
    request: HttpRequest,
    member: Member,
    *,
    produced: Order | None = None,
    since: int | None = None,
    status: int = 200,
    **bound: Any,
) -> HttpResponse:
    user = user_of(request)
    since = since if since is not None else _since(request.GET.get("since"))
    facts = situation(user, member)
    context: dict[str, Any] = {**facts, "since": since, "produced": produced}
    context.update(_forms_for(member, facts, produced, since))
    if produced is not None and allows("dispatch", produced.state):
        shortlist = candidates(produced)
        context["candidates"] = shortlist
        context["dispatch_form"] = bound.pop("dispatch_form", None) or ConsoleDispatchForm(
            volunteers=[(c.volunteer_id, c.name) for c in shortlist],
            initial={
                "volunteer": shortlist[0].volunteer_id if shortlist else None,
                "idempotency_key": new_idempotency_key(),
            },
        )
    context.update(bound)
    context["search"] = ""
    return render(request, "hotline/caller.html", context, status=status)


def _caller_url(member: Member, order: Order | None = None, since: int | None = None, anchor: str = "") -> str:
    url = reverse("web:hotline_caller", args=[member.pk])
    params = []
    if order is not None:
        params.append(f"order={order.pk}")
    if since is not None:
        params.append(f"since={since}")
    return url + ("?" + "&".join(params) if params else "") + (f"#{anchor}" if anchor else "")


# ---- the console ----------------------------------------------------------------------------------------


def _search_text(request: HttpRequest) -> str:
    return request.GET.get("q", "").replace("\x00", "").strip()[:50]


def _results(request: HttpRequest, text: str) -> list[dict[str, Any]]:
    if not text:
        return []
    today = clock.localdate()
    rows = []
    for m in find_callers(user_of(request), text):
        cats = m.recipient_categories if isinstance(m.recipient_categories, list) else []
        rows.append(
            {
                "member": m,
                "phone": mask_phone(m.phone),
                "age": priority(m.birth_date, [], today).age,
                "categories": [RecipientCategory(c).label for c in cats if c in RecipientCategory.values],
            }
        )
    return rows


def unknown_call_orgs(user: User) -> list[tuple[int, str]]:
    """Where a call from an unknown caller may be put: the operator's own org first, then its communities."""
    own = staff_scope(user)
    orgs = visible_orgs(user).filter(kind__in=[OrgKind.HEAD_OFFICE, OrgKind.BRANCH, OrgKind.SUB_BRANCH])
    choices = [(own.pk, own.name)] if own is not None else []
    for org in orgs.order_by("path")[:300]:
        if own is None or org.pk != own.pk:
            choices.append((org.pk, org.name))
    return choices


def _console(request: HttpRequest, *, unknown_form: UnknownCallForm | None = None, status: int = 200) -> HttpResponse:
    user = user_of(request)
    text = _search_text(request)
    return render(
        request,
        "hotline/console.html",
        {
            "search": text,
            "results": _results(request, text),
            "unknown_form": unknown_form or UnknownCallForm(orgs=unknown_call_orgs(user), prefix="unknown"),
            "visits_due": due_return_visits(user).count(),
            "checks_due": len(due_welfare_checks(user)),
        },
        status=status,
    )


@page("workbench")
def console(request: HttpRequest) -> HttpResponse:
    """Find the caller: the search box has the focus, the results come as one types."""
    desk_scope(user_of(request))
    return _console(request)


@page("workbench")
def search(request: HttpRequest) -> HttpResponse:
    """The results alone, for htmx as the operator types; without htmx, the whole console."""
    desk_scope(user_of(request))
    text = _search_text(request)
    if not is_htmx(request):
        return redirect(f"{reverse('web:hotline')}?{urlencode({'q': text})}" if text else reverse("web:hotline"))
    return render(request, "hotline/_results.html", {"search": text, "results": _results(request, text)})


@require_POST
@page("workbench")
def log_unknown_call(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    desk_scope(user)
    form = UnknownCallForm(request.POST, orgs=unknown_call_orgs(user), prefix="unknown")
    if form.is_valid():
        data = form.cleaned_data
        try:
            with form_once(request, data["idempotency_key"], "hotline.log_unknown_call") as once:
                if once.replay is not None:
                    messages.info(request, _("这通电话刚才已经记录了，没有重复记录。"))
                    return redirect("web:hotline")
                org = access_org(user, data["org"])
                call = do_log_call(
                    user,
                    org=org,
                    kind=data["kind"],
                    summary=data["summary"],
                    started_at=clock.now(),
                    phone=data["phone"],
                )
                once.keep(str(call.pk))
        except ApiError as exc:
            add_form_error(form, exc, {"org_id": "org"})
        else:
            messages.success(request, _("来电已记录（#%(id)s）。可以接下一个电话了。") % {"id": call.pk})
            return redirect("web:hotline")
    return _console(request, unknown_form=form, status=422)


@page("workbench")
def caller(request: HttpRequest, member_id: int) -> HttpResponse:
    """The one screen for a known caller: situation on one side, order → dispatch → log the call on the other."""
    user = user_of(request)
    member = access_member_at_desk(user, member_id)
    return _caller_page(request, member, produced=_produced(user, member, request.GET.get("order")))


@require_POST
@page("workbench")
def create_order(request: HttpRequest, member_id: int) -> HttpResponse:
    """点单 on the caller's behalf (channel hotline); a chosen need is linked in the same transaction."""
    user = user_of(request)
    member = access_member_at_desk(user, member_id)
    since = _since(request.POST.get("since"))
    needs = [(n.pk, _need_label(n)) for n in open_needs(member)]
    form = HotlineOrderForm(request.POST, items=item_choices(member), needs=needs, prefix="order")
    if form.is_valid():
        data = form.cleaned_data
        try:
            # The order, its need's link and the form's key: one transaction.
            with form_once(request, data["idempotency_key"], "hotline.create_order") as once:
                if once.replay is not None:
                    messages.info(request, _("这个订单刚才已经下好了，没有重复下单。"))
                    made = _produced(user, member, once.replay.body)
                    return redirect(_caller_url(member, made, since, "dispatch" if made else ""))
                item = ServiceItem.objects.get(pk=data["service_item"])  # one of the choices: the form checked it
                order = order_actions.do_create_order(
                    user,
                    recipient=member,
                    service_item=item,
                    scheduled_start=data["start"],
                    planned_minutes=data["planned_minutes"],
                    payer=data["payer"],
                    channel="hotline",
                    notes=data["notes"],
                    urgent=data["urgent"],
                )
                if data.get("need"):
                    do_link_order(user, access_need(user, data["need"]), order)
                once.keep(str(order.pk))
        except ApiError as exc:
            add_form_error(
                form,
                exc,
                {"scheduled_start": "start", "service_item_id": "service_item", "order_id": "need", "status": "need"},
            )
        else:
            messages.success(
                request,
                _("订单 #%(id)s 已下好。请在下面选一位志愿者派单。") % {"id": order.pk},
            )
            return redirect(_caller_url(member, order, since, "dispatch"))
    return _caller_page(request, member, since=since, status=422, order_form=form)


@require_POST
@page("workbench")
def dispatch(request: HttpRequest, member_id: int, order_id: int) -> HttpResponse:
    """派单 to one of the ranked candidates (the best is chosen already)."""
    user = user_of(request)
    member = access_member_at_desk(user, member_id)
    order, _roles = access_order(user, order_id, "dispatch")
    if order.recipient_id != member.pk:
        raise NotFound(_("这位来电人没有这个订单。"), code="order_not_found")
    since = _since(request.POST.get("since"))
    if not allows("dispatch", order.state):
        messages.warning(request, _("这个订单现在不能派单了，请看订单的最新状态。"))
        return redirect(_caller_url(member, order, since, "dispatch"))
    shortlist = candidates(order)
    form = ConsoleDispatchForm(request.POST, volunteers=[(c.volunteer_id, c.name) for c in shortlist])
    if form.is_valid():
        volunteer = Member.objects.get(pk=form.cleaned_data["volunteer"])
        try:
            with form_once(request, form.cleaned_data["idempotency_key"], "hotline.dispatch") as once:
                if once.replay is not None:
                    messages.info(request, _("刚才已经派过了，没有重复派单。"))
                    return redirect(_caller_url(member, order, since, "call"))
                order_actions.do_dispatch(user, order, volunteer)
                once.keep(str(order.pk))
        except ApiError as exc:
            add_form_error(form, exc, {"volunteer_id": "volunteer"})
        else:
            messages.success(
                request,
                _("已派给 %(name)s，等待志愿者接单。最后请记录这通电话。") % {"name": volunteer.name},
            )
            return redirect(_caller_url(member, order, since, "call"))
    fresh, _roles = access_order(user, order_id, "dispatch")
    return _caller_page(request, member, produced=fresh, since=since, status=422, dispatch_form=form)


@require_POST
@page("workbench")
def log_call(request: HttpRequest, member_id: int) -> HttpResponse:
    """Log the call, linked to the order or need it produced; then the console is ready for the next call."""
    user = user_of(request)
    member = access_member_at_desk(user, member_id)
    produced = _produced(user, member, request.POST.get("call-order"))
    orders = recent_orders(member)
    if produced is not None and produced.pk not in {o.pk for o in orders}:
        orders.insert(0, produced)
    form = CallForm(
        request.POST,
        orders=[(o.pk, _order_label(o)) for o in orders],
        needs=[(n.pk, _need_label(n)) for n in open_needs(member)],
        prefix="call",
    )
    since = _since(form.data.get("call-started_at"))
    if form.is_valid():
        data = form.cleaned_data
        try:
            with form_once(request, data["idempotency_key"], "hotline.log_call") as once:
                if once.replay is not None:
                    messages.info(request, _("这通电话刚才已经记录了，没有重复记录。"))
                    return redirect("web:hotline")
                order = access_order(user, data["order"], "dispatch")[0] if data.get("order") else None
                need = access_need(user, data["need"]) if data.get("need") else None
                started = dt.datetime.fromtimestamp(_since(data.get("started_at")), tz=dt.UTC)
                call = do_log_call(
                    user,
                    org=None,
                    member=member,
                    kind=data["kind"],
                    summary=data["summary"],
                    started_at=started,
                    ended_at=max(clock.now(), started),
                    order=order,
                    need=need,
                )
                once.keep(str(call.pk))
        except ApiError as exc:
            add_form_error(form, exc, {"order_id": "order", "need_id": "need"})
        else:
            messages.success(request, _("来电已记录（#%(id)s）。可以接下一个电话了。") % {"id": call.pk})
            return redirect("web:hotline")
    return _caller_page(request, member, produced=produced, since=since, status=422, call_form=form)
