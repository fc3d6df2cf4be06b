from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal

from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, decode_cursor, encode_cursor, paginate
from timebank.approvals.actions import pending_answer
from timebank.approvals.models import Approval
from timebank.approvals.schemas import PendingApprovalOut
from timebank.catalogue.models import ServiceItem
from timebank.ledger.api import transaction_out
from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.lib.masking import mask_name, mask_phone
from timebank.members.access import access_member, access_member_to_manage, member_of
from timebank.members.actions import contact_fields, do_view_personal_data
from timebank.members.models import Member
from timebank.orders import actions, matching, records
from timebank.orders.access import (
    OPERATOR,
    RECIPIENT,
    RELATIVE,
    STAFF,
    access_order,
    check_found,
    check_roles,
    party_roles,
    pool_orders,
    sees_code,
    sees_contact_details,
    visible_orders,
)
from timebank.orders.models import Order, OrderEvent, OrderState
from timebank.orders.schemas import (
    CandidateOut,
    ConfirmIn,
    DispatchIn,
    EmptyIn,
    EventOut,
    LocationIn,
    OptionalReasonIn,
    OrderIn,
    OrderOut,
    ReasonIn,
    ReviewIn,
    ServiceRecordIn,
    ServiceRecordOut,
)
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES, Role, Rules, User

router = Router(tags=["orders"])

# The states the API names, built from OrderState (the rulebook), so a new state is in the enum at once.
if TYPE_CHECKING:
    StateName = str
else:
    StateName = Literal[tuple(OrderState.values)]


def order_out(
    order: Order, roles: set[str], dispatch_within_hours: int | None = None, *, personal: bool = False
) -> dict[str, Any]:
    """The order as `roles` may see it. The recipient's phone and address are shown in full only with
    `personal` (the one order's endpoint, which audits it) to those who may contact them; lists and action
    answers show the phone masked and no address, whoever asks."""
    contact = personal and sees_contact_details(roles, order)
    recipient = order.recipient
    if dispatch_within_hours is None and order.state == OrderState.REQUESTED:  # only a requested one is late
        dispatch_within_hours = Rules.objects.values_list("dispatch_within_hours", flat=True).get(
            head_office_id=order.bank_id
        )
    return {
        "id": order.pk,
        "state": order.state,
        "recipient_id": recipient.pk,
        "recipient": {
            "id": recipient.pk,
            "name": recipient.name,
            "phone": recipient.phone if contact else (mask_phone(recipient.phone) if recipient.phone else None),
            "address": recipient.address if contact else None,
        },
        "volunteer_id": order.volunteer_id,
        "volunteer_name": order.volunteer.name if order.volunteer else None,
        "service_item_id": order.service_item_id,
        "service_item_name": order.service_item.name,
        "tier": order.service_item.tier,
        "multiplier": float(order.multiplier),
        "org_id": order.org_id,
        "payer": order.payer,
        "channel": order.channel,
        "urgent": order.urgent,
        "scheduled_start": order.scheduled_start,
        "planned_minutes": order.planned_minutes,
        "notes": order.notes,
        "code": order.code if sees_code(roles) else None,
        "overdue": order.is_overdue(dispatch_within_hours),
        "created_at": order.created_at,
        "dispatched_at": order.dispatched_at,
        "accepted_at": order.accepted_at,
        "check_in_at": order.check_in_at,
        "check_out_at": order.check_out_at,
        "actual_minutes": order.actual_minutes,
        "credited_minutes": order.credited_minutes,
        "transaction_id": order.transaction_id,
        "confirmed_at": order.confirmed_at,
        "rating": order.rating,
        "review_comment": order.review_comment,
        "cancel_reason": order.cancel_reason,
        "dispute_reason": order.dispute_reason,
    }


@contextmanager
def _acting(user: User, order_id: int, action: str) -> Iterator[tuple[Order, set[str]]]:
    """The order and the caller's roles on it, if they allow `action`, inside the transaction the action runs in:
    read once and locked as the action reads it (`actions.lock_order`), so the action does not read it again."""
    with transaction.atomic():
        yield check_found(user, actions.lock_order(order_id), action)


def _answer(order: Order, user: User) -> dict[str, Any]:
    """The order as the action left it (its row locked and written in the action's transaction, so it is
    what the database holds), shown to the caller with their roles now (a volunteer who declined is no
    longer its volunteer)."""
    return order_out(order, check_roles(user, order))


