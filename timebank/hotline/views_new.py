"""An unknown caller, in one screen and one call: register the old person (active when staff register them,
pending when an operator does: `access_home_at_desk`), record their need, order for them, then log the call with
all three linked. Each step commits on its own through the API's action, so a refusal at a later step keeps what
is done, and the page shows it; a step's form carries a key, so a double submit does it once. The state of the
call (when it began, the need and the order it produced) travels in the address; htmx swaps `#new-caller` only."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.catalogue.models import ServiceItem
from timebank.hotline.access import (
    DESK_ROLES,
    access_home_at_desk,
    access_member_at_desk,
    desk_scope,
    home_orgs_at_desk,
)
from timebank.hotline.forms import CallerNeedForm, CallerOrderForm, CallerRegisterForm, CallForm
from timebank.hotline.models import CallKind
from timebank.hotline.queries import id_number_holder
from timebank.hotline.views import _need_label, _order_label, _produced, _since, item_choices
from timebank.lib.errors import ApiError, Conflict
from timebank.lib.masking import mask_phone
from timebank.members.actions import do_record_consents, do_register_member
from timebank.members.models import Member, MemberStatus
from timebank.needs.access import access_need, access_recipient_for_need
from timebank.needs.actions import do_create_need, do_link_order
from timebank.needs.models import Need
from timebank.ops.idempotency import form_once
from timebank.orders import actions as order_actions
from timebank.orders.models import Order
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, User
from timebank.orgs.scope import org_label, user_of
from timebank.web.views.common import add_form_error, is_htmx, page

MAX_HOME_CHOICES = 500


def home_choices(user: User) -> list[tuple[int, str]]:
    return [(o.pk, org_label(o)) for o in home_orgs_at_desk(user)[:MAX_HOME_CHOICES]]


def registers_active(user: User) -> bool:
    """Whether the caller's registrations are active at once (the page says so before the form is sent)."""
    return user.is_superuser or user.role in MANAGING_ROLES


def _steps_url(member: Member, since: int, need: Need | None = None, order: Order | None = None) -> str:
    params: dict[str, Any] = {"since": since}
    if need is not None:
        params["need"] = need.pk
    if order is not None:
        params["order"] = order.pk
    return f"{reverse('web:hotline_new_caller_steps', args=[member.pk])}?{urlencode(params)}"


# ---- step 1: register ---------------------------------------------------------------------------------------


def _start_initial(request: HttpRequest) -> dict[str, Any]:
    """What the console already knows (`?q=`, the search box's text): a number is the phone, else the name."""
    text = request.GET.get("q", "").replace("\x00", "").strip()[:50]
    if not text:
        return {}
    return {"phone": text} if re.fullmatch(r"[0-9+\-\s]+", text) else {"name": text}


def _check_not_registered(user: User, number: str, bank_id: int) -> None:
    """A caller whose ID number is already a member's of this bank is not registered again: the refusal names the
    member to pick if the desk may open them (`DuplicateCaller`), else says the number is taken and nothing about
    whom. Other banks are never looked at."""
    holder = id_number_holder(bank_id, number)
    if holder is None:
        return
    if has_role(user, DESK_ROLES, holder.home_org):
        raise DuplicateCaller(holder)
    raise Conflict(
        _("本银行已有这个身份证号的会员，不在您的管辖范围内。请联系老人所在的社区。"),
        code="duplicate_id_number",
        fields={"id_number": "duplicate"},
    )


class DuplicateCaller(Conflict):
    def __init__(self, holder: Member) -> None:
        super().__init__(
            _("这位老人已经登记过了，请直接选用下面的会员，不要重复登记。"),
            code="duplicate_id_number",
            fields={"id_number": "duplicate"},
        )
        self.holder = holder


@never_cache
@page("workbench")
def new_caller(request: HttpRequest) -> HttpResponse:
    """Step 1: register the unknown caller (`GET` shows the form, `POST` registers)."""
    user = user_of(request)
    desk_scope(user)
    since = _since(request.GET.get("since"))
    orgs = home_choices(user)
    if request.method != "POST":
        form = CallerRegisterForm(orgs=orgs, initial=_start_initial(request))
        return _start_page(request, form, since)
    raw = request.POST.get("home_org_id", "")
    if raw.isdigit() and len(raw) < 19 and int(raw) not in {pk for pk, _label in orgs}:
        # A community the list does not offer: another's is refused (403, 404 unknown) before anything is read.
        home, _approved = access_home_at_desk(user, int(raw))
        orgs.append((home.pk, org_label(home)))
    form = CallerRegisterForm(request.POST, orgs=orgs)
    existing = None
    status = 422
    if form.is_valid():
        data = form.cleaned_data
        home, approved = access_home_at_desk(user, data["home_org_id"])
        assert home.head_office_id is not None
        try:
            with form_once(request, data["idempotency_key"], "hotline.register_caller") as once:
                if once.replay is not None:
                    replayed = Member.objects.get(pk=int(once.replay.body))
                    return redirect(_steps_url(replayed, since))
                _check_not_registered(user, data["id_number"], home.head_office_id)
                with transaction.atomic():  # the member and the consents they gave on the phone: both or none
                    member = do_register_member(user, home_org=home, data=form.caller_input(), approved=approved)
                    do_record_consents(user, member, form.consents(), channel="staff")
                once.keep(str(member.pk))
        except ApiError as exc:
            if exc.code == "duplicate_id_number":  # said to the desk, not the member's "you may have registered"
                form.add_error("id_number", str(exc.message))
                existing = exc.holder if isinstance(exc, DuplicateCaller) else None
                status = 409
            else:
                add_form_error(form, exc, {"home_org": "home_org_id"})
        else:
            return redirect(_steps_url(member, since))
    return _start_page(request, form, since, existing=existing, status=status)


