"""The staff workbench (first pieces): members to approve, orders to dispatch, disputes to resolve."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError, Forbidden
from timebank.lib.masking import mask_phone
from timebank.members.access import access_member_to_manage, visible_members
from timebank.members.actions import contact_fields, do_approve_member, do_view_personal_data, duplicate_of
from timebank.members.forms import MemberSearchForm
from timebank.members.models import Member, MemberStatus
from timebank.ops.idempotency import submit_once
from timebank.orders import actions, worklists
from timebank.orders.access import OPERATOR, STAFF, access_order, visible_orders
from timebank.orders.forms import DispatchForm, NoShowForm, OrderFilterForm, ReasonForm, StaffConfirmForm
from timebank.orders.models import Order, OrderEvent, OrderState, Payer, overdue_q
from timebank.orders.paper import STEPS as PAPER_STEPS
from timebank.orders.paper import PaperForm, paper_step
from timebank.orders.rules import ACTIVE_STATES, OPEN_STATES, allows
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, Org, OrgKind, Rules, User
from timebank.orgs.scope import can_manage, user_of
from timebank.web.views.common import add_form_error, back, explain, is_htmx, page

# The best few are enough to choose from; the API pages through the whole shortlist.
CANDIDATES_SHOWN = 12
# The no-show form's inputs are named as the API's fields (`reason`); its ids differ from the other forms' ones.
NO_SHOW_IDS = "id_noshow_%s"


def prioritised(qs: QuerySet[Order]) -> QuerySet[Order]:
    """Overdue first, then urgent, then disputes, then what waits for dispatch or confirmation."""
    priority = Case(
        When(overdue_q(), then=Value(0)),
        When(Q(urgent=True, state__in=OPEN_STATES), then=Value(1)),
        When(state=OrderState.DISPUTED, then=Value(2)),
        When(state=OrderState.REQUESTED, then=Value(3)),
        When(state=OrderState.COMPLETED, then=Value(4)),
        When(state__in=ACTIVE_STATES, then=Value(5)),
        default=Value(6),
        output_field=IntegerField(),
    )
    return qs.annotate(priority=priority).order_by("priority", "scheduled_start", "pk")


@page("workbench")
def staff_home(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    orders = visible_orders(user)
    return render(
        request,
        "orders/staff/home.html",
        {
            "pending_members": visible_members(user).filter(status=MemberStatus.PENDING).count(),
            "counters": worklists.counters(orders),  # each links to the orders list with the same filter
            "can_manage": can_manage(user),
        },
    )


def _member_row(member: Member, user: User) -> Member:
    member.masked_phone = mask_phone(member.phone) if member.phone else ""  # type: ignore[attr-defined]
    member.can_approve = member.status == MemberStatus.PENDING and has_role(  # type: ignore[attr-defined]
        user, MANAGING_ROLES, member.home_org
    )
    # The certificate page is for staff and admins of the member's subtree (not operators): link only for them.
    member.can_certify = member.is_volunteer and has_role(  # type: ignore[attr-defined]
        user, MANAGING_ROLES, member.home_org
    )
    # A forgotten password: staff of the home subtree give a temporary one (not operators).
    member.can_reset_password = (  # type: ignore[attr-defined]
        member.user_id is not None and member.anonymised_at is None and has_role(user, MANAGING_ROLES, member.home_org)
    )
    # A paper member card (proof of presence at other communities' outlets): staff of the home subtree print it.
    member.can_print_card = member.status == "active" and has_role(  # type: ignore[attr-defined]
        user, MANAGING_ROLES, member.home_org
    )
    # A registration whose ID number another member (or an earlier registration) gave: the reviewer sees it.
    member.duplicate_label = ""  # type: ignore[attr-defined]
    holder_id = duplicate_of(member) if member.can_approve else None  # type: ignore[attr-defined]
    holder = Member.objects.select_related("home_org").filter(pk=holder_id).first() if holder_id else None
    if holder is not None:
        shown = holder.name if has_role(user, MANAGING_ROLES, holder.home_org) else ""
        member.duplicate_label = f"{shown} #{holder.pk}".strip()  # type: ignore[attr-defined]
    return member


@page("workbench")
def staff_members(request: HttpRequest) -> HttpResponse:
    """Find a member by name or phone; pending self-registrations come first."""
    user = user_of(request)
    form = MemberSearchForm(request.GET)
    qs = visible_members(user).select_related("home_org")
    if form.is_valid():
        if form.cleaned_data["q"]:
            q = form.cleaned_data["q"]
            qs = qs.filter(Q(name__contains=q) | Q(phone__contains=q))
        if form.cleaned_data["status"]:
            qs = qs.filter(status=form.cleaned_data["status"])
    pending_first = Case(
        When(status=MemberStatus.PENDING, then=Value(0)), default=Value(1), output_field=IntegerField()
    )
    rows = Paginator(qs.annotate(pending_first=pending_first).order_by("pending_first", "-pk"), 30).get_page(
        request.GET.get("page")
    )
    for member in rows:
        _member_row(member, user)
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "orders/staff/members.html",
        {"form": form, "rows": rows, "query": query.urlencode(), "can_manage": can_manage(user)},
    )


@require_POST
@page("workbench")
def staff_member_approve(request: HttpRequest, member_id: int) -> HttpResponse:
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    error = ""
    try:
        member = do_approve_member(user, member)
    except ApiError as exc:
        # A duplicate's reason is for the reviewer; explain() would add the hint meant for the registrant.
        error = str(exc.message) if exc.code == "duplicate_id_number" else explain(exc)
    if is_htmx(request):
        member = Member.objects.select_related("home_org").get(pk=member.pk)
        row = _member_row(member, user)
        row.row_error = error  # type: ignore[attr-defined]
        row.row_done = "" if error else str(_("已通过审核"))  # type: ignore[attr-defined]
        return render(request, "orders/staff/_member_row.html", {"m": row}, status=409 if error else 200)
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("%(name)s 已通过审核，现在可以点单或接单了。") % {"name": member.name})
    return back(request, "/staff/members/")


@page("workbench")
def staff_orders(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    form = OrderFilterForm(request.GET)
    qs = visible_orders(user).select_related("service_item", "recipient", "volunteer", "org")
    if form.is_valid():
        qs = worklists.pick(qs, form.cleaned_data["state"])
        if form.cleaned_data["q"]:
            qs = qs.filter(recipient__name__contains=form.cleaned_data["q"])
    overdue_ids = set(visible_orders(user).overdue().values_list("pk", flat=True)[:1000])
    rows = Paginator(prioritised(qs), 30).get_page(request.GET.get("page"))
    for order in rows:
        order.overdue = order.pk in overdue_ids  # type: ignore[attr-defined]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "orders/staff/orders.html", {"form": form, "rows": rows, "query": query.urlencode()})


def _dispatch_area(order: Order) -> Org:
    org = order.org
    if org.kind in (OrgKind.SUB_BRANCH, OrgKind.OUTLET) and org.parent_id and org.parent is not None:
        return org.parent
    return org


def dispatch_candidates(user: User, order: Order) -> list[tuple[int, str]]:
    """Whom to suggest, best first: the matching shortlist (scores and reasons, the same list as the API's
    /orders/{id}/candidates); without the matching module, the active volunteers of the area, least busy first."""
    try:
        from timebank.orders.matching import rank_candidates
    except ImportError:  # pragma: no cover - matching is optional for the pages
        return area_volunteers(user, order)
    return [
        (
            c.volunteer_id,
            str(
                _("%(name)s · 匹配 %(score)s 分 · %(reasons)s")
                % {"name": c.name, "score": round(c.score), "reasons": " · ".join(c.reasons[:3])}
            ),
        )
        for c in rank_candidates(order, limit=CANDIDATES_SHOWN)
    ]


def area_volunteers(user: User, order: Order) -> list[tuple[int, str]]:
    area = _dispatch_area(order)
    volunteers = (
        visible_members(user)
        .filter(
            bank_id=order.bank_id,
            is_volunteer=True,
            status=MemberStatus.ACTIVE,
            home_org__path__startswith=area.path,
        )
        .exclude(pk=order.recipient_id)
        .select_related("home_org")
        .annotate(busy=Count("orders_served", filter=Q(orders_served__state__in=ACTIVE_STATES)))
        .order_by("busy", "name")[:200]
    )
    return [
        (
            v.pk,
            str(_("%(name)s · %(org)s · 手上 %(busy)s 单") % {"name": v.name, "org": v.home_org.name, "busy": v.busy}),
        )
        for v in volunteers
    ]


def _staff_order(request: HttpRequest, order_id: int, action: str = "read") -> tuple[Order, set[str]]:
    order, roles = access_order(user_of(request), order_id, action)
    if not roles & {STAFF, OPERATOR}:
        raise Forbidden(_("这个订单不在您的工作范围内。"), code="outside_subtree")
    return order, roles


def _detail(request: HttpRequest, order: Order, roles: set[str], status: int = 200, **forms: Any) -> HttpResponse:
    user = user_of(request)
    # The buttons follow the transition table (orders.rules): staff and operators act as staff.
    can_dispatch = allows("dispatch", order.state)
    candidates = dispatch_candidates(user, order) if can_dispatch else []
    rules = Rules.objects.get(head_office_id=order.bank_id)
    context = {
        "order": order,
        "roles": roles,
        "events": list(OrderEvent.objects.filter(order=order).select_related("actor").order_by("pk")),
        "overdue": order.is_overdue(rules.dispatch_within_hours),
        "can_dispatch": can_dispatch,
        "dispatch_form": forms.get("dispatch_form") or DispatchForm(volunteers=candidates),
        "can_confirm": STAFF in roles and allows("confirm", order.state, by_staff=True),
        "confirm_form": forms.get("confirm_form")
        or StaffConfirmForm(initial={"actual_minutes": actions.default_minutes(order, rules)}, payer=order.payer),
        "can_cancel": allows("cancel", order.state, by_staff=True),
        "cancel_form": forms.get("cancel_form") or ReasonForm(prefix="cancel"),
        # 爽约: the dispatched volunteer did not come; the order goes back to dispatch.
        # A refused form stays on the page with its reason, even when the refusal is that nobody is dispatched now.
        "can_no_show": bool(roles & {STAFF, OPERATOR}) and (allows("no-show", order.state) or "no_show_form" in forms),
        "no_show_form": forms.get("no_show_form") or NoShowForm(auto_id=NO_SHOW_IDS),
        # 专项基金: an order paid from stored time that no volunteer takes is bought from a provider (funds' page).
        "can_buy_service": STAFF in roles and allows("buy-service", order.state) and order.payer == Payer.RECIPIENT,
        # Paper mode: accept, check in or check out for a volunteer without a smartphone (orders/paper.py).
        "paper": paper_step(order, roles, forms.get("paper_form")),
    }
    # The one order's page shows the recipient's phone and address in full: each showing is audited.
    recipient = order.recipient
    do_view_personal_data(
        user,
        [(recipient, contact_fields(recipient))],
        via=f"order:{order.pk}",
    )
    return render(request, "orders/staff/order.html", context, status=status)


@page("workbench")
def staff_order(request: HttpRequest, order_id: int) -> HttpResponse:
    order, roles = _staff_order(request, order_id)
    return _detail(request, order, roles)


@require_POST
@page("workbench")
def staff_order_action(request: HttpRequest, order_id: int, action: str) -> HttpResponse:
    """dispatch / confirm (also resolves a dispute) / cancel, through the same access checks as the API; accept,
    check-in and check-out for the volunteer (paper mode); the volunteer did not come (no-show)."""
    if action in PAPER_STEPS:
        return _paper_action(request, order_id, action)
    if action == "no-show":
        return _no_show(request, order_id)
    if action not in ("dispatch", "confirm", "cancel"):
        raise Http404(str(_("没有这项操作。")))
    user = user_of(request)
    order, roles = _staff_order(request, order_id, action)
    form: Any
    done: Any = ""
    if action == "dispatch":
        form = DispatchForm(request.POST, volunteers=dispatch_candidates(user, order))
    elif action == "confirm":
        if STAFF not in roles:
            raise Forbidden(_("只有社区工作人员可以代为确认。"), code="not_allowed")
        form = StaffConfirmForm(request.POST, payer=order.payer)
    else:
        form = ReasonForm(request.POST, prefix="cancel")
    if form.is_valid():
        data = form.cleaned_data
        try:
            if action == "dispatch":
                volunteer = Member.objects.get(pk=data["volunteer"])
                actions.do_dispatch(user, order, volunteer)
                done = _("已派给 %(name)s，等待志愿者接单。") % {"name": volunteer.name}
            elif action == "confirm":
                was_disputed = order.state == OrderState.DISPUTED
                actions.do_confirm(
                    user,
                    order,
                    actual_minutes=data["actual_minutes"],
                    by_staff=True,
                    reason=data["reason"],
                    payer=data["payer"] or None,
                )
                done = _("争议已处理，时间已记入志愿者账户。") if was_disputed else _("已确认，时间已记入志愿者账户。")
            else:
                actions.do_cancel(user, order, reason=data["reason"], by_staff=bool(roles & {STAFF, OPERATOR}))
                done = _("订单已取消。")
        except ApiError as exc:
            add_form_error(form, exc, {"volunteer_id": "volunteer"})
    if form.errors:
        fresh, fresh_roles = _staff_order(request, order_id)
        return _detail(request, fresh, fresh_roles, status=422, **{f"{action}_form": form})
    messages.success(request, done)
    return redirect("web:staff_order", order_id=order_id)


def _paper_action(request: HttpRequest, order_id: int, action: str) -> HttpResponse:
    """Paper mode: accept, check in or check out for the order's volunteer at the time the paper sheet or the phone
    call gives, through the API's access check and action. A double submit of the same form acts once."""
    user = user_of(request)
    order, roles = _staff_order(request, order_id, action)
    step = PAPER_STEPS[action]
    form = PaperForm(request.POST, action=action)

    def again(status: int) -> HttpResponse:
        fresh, fresh_roles = _staff_order(request, order_id)
        return _detail(request, fresh, fresh_roles, status=status, paper_form=form)

    return submit_once(
        request,
        form,
        f"orders.paper.{action}",
        lambda data: step.act(user, order, on_behalf=actions.on_behalf_for(action, roles, data["at"], data["source"])),
        success=step.done,
        done=lambda _kept: redirect("web:staff_order", order_id=order_id),
        again=again,
    )


def _no_show(request: HttpRequest, order_id: int) -> HttpResponse:
    """爽约 (`POST /orders/{id}/no-show`): staff and operators of the order's subtree record that the dispatched
    volunteer did not come; the order goes back to dispatch. A double submit of the same form records it once."""
    user = user_of(request)
    order, _roles = _staff_order(request, order_id, "no-show")
    form = NoShowForm(request.POST, auto_id=NO_SHOW_IDS)

    def again(status: int) -> HttpResponse:
        fresh, fresh_roles = _staff_order(request, order_id)
        return _detail(request, fresh, fresh_roles, status=status, no_show_form=form)

    return submit_once(
        request,
        form,
        "orders.no_show",
        lambda data: actions.do_no_show(user, order, data["reason"]),
        success=_("已记录志愿者爽约，订单回到待派单，请重新派单。"),
        done=lambda _kept: redirect("web:staff_order", order_id=order_id),
        again=again,
    )
