"""The recipient's side (the old person or a relative): order a service in three taps, see who is coming,
confirm with the code or refuse, and rate the service."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.catalogue.actions import weighted_minutes
from timebank.catalogue.models import ServiceItem
from timebank.ledger.models import AccountKind
from timebank.lib import clock
from timebank.lib.errors import ApiError, Forbidden
from timebank.members.access import access_member
from timebank.members.models import Member
from timebank.members.person import who
from timebank.ops.idempotency import form_once
from timebank.orders import actions
from timebank.orders.access import RECIPIENT, RELATIVE, access_order
from timebank.orders.core_services import EMERGENCY_ITEM
from timebank.orders.forms import OrderConfirmForm, ReasonForm, ReviewForm, TimeForm
from timebank.orders.models import Order, OrderEvent, Payer
from timebank.orders.rules import OPEN_STATES
from timebank.orders.views_member import balances, care_people, multipliers
from timebank.orgs.scope import user_of
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, explain, is_htmx, page

SLOT_HOURS = (9, 14)
EMERGENCY_MINUTES = 60


def _people_or_refuse(request: HttpRequest) -> list[Member]:
    people = care_people(who(request))
    if not people:
        raise Forbidden(
            _("点单是给老人和登记过的亲属用的。需要服务的话，请到社区登记为服务对象，或请社区为您关联家人。"),
            code="not_allowed",
        )
    return people


def _chosen(people: list[Member], raw: str | None) -> Member:
    for person in people:
        if raw and str(person.pk) == raw:
            return person
    return people[0]


def _item(request: HttpRequest, item_id: int, bank_id: int) -> ServiceItem:
    item = ServiceItem.objects.filter(pk=item_id, head_office_id=bank_id, active=True).first()
    if item is None:
        raise Http404(str(_("找不到这项服务，可能已经停用了。请回首页重新选择。")))
    return item


def slots(now: dt.datetime | None = None) -> list[dt.datetime]:
    """The next few usual visiting times (mornings and afternoons), at least two hours ahead."""
    now = timezone.localtime(now or clock.now())
    found: list[dt.datetime] = []
    for days in range(4):
        day = now.date() + dt.timedelta(days=days)
        for hour in SLOT_HOURS:
            start = timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))
            if start >= now + dt.timedelta(hours=2):
                found.append(start)
    return found[:6]


def _as_param(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


@page("member")
def pick_item(request: HttpRequest) -> HttpResponse:
    """Step 1 (also on the home page): which service."""
    people = _people_or_refuse(request)
    return redirect(f"{reverse('web:home')}?for={_chosen(people, request.GET.get('for')).pk}#order")


@page("member")
def pick_time(request: HttpRequest, item_id: int) -> HttpResponse:
    """Step 2: when. Usual times are one tap; any other time is a date-and-time field."""
    people = _people_or_refuse(request)
    person = _chosen(people, request.GET.get("for"))
    item = _item(request, item_id, person.bank_id)
    if item.name == EMERGENCY_ITEM:
        return render(
            request,
            "orders/order/emergency.html",
            {"item": item, "for_member": person, "idempotency_key": new_idempotency_key()},
        )
    form = TimeForm(request.GET if "start" in request.GET else None)
    if form.is_bound and form.is_valid():
        target = reverse("web:order_confirm", args=[item.pk])
        return redirect(f"{target}?for={person.pk}&start={_as_param(form.cleaned_data['start'])}")
    return render(
        request,
        "orders/order/pick_time.html",
        {
            "item": item,
            "for_member": person,
            "slots": [(s, _as_param(s)) for s in slots()],
            "form": form,
            "multiplier": multipliers(person.bank_id)[item.tier],
        },
        status=422 if form.errors else 200,
    )


@require_POST
@page("member")
def emergency_order(request: HttpRequest, item_id: int) -> HttpResponse:
    """The emergency tile's button: an urgent order for now, raised once per form (a double tap raises one).
    The community pays (subsidy): help in an emergency does not wait on the elder's balance."""
    user = user_of(request)
    person = _chosen(_people_or_refuse(request), request.POST.get("for"))
    item = _item(request, item_id, person.bank_id)
    if item.name != EMERGENCY_ITEM:
        raise Http404(str(_("找不到这项服务，可能已经停用了。请回首页重新选择。")))
    with form_once(request, request.POST.get("idempotency_key"), "orders.emergency") as once:
        if once.replay is not None:
            messages.info(request, _("已经通知社区了，没有重复下单。"))
            return redirect("web:care_order", order_id=int(once.replay.body))
        order = actions.do_create_order(
            user,
            recipient=access_member(user, person.pk),
            service_item=item,
            scheduled_start=clock.now(),
            planned_minutes=EMERGENCY_MINUTES,
            payer=Payer.SUBSIDY,
            channel="app",
            urgent=True,
        )
        once.keep(str(order.pk))
    messages.success(request, _("已经通知社区值班人员和家属，马上安排人过来。有生命危险请拨打 120。"))
    return redirect("web:care_order", order_id=order.pk)


