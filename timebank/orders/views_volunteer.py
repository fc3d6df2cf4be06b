"""The volunteer's phone pages: open orders nearby to take, my orders and their next step."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.catalogue.models import CertificateKind
from timebank.lib import clock
from timebank.lib.errors import ApiError, Invalid
from timebank.members.actions import contact_fields, do_view_personal_data
from timebank.members.person import who
from timebank.orders import actions
from timebank.orders.access import (
    AREA_VOLUNTEER,
    RECIPIENT,
    RELATIVE,
    STAFF,
    VOLUNTEER,
    access_order,
    check_found,
    pool_orders,
    sees_contact_details,
)
from timebank.orders.forms import CodeForm
from timebank.orders.models import Order
from timebank.orgs.models import Rules
from timebank.orgs.scope import user_of
from timebank.web.views.common import explain, is_htmx, page

ACTIONS = ("take", "accept", "decline", "check-in", "check-out", "confirm")
DONE_WORDS = {
    "take": _("接好了！请按时上门。到了以后点“我到了”签到。"),
    "accept": _("已接单。请按时上门，到了以后点“我到了”签到。"),
    "decline": _("已拒绝，社区会另外安排志愿者。"),
    "check-in": _("已签到，服务开始。结束时请点“服务结束”签退。"),
    "check-out": _("已签退。请向老人要确认码，输入后时间就存进来了。"),
    "confirm": _("确认好了，这次服务的时间已经存进您的账户。谢谢您！"),
}


LOCATION_STEP = Decimal("0.001")  # about 100 m: enough to see the visit took place, not which door


def _shared_location(request: HttpRequest) -> tuple[Decimal | None, Decimal | None]:
    """The phone's location sent with a check-in, only when the volunteer ticked the box; rounded to ~100 m.
    A phone that could not tell its location checks in without one."""
    if not request.POST.get("share_location"):
        return None, None
    raw = (request.POST.get("latitude", "").strip(), request.POST.get("longitude", "").strip())
    if not all(raw):
        return None, None
    try:
        lat, lng = (Decimal(value[:32]).quantize(LOCATION_STEP) for value in raw)
    except (InvalidOperation, ValueError):
        raise Invalid(_("位置格式不对，请去掉勾选后再签到。"), fields={"latitude": "invalid"}) from None
    if not (lat.is_finite() and lng.is_finite()):
        raise Invalid(_("位置格式不对，请去掉勾选后再签到。"), fields={"latitude": "invalid"})
    return lat, lng


def _early_minutes(bank_id: int) -> int:
    return int(Rules.objects.values_list("checkin_early_minutes", flat=True).get(head_office_id=bank_id))


def _decorate(order: Order, roles: set[str], early: int | None = None, **extra: Any) -> Order:
    """What the card needs to know about the viewer: contact details only while the order is theirs and active;
    with the rules' `early` minutes, when check-in opens if that is still to come."""
    order.show_contact = sees_contact_details(roles, order)  # type: ignore[attr-defined]
    opens = order.scheduled_start - dt.timedelta(minutes=early) if early is not None else None
    order.check_in_opens = opens if opens is not None and opens > clock.now() else None  # type: ignore[attr-defined]
    order.is_mine = VOLUNTEER in roles  # type: ignore[attr-defined]
    order.waited_minutes = extra.pop("waited_minutes", None)  # type: ignore[attr-defined]
    order.code_form = extra.pop("code_form", None) or CodeForm(prefix=f"o{order.pk}")  # type: ignore[attr-defined]
    for key, value in extra.items():
        setattr(order, key, value)
    return order