@router.post("/orders", response={201: OrderOut})
def create_order(request: HttpRequest, payload: OrderIn) -> Status[dict[str, Any]]:
    """点单: the recipient, their relatives, or operators and staff of the recipient's subtree order a service."""
    user = caller(request)
    recipient = access_member(user, payload.recipient_id)
    me = member_of(user)
    staffish = has_role(user, MANAGING_ROLES | {Role.OPERATOR}, recipient.home_org)
    if not staffish and me is None:
        raise Forbidden(_("您不能为这位会员下单。"), code="not_allowed")
    if payload.payer in ("subsidy", "pool") and not staffish:
        raise Forbidden(_("只有工作人员或热线坐席可以选择补贴或捐赠池付款。"), code="payer_not_allowed")
    item = next(iter(ServiceItem.objects.filter(pk=payload.service_item_id)), None)  # by key: no ORDER BY
    if item is None:
        raise NotFound(_("找不到该服务项目。"), code="item_not_found")
    order = actions.do_create_order(
        user,
        recipient=recipient,
        service_item=item,
        scheduled_start=payload.scheduled_start,
        planned_minutes=payload.planned_minutes,
        payer=payload.payer,
        channel=payload.channel,
        notes=payload.notes,
        urgent=payload.urgent,
    )
    return Status(201, _answer(order, user))


@router.get("/orders", response=Page[OrderOut])
def list_orders(
    request: HttpRequest,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    state: StateName | None = None,
    pool: bool = False,
    mine: bool = False,
    overdue: bool = False,
    urgent: bool | None = None,
) -> dict[str, Any]:
    """Orders the caller may see, newest first. `pool=true`: open orders a volunteer may take nearby.
    `overdue=true`: requested orders not dispatched within the rules' time."""
    user = caller(request)
    qs = pool_orders(user) if pool else visible_orders(user)
    if mine:
        me = member_of(user)
        qs = qs.filter(volunteer=me) if me else qs.none()
    if state:
        qs = qs.filter(state=state)
    if urgent is not None:
        qs = qs.filter(urgent=urgent)
    hours_by_bank = dict(Rules.objects.values_list("head_office_id", "dispatch_within_hours"))
    if overdue:
        qs = qs.overdue()
    qs = qs.select_related("recipient", "volunteer", "service_item")
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    items = []
    for order in rows:
        roles = party_roles(user, order)
        if pool and not roles:
            roles = {"area_volunteer"}
        items.append(order_out(order, roles, hours_by_bank.get(order.bank_id, 24)))
    return {"items": items, "next_cursor": nxt}


@router.get("/orders/{order_id}", response=OrderOut)
def get_order(request: HttpRequest, order_id: PathId) -> dict[str, Any]:
    """One order. Those who may contact the recipient (staff, operators, the recipient and relatives, the
    volunteer while the order is theirs and active) see the full phone and address here, and only here; each
    such view is on the audit chain."""
    user = caller(request)
    order, roles = access_order(user, order_id)
    if sees_contact_details(roles, order):
        do_view_personal_data(user, [(order.recipient, contact_fields(order.recipient))], via=f"order:{order.pk}")
    return order_out(order, roles, personal=True)


@router.get("/orders/{order_id}/events", response=list[EventOut])
def order_events(request: HttpRequest, order_id: PathId) -> list[dict[str, Any]]:
    """The order's history, oldest first."""
    order, _roles = access_order(caller(request), order_id)
    return [
        {
            "action": e.action,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "actor": (e.actor.display_name or e.actor.username) if e.actor else None,
            "volunteer_id": e.volunteer_id,
            "note": e.note,
            "created_at": e.created_at,
        }
        for e in OrderEvent.objects.filter(order=order).select_related("actor").order_by("pk")
    ]


def _volunteer(user: User, volunteer_id: int, order: Order) -> Member:
    # With the login: the dispatch notification goes to it.
    volunteer = next(iter(Member.objects.select_related("home_org", "user").filter(pk=volunteer_id)), None)
    if volunteer is None:
        raise NotFound(_("找不到该志愿者。"), code="member_not_found")
    if volunteer.bank_id != order.bank_id:
        raise Invalid(_("志愿者属于另一家时间银行。"), fields={"volunteer_id": "other_bank"})
    return volunteer


@router.post("/orders/{order_id}/dispatch", response=OrderOut)
def dispatch(request: HttpRequest, order_id: PathId, payload: DispatchIn) -> dict[str, Any]:
    """派单: staff or an operator sends the order to a volunteer (again, to change the volunteer before acceptance)."""
    user = caller(request)
    with _acting(user, order_id, "dispatch") as (order, _roles):
        done = actions.do_dispatch(user, order, _volunteer(user, payload.volunteer_id, order))
    return _answer(done, user)