@page("member")
def confirm_order(request: HttpRequest, item_id: int) -> HttpResponse:
    """Step 3: check and confirm. The recipient's own stored time pays."""
    user = user_of(request)
    people = _people_or_refuse(request)
    choices = [(p.pk, p.name) for p in people]
    if request.method == "POST":
        form = OrderConfirmForm(request.POST, people=choices)
        person = _chosen(people, request.POST.get("recipient"))
    else:
        person = _chosen(people, request.GET.get("for"))
        form = OrderConfirmForm(
            initial={"recipient": person.pk, "start": request.GET.get("start"), "planned_minutes": 60},
            people=choices,
        )
        start_check = TimeForm({"start": request.GET.get("start", "")})
        if not start_check.is_valid():
            step2 = f"{reverse('web:order_time', args=[item_id])}?{urlencode({'for': person.pk})}"
            if request.GET.get("start"):
                # A time that has passed (a slot tapped on a page left open): step 2 says why beside the field.
                return redirect(f"{step2}&{urlencode({'start': request.GET['start']})}")
            messages.warning(request, _("请先选一个上门时间。"))
            return redirect(step2)
    item = _item(request, item_id, person.bank_id)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        recipient = access_member(user, data["recipient"])
        try:
            order = actions.do_create_order(
                user,
                recipient=recipient,
                service_item=item,
                scheduled_start=data["start"],
                planned_minutes=data["planned_minutes"],
                payer=Payer.RECIPIENT,
                channel="app",
                notes=data["notes"],
            )
        except ApiError as exc:
            add_form_error(
                form,
                exc,
                {"scheduled_start": "start", "recipient_id": "recipient"},
            )
        else:
            messages.success(
                request,
                _("点好了！社区会尽快安排志愿者，安排好了这里会显示是谁、什么时候来。"),
            )
            return redirect("web:care_order", order_id=order.pk)
    multiplier = Decimal(str(multipliers(person.bank_id)[item.tier]))
    parts = balances(person)
    raw_start = form.data.get("start") if form.is_bound else request.GET.get("start")
    checked = TimeForm({"start": raw_start or ""})
    start_dt = checked.cleaned_data["start"] if checked.is_valid() else None
    return render(
        request,
        "orders/order/confirm.html",
        {
            "item": item,
            "form": form,
            "for_member": person,
            "start": start_dt,
            "multiplier": multiplier,
            "hour_cost": weighted_minutes(60, multiplier),
            "spendable": parts[AccountKind.EARNED] + parts[AccountKind.RESERVE],
            "several": len(people) > 1,
        },
        status=422 if form.errors else 200,
    )


@page("member")
def care_orders(request: HttpRequest) -> HttpResponse:
    """Who is coming and when; what waits for me; what is done."""
    people = _people_or_refuse(request)
    orders = Order.objects.filter(recipient__in=people).select_related("service_item", "volunteer", "recipient")
    return render(
        request,
        "orders/care/orders.html",
        {
            "open": list(orders.open().order_by("scheduled_start")),
            "done": list(orders.exclude(state__in=OPEN_STATES).order_by("-updated_at")[:10]),
            "people": people,
        },
    )


def _care_order(request: HttpRequest, order_id: int, action: str = "read") -> tuple[Order, set[str]]:
    order, roles = access_order(user_of(request), order_id, action)
    if not roles & {RECIPIENT, RELATIVE}:
        raise Forbidden(_("这个页面是给老人和家属看的。"), code="not_allowed")
    return order, roles


def _card_context(order: Order, **extra: Any) -> dict[str, Any]:
    return {
        "order": order,
        "events": list(OrderEvent.objects.filter(order=order).order_by("pk")),
        "dispute_form": extra.pop("dispute_form", None) or ReasonForm(prefix="dispute"),
        "review_form": extra.pop("review_form", None) or ReviewForm(prefix="review"),
        "cancel_form": extra.pop("cancel_form", None) or ReasonForm(prefix="cancel"),
        **extra,
    }


@page("member")
def care_order(request: HttpRequest, order_id: int) -> HttpResponse:
    order, _roles = _care_order(request, order_id)
    served = actions.served_by(user_of(request), order)
    return render(request, "orders/care/order.html", _card_context(order, served_by_me=served))


@require_POST
@page("member")
def care_action(request: HttpRequest, order_id: int, action: str) -> HttpResponse:
    """confirm / dispute / review / cancel, from the recipient's side. htmx swaps the card; plain forms reload."""
    if action not in ("confirm", "dispute", "review", "cancel"):
        raise Http404(str(_("没有这项操作。")))
    user = user_of(request)
    order, _roles = _care_order(request, order_id, action)
    forms: dict[str, Any] = {}
    error = ""
    done = ""
    form: Any
    try:
        if action == "confirm":
            actions.do_confirm(user, order)
            done = str(_("已确认，谢谢！志愿者的时间已经存进去了。请给这次服务打个分。"))
        elif action == "dispute":
            form = ReasonForm(request.POST, prefix="dispute")
            forms["dispute_form"] = form
            if form.is_valid():
                actions.do_dispute(user, order, reason=form.cleaned_data["reason"])
                done = str(_("已经告诉社区了。工作人员会联系您核实，核实之前不会记时间。"))
        elif action == "review":
            form = ReviewForm(request.POST, prefix="review")
            forms["review_form"] = form
            if form.is_valid():
                actions.do_review(user, order, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"])
                done = str(_("谢谢您的评价！"))
        else:
            form = ReasonForm(request.POST, prefix="cancel")
            forms["cancel_form"] = form
            if form.is_valid():
                actions.do_cancel(user, order, reason=form.cleaned_data["reason"], by_staff=False)
                done = str(_("订单已取消。"))
    except ApiError as exc:
        error = explain(exc)
        form_name = f"{action}_form"
        if form_name in forms:
            add_form_error(forms[form_name], exc, {"comment": "comment"})
            error = ""
    fresh, _roles = _care_order(request, order_id)
    invalid = bool(error) or any(f.errors for f in forms.values())
    if not is_htmx(request) and not invalid:
        messages.success(request, done)
        return redirect("web:care_order", order_id=order_id)
    context = _card_context(
        fresh, card_error=error, card_done=done, served_by_me=actions.served_by(user, fresh), **forms
    )
    template = "orders/care/_order_card.html" if is_htmx(request) else "orders/care/order.html"
    return render(request, template, context, status=422 if invalid else 200)