@page("volunteer")
def volunteer_home(request: HttpRequest, focus: Order | None = None) -> HttpResponse:
    user = user_of(request)
    me = who(request).member
    assert me is not None
    urgency = Case(When(urgent=True, then=Value(0)), default=Value(1), output_field=IntegerField())
    mine = list(
        Order.objects.tasks()
        .filter(volunteer=me)
        .select_related("service_item", "recipient", "org")
        .order_by("scheduled_start")
    )
    pool = list(
        pool_orders(user)
        .select_related("service_item", "recipient", "org")
        .annotate(urgency=urgency)
        .order_by("urgency", "created_at", "pk")[:30]
    )
    # A card that came back with an error keeps what was typed into it.
    early = _early_minutes(me.bank_id)
    mine = [focus if focus is not None and o.pk == focus.pk else _decorate(o, {VOLUNTEER}, early) for o in mine]
    # The volunteer's own active orders are the one place they find where to go: shown in full, and audited.
    do_view_personal_data(
        user,
        [(o.recipient, contact_fields(o.recipient)) for o in mine if getattr(o, "show_contact", False)],
        via="volunteer_home",
    )
    now = clock.now()
    for order in pool:
        # Urgent ones first, the longest waiting first, with how long they have waited.
        _decorate(order, {AREA_VOLUNTEER}, waited_minutes=int((now - order.created_at).total_seconds() // 60))
    recent = list(
        Order.objects.credited()
        .filter(volunteer=me)
        .select_related("service_item", "recipient")
        .order_by("-confirmed_at")[:5]
    )
    today = clock.localdate()
    # Their own cover and qualifications: what dispatch checks, shown so they can renew in time.
    policies = list(me.insurance_policies.filter(ends_on__gte=today - dt.timedelta(days=90)).order_by("-ends_on")[:5])
    certificates = [
        (CertificateKind(c.kind).label if c.kind in CertificateKind.values else c.kind, c)
        for c in me.certificates.order_by("kind", "-valid_until")[:10]
    ]
    return render(
        request,
        "orders/volunteer/home.html",
        {
            "mine": mine,
            "pool": pool,
            "recent": recent,
            "me": me,
            "today": today,
            "policies": policies,
            "certificates": certificates,
        },
        status=422 if focus is not None else 200,
    )


@require_POST
@page("volunteer")
def volunteer_action(request: HttpRequest, order_id: int, action: str) -> HttpResponse:
    """Take, accept, decline, check in, check out, or confirm with the recipient's code, through the same access
    check as the API. htmx swaps the order's card; a plain form comes back to the list."""
    if action not in ACTIONS:
        raise Http404(str(_("没有这项操作。")))
    user = user_of(request)
    me = who(request).member
    assert me is not None
    order, roles = access_order(user, order_id, action)  # a 403/404 page before anything else
    code_form = CodeForm(request.POST, prefix=f"o{order.pk}") if action == "confirm" else None
    error = ""
    wrong: actions.WrongCode | None = None
    try:
        with transaction.atomic():
            # Checked again on the row the action locks, as the API does: between the page's read and the lock the
            # order may have been re-dispatched to another volunteer, whose order this caller must not move.
            order, roles = check_found(user, actions.lock_order(order_id), action)
            if action == "take":
                actions.do_take(user, order, me)
            elif action == "accept":
                actions.do_accept(user, order)
            elif action == "decline":
                actions.do_decline(user, order, request.POST.get("reason", "")[:500])
            elif action == "check-in":
                actions.do_check_in(user, order, *_shared_location(request))
            elif action == "check-out":
                actions.do_check_out(user, order)
            elif code_form is not None and code_form.is_valid():
                by_staff = STAFF in roles
                by_party = bool(roles & {RECIPIENT, RELATIVE})
                try:
                    actions.do_confirm(
                        user,
                        order,
                        code=code_form.cleaned_data["code"].strip(),
                        by_staff=by_staff,
                        by_volunteer=not by_staff and not by_party,
                    )
                except actions.WrongCode as refused:
                    wrong = refused  # the failure is counted: it commits with this block, and is shown after
        if wrong is not None:
            raise wrong
    except ApiError as exc:
        error = explain(exc)
        if code_form is not None and "code" in exc.fields:
            code_form.add_error("code", error)
            error = ""
    invalid = bool(error) or (code_form is not None and bool(code_form.errors))
    done = "" if invalid else str(DONE_WORDS[action])
    if not is_htmx(request) and not invalid:
        messages.success(request, done)
        return redirect("web:volunteer")
    fresh = Order.objects.select_related("service_item", "recipient", "org").get(pk=order.pk)
    fresh_roles = {VOLUNTEER} if fresh.volunteer_id == me.pk else {AREA_VOLUNTEER}
    card = _decorate(
        fresh, fresh_roles, _early_minutes(fresh.bank_id), code_form=code_form, card_error=error, card_done=done
    )
    if is_htmx(request):
        template = (
            "orders/volunteer/_taken.html" if action == "take" and not invalid else "orders/volunteer/_order_card.html"
        )
        return render(request, template, {"order": card}, status=422 if invalid else 200)
    if error:
        messages.error(request, error)
        return redirect("web:volunteer")
    # The code was refused: show the page again with the typed code and the reason next to it.
    return volunteer_home(request, focus=card)