@router.post("/orders/{order_id}/take", response=OrderOut)
def take(request: HttpRequest, order_id: PathId, payload: EmptyIn | None = None) -> dict[str, Any]:
    """A volunteer takes an open order from the pool of their area (where the rules allow it)."""
    user = caller(request)
    with _acting(user, order_id, "take") as (order, _roles):
        me = member_of(user)
        assert me is not None
        done = actions.do_take(user, order, me)
    return _answer(done, user)


def _simple(action: str, fn: Any, doc: str) -> None:
    @router.post(f"/orders/{{order_id}}/{action}", response=OrderOut, operation_id=f"order_{action.replace('-', '_')}")
    def endpoint(request: HttpRequest, order_id: PathId, payload: LocationIn | None = None) -> dict[str, Any]:
        user = caller(request)
        payload = payload or LocationIn()
        with _acting(user, order_id, action) as (order, roles):
            # Paper mode: staff and operators of the order's subtree act for its volunteer (the transition table's
            # `on_behalf`), at the time they were told; the volunteer acts for themselves, now.
            on_behalf = actions.on_behalf_for(action, roles, payload.at, payload.source)
            if action in ("check-in", "check-out"):
                done = fn(user, order, payload.latitude, payload.longitude, on_behalf=on_behalf)
            else:
                done = fn(user, order, on_behalf=on_behalf)
        return _answer(done, user)

    endpoint.__doc__ = doc


PAPER_MODE = (
    " Paper mode: staff and operators of the order's subtree may do it for the dispatched volunteer, with `at` (the"
    " time on the paper sheet or said on the phone; default now; not in the future, not before dispatch nor the"
    " order's earlier steps: 422) and `source` (`paper_sheet`, `phone_call`, `in_person`); the audit entry records"
    " the volunteer, the source and the time. The volunteer sends neither (422 `on_behalf_only`)."
)
_simple("accept", actions.do_accept, "接单: the dispatched volunteer accepts." + PAPER_MODE)
_simple(
    "check-in",
    actions.do_check_in,
    "签到: the volunteer arrives (optionally with location); not earlier than the rules' `checkin_early_minutes` "
    "before `scheduled_start` (409 `too_early`; for a recorded `at`, before it)." + PAPER_MODE,
)
_simple(
    "check-out",
    actions.do_check_out,
    "签退: the volunteer leaves; the order waits for confirmation. A recorded `at` is after check-in." + PAPER_MODE,
)


@router.post("/orders/{order_id}/decline", response=OrderOut)
def decline(request: HttpRequest, order_id: PathId, payload: OptionalReasonIn | None = None) -> dict[str, Any]:
    """The dispatched volunteer declines; the order goes back to dispatch."""
    user = caller(request)
    with _acting(user, order_id, "decline") as (order, _roles):
        done = actions.do_decline(user, order, payload.reason if payload else "")
    return _answer(done, user)


@router.post("/orders/{order_id}/no-show", response=OrderOut)
def no_show(request: HttpRequest, order_id: PathId, payload: OptionalReasonIn | None = None) -> dict[str, Any]:
    """The volunteer did not come: recorded, and the order goes back to dispatch."""
    user = caller(request)
    with _acting(user, order_id, "no-show") as (order, _roles):
        done = actions.do_no_show(user, order, payload.reason if payload else "")
    return _answer(done, user)


@router.post("/orders/{order_id}/confirm", response=OrderOut)
def confirm(request: HttpRequest, order_id: PathId, payload: ConfirmIn | None = None) -> dict[str, Any]:
    """Confirmation by the recipient or a relative, by the volunteer with the recipient's `code`, or by staff.
    Posts one ledger transaction. `actual_minutes` is at most the time between check-in and check-out plus
    `checkout_grace_minutes`, and planned plus `confirm_grace_minutes` (409 `exceeds_measured_time`); without
    it, the planned time within that limit. Staff may confirm more only with a `reason`, and resolve a
    dispute. The order's volunteer confirms only with the `code`, even as a relative or staff (409
    `conflict_of_interest`). Staff may give `"payer": "subsidy"` to confirm it paid by the subsidy instead of
    its payer, when the donation pool or the recipient cannot pay (409 `insufficient_pool` or
    `insufficient_balance`); anyone else is 403 `payer_not_allowed`."""
    user = caller(request)
    payload = payload or ConfirmIn()
    wrong: actions.WrongCode | None = None
    with _acting(user, order_id, "confirm") as (order, roles):
        by_staff = STAFF in roles
        by_party = bool(roles & {RECIPIENT, RELATIVE})
        try:
            done = actions.do_confirm(
                user,
                order,
                actual_minutes=payload.actual_minutes,
                code=payload.code,
                by_staff=by_staff,
                by_volunteer=not by_staff and not by_party,
                reason=payload.reason,
                payer=payload.payer,
            )
        except actions.WrongCode as refused:
            wrong = refused  # the failure is counted: it commits with this block, and the refusal is answered after
    if wrong is not None:
        raise wrong
    return _answer(done, user)