def _start_page(
    request: HttpRequest, form: CallerRegisterForm, since: int, *, existing: Member | None = None, status: int = 200
) -> HttpResponse:
    user = user_of(request)
    context = {
        "form": form,
        "since": since,
        "active": registers_active(user),
        "existing": existing,
        "existing_phone": mask_phone(existing.phone) if existing is not None else "",
        "search": "",
    }
    return render(request, "hotline/new_caller.html", context, status=status)


# ---- steps 2 to 4: the need, the order, the call --------------------------------------------------------------


def _need_of(user: User, member: Member, raw: Any) -> Need | None:
    """The need this call recorded (`?need=`), if it is this caller's and the desk may read it."""
    try:
        need_id = int(raw)
    except (TypeError, ValueError):
        return None
    if not 0 < need_id < 2**63:
        return None
    try:
        need = access_need(user, need_id)
    except ApiError:
        return None
    return need if need.recipient_id == member.pk else None


def _state(request: HttpRequest, member: Member) -> tuple[int, Need | None, Order | None]:
    user = user_of(request)
    source = request.GET
    return (
        _since(source.get("since")),
        _need_of(user, member, source.get("need")),
        _produced(user, member, source.get("order")),
    )


def _steps_page(
    request: HttpRequest,
    member: Member,
    since: int,
    need: Need | None,
    order: Order | None,
    *,
    need_form: CallerNeedForm | None = None,
    order_form: CallerOrderForm | None = None,
    status: int = 200,
) -> HttpResponse:
    items = item_choices(member)
    needs = [(need.pk, _need_label(need))] if need is not None else []
    orders = [(order.pk, _order_label(order))] if order is not None else []
    context: dict[str, Any] = {
        "member": member,
        "since": since,
        "need": need,
        "order": order,
        "pending": member.status == MemberStatus.PENDING,
        "can_order": member.status == MemberStatus.ACTIVE,
        "need_form": need_form or CallerNeedForm(items=items),
        "order_form": order_form or CallerOrderForm(items=items),
        "call_form": CallForm(
            orders=orders,
            needs=needs,
            prefix="call",
            initial={
                "started_at": since,
                "kind": CallKind.ORDER if order is not None else CallKind.OTHER,
                "order": order.pk if order is not None else None,
                "need": need.pk if need is not None else None,
            },
        ),
        "state": urlencode(
            {"since": since, **({"need": need.pk} if need else {}), **({"order": order.pk} if order else {})}
        ),
        "search": "",
    }
    response = render(request, "hotline/new_caller.html", context, status=status)
    if is_htmx(request) and request.method == "GET":
        response["HX-Push-Url"] = request.get_full_path()  # the step's own address, for a reload
    return response


@never_cache
@page("workbench")
def new_caller_steps(request: HttpRequest, member_id: int) -> HttpResponse:
    """What this call has done for the caller so far, and the next steps."""
    user = user_of(request)
    member = access_member_at_desk(user, member_id)
    since, need, order = _state(request, member)
    return _steps_page(request, member, since, need, order)


@require_POST
@page("workbench")
def new_caller_need(request: HttpRequest, member_id: int) -> HttpResponse:
    """Step 2: the caller's need (`POST /api/v1/needs`: `access_recipient_for_need`, `do_create_need`); an order
    this call made before is linked to it in the same transaction."""
    user = user_of(request)
    member = access_recipient_for_need(user, member_id)
    since, need, order = _state(request, member)
    form = CallerNeedForm(request.POST, items=item_choices(member))
    if form.is_valid():
        data = form.cleaned_data
        try:
            with form_once(request, data["idempotency_key"], "hotline.caller_need") as once:
                if once.replay is not None:
                    return redirect(_steps_url(member, since, _need_of(user, member, once.replay.body), order))
                made = do_create_need(
                    user,
                    recipient=member,
                    level=data["level"],
                    found_by=data["found_by"],
                    item_ids=data["item_ids"],
                    notes=data["notes"],
                )
                if order is not None:
                    do_link_order(user, made, order)
                once.keep(str(made.pk))
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            return redirect(_steps_url(member, since, made, order))
    return _steps_page(request, member, since, need, order, need_form=form, status=422)


@require_POST
@page("workbench")
def new_caller_order(request: HttpRequest, member_id: int) -> HttpResponse:
    """Step 3: 点单 for the caller (channel hotline), as the console's order: `access_member_at_desk` and
    `do_create_order`; the need this call recorded is linked in the same transaction."""
    user = user_of(request)
    member = access_member_at_desk(user, member_id)
    since, need, order = _state(request, member)
    form = CallerOrderForm(request.POST, items=item_choices(member))
    if form.is_valid():
        data = form.cleaned_data
        try:
            with form_once(request, data["idempotency_key"], "hotline.caller_order") as once:
                if once.replay is not None:
                    return redirect(_steps_url(member, since, need, _produced(user, member, once.replay.body)))
                item = ServiceItem.objects.get(pk=data["service_item_id"])  # one of the choices: the form checked it
                made = order_actions.do_create_order(
                    user,
                    recipient=member,
                    service_item=item,
                    scheduled_start=data["scheduled_start"],
                    planned_minutes=data["planned_minutes"],
                    payer=data["payer"],
                    channel="hotline",
                    notes=data["notes"],
                    urgent=data["urgent"],
                )
                if need is not None:
                    do_link_order(user, need, made)
                once.keep(str(made.pk))
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            return redirect(_steps_url(member, since, need, made))
    return _steps_page(request, member, since, need, order, order_form=form, status=422)