@router.post("/orders/{order_id}/review", response=OrderOut)
def review(request: HttpRequest, order_id: PathId, payload: ReviewIn) -> dict[str, Any]:
    """评单: the recipient or a relative rates the service."""
    user = caller(request)
    with _acting(user, order_id, "review") as (order, _roles):
        done = actions.do_review(user, order, rating=payload.rating, comment=payload.comment)
    return _answer(done, user)


@router.post("/orders/{order_id}/cancel", response=OrderOut)
def cancel(request: HttpRequest, order_id: PathId, payload: ReasonIn) -> dict[str, Any]:
    """Cancel with a reason: staff and operators (also during service or a dispute), or the recipient's side
    before the service starts."""
    user = caller(request)
    with _acting(user, order_id, "cancel") as (order, roles):
        done = actions.do_cancel(user, order, reason=payload.reason, by_staff=bool(roles & {STAFF, OPERATOR}))
    return _answer(done, user)


@router.post("/orders/{order_id}/dispute", response=OrderOut)
def dispute(request: HttpRequest, order_id: PathId, payload: ReasonIn) -> dict[str, Any]:
    """The recipient or a relative refuses the completed service; staff then confirm (maybe changed) or cancel."""
    user = caller(request)
    with _acting(user, order_id, "dispute") as (order, _roles):
        done = actions.do_dispute(user, order, reason=payload.reason)
    return _answer(done, user)


@router.post("/service-records", response={201: ServiceRecordOut, 202: PendingApprovalOut}, tags=["orders", "ledger"])
def create_service_record(request: HttpRequest, payload: ServiceRecordIn) -> Status[dict[str, Any]]:
    """Service done outside an order (group activities, talks, clean-up days): staff of the subtree upload it,
    and the volunteer's `earned` is credited `minutes × multiplier` from issuance."""
    user = caller(request)
    volunteer = access_member_to_manage(user, payload.volunteer_id)
    item = ServiceItem.objects.filter(pk=payload.service_item_id).first()
    if item is None:
        raise NotFound(_("找不到该服务项目。"), code="item_not_found")
    recipient = None
    if payload.recipient_id is not None:
        recipient = Member.objects.filter(pk=payload.recipient_id).first()
        if recipient is None:
            raise NotFound(_("找不到该会员。"), code="member_not_found")
    rec, _replayed = records.do_service_record(
        user,
        volunteer=volunteer,
        service_item=item,
        minutes=payload.minutes,
        served_at=payload.served_at,
        recipient=recipient,
        memo=payload.memo,
        idempotency_key=payload.idempotency_key,
    )
    if isinstance(rec, Approval):  # above the approval threshold: waits for a second person
        return Status(202, pending_answer(rec))
    return Status(
        201, {**transaction_out(rec.transaction), "service_record_id": rec.pk, "credited_minutes": rec.credited_minutes}
    )


@router.get("/orders/{order_id}/candidates", response=Page[CandidateOut])
def order_candidates(
    request: HttpRequest,
    order_id: PathId,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Volunteers who can be dispatched to this order, best first: score (0..100) and the reasons for it.
    Certificate and insurance (where the rules require it) are hard filters; then distance, availability
    at the scheduled time, willingness and skills, average rating, and fewer recent hours (fairness).
    Staff and operators of the order's subtree. A shortlist: at most 200 volunteers."""
    user = caller(request)
    order, _roles = access_order(user, order_id, "candidates")
    if not 1 <= limit <= 200:
        raise Invalid(_("每页条数应在 1 到 200 之间。"), fields={"limit": "out_of_range"})
    offset = decode_cursor(cursor) if cursor else 0
    rows = matching.rank_candidates(order, limit=limit + 1, offset=offset)
    more = len(rows) > limit
    page = [vars(c) for c in rows[:limit]]
    # Any volunteer of the bank may be dispatched, but staff see full names only of their own subtree's people.
    scope = staff_scope(user)
    if scope is not None and not user.is_superuser:
        homes = dict(
            Member.objects.filter(pk__in=[c["volunteer_id"] for c in page]).values_list("pk", "home_org__path")
        )
        for c in page:
            if not homes.get(c["volunteer_id"], "").startswith(scope.path):
                c["name"] = mask_name(c["name"])
    return {"items": page, "next_cursor": encode_cursor(offset + limit) if more else None}
