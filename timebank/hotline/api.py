"""The 12349 hotline desk: find a caller, log every call, return visits and welfare checks.

Orders for callers are made with POST /api/v1/orders (`channel: hotline`) and dispatched with
POST /api/v1/orders/{id}/dispatch; a call log links to the order it produced.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Annotated, Any

from django.db.models import F, Max, Window
from django.db.models.functions import RowNumber
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, paginate
from timebank.hotline import actions, queries
from timebank.hotline.access import (
    DESK_ROLES,
    access_call,
    access_member_at_desk,
    desk_scope,
    visible_calls,
    visible_welfare_checks,
)
from timebank.hotline.models import CallLog, ReturnVisit, WelfareCheck
from timebank.hotline.schemas import (
    CallerOut,
    CallIn,
    CallKindCode,
    CallOut,
    CallPatch,
    DueCheckOut,
    DueVisitOut,
    ReturnVisitIn,
    ReturnVisitOut,
    WelfareCheckIn,
    WelfareCheckOut,
)
from timebank.ledger.models import Account
from timebank.lib import clock
from timebank.lib.errors import Forbidden, Invalid
from timebank.lib.masking import mask_phone
from timebank.members.models import Member
from timebank.needs.access import access_need
from timebank.needs.api import CategoryCode, decode_key, encode_key
from timebank.needs.models import OPEN_STATUSES, Need
from timebank.needs.priority import priority
from timebank.orders.access import access_order
from timebank.orders.models import Order
from timebank.orgs.access import access_org, has_role, staff_scope
from timebank.orgs.api import caller
from timebank.orgs.models import User

router = Router(tags=["hotline"])

CursorParam = Annotated[str | None, Query(max_length=100)]
LOOKUP_LIMIT = 20
RECENT_ORDERS = 5


def _limit(limit: int) -> None:
    if not 1 <= limit <= 200:
        raise Invalid(_("每页条数应在 1 到 200 之间。"), fields={"limit": "out_of_range"})


# ---- finding a caller ---------------------------------------------------------------------------------


def caller_summaries(members: list[Member]) -> list[dict[str, Any]]:
    """Needs, recent orders, balances and last checks of several members, in a fixed number of queries."""
    ids = [m.pk for m in members]
    needs: dict[int, list[Need]] = defaultdict(list)
    for need in Need.objects.filter(recipient_id__in=ids, status__in=OPEN_STATUSES).order_by("-pk"):
        needs[need.recipient_id].append(need)
    orders: dict[int, list[Order]] = defaultdict(list)
    recent = (
        Order.objects.filter(recipient_id__in=ids)
        .select_related("service_item")
        .annotate(
            n=Window(RowNumber(), partition_by=[F("recipient_id")], order_by=[F("created_at").desc(), F("pk").desc()])
        )
        .filter(n__lte=RECENT_ORDERS)
        .order_by("-created_at", "-pk")
    )
    for order in recent:
        orders[order.recipient_id].append(order)
    buckets: dict[int, dict[str, int]] = defaultdict(dict)
    for member_id, kind, minutes in Account.objects.filter(member_id__in=ids).values_list(
        "member_id", "kind", "balance_minutes"
    ):
        assert member_id is not None
        buckets[member_id][kind] = minutes
    checks = dict(
        WelfareCheck.objects.filter(member_id__in=ids)
        .values("member_id")
        .annotate(last=Max("checked_at"))
        .values_list("member_id", "last")
    )
    today = clock.localdate()
    out = []
    for m in members:
        mine = {k: buckets[m.pk].get(k, 0) for k in ("earned", "goods", "reserve")}
        out.append(
            {
                "id": m.pk,
                "name": m.name,
                "phone": mask_phone(m.phone),
                "gender": m.gender,
                "age": priority(m.birth_date, [], today).age,
                "home_org_id": m.home_org_id,
                "home_org_name": m.home_org.name,
                "status": m.status,
                "roles": m.roles,
                "recipient_categories": m.recipient_categories,
                "priority": priority(m.birth_date, m.recipient_categories or [], today).as_dict(),
                "open_needs": [
                    {"id": n.pk, "level": n.level, "status": n.status, "notes": n.notes, "created_at": n.created_at}
                    for n in needs[m.pk]
                ],
                "recent_orders": [
                    {
                        "id": o.pk,
                        "state": o.state,
                        "service_item_name": o.service_item.name,
                        "scheduled_start": o.scheduled_start,
                        "created_at": o.created_at,
                    }
                    for o in orders[m.pk]
                ],
                "balance": {"total_minutes": sum(mine.values()), "buckets": mine},
                "last_welfare_check_at": checks.get(m.pk),
            }
        )
    return out


@router.get("/hotline/lookup", response=Page[CallerOut])
def lookup(request: HttpRequest, q: Annotated[str, Query(min_length=1, max_length=50)]) -> dict[str, Any]:
    """Find a caller by name, phone (3 digits or more) or full ID number, within the operator's subtree, with
    what the desk needs on the phone: open needs, recent orders and balance. At most 20 matches."""
    user = caller(request)
    desk_scope(user)
    text = q.replace("\x00", "").strip()
    if not text:
        raise Invalid(_("请输入姓名、电话或身份证号。"), fields={"q": "required"})
    return {"items": caller_summaries(queries.find_callers(user, text, LOOKUP_LIMIT)), "next_cursor": None}


# ---- the call log -------------------------------------------------------------------------------------


def _call(call_id: int) -> CallLog:
    return CallLog.objects.select_related("member", "operator").get(pk=call_id)


def _linked(user: User, order_id: int | None, need_id: int | None) -> tuple[Order | None, Need | None]:
    order = access_order(user, order_id, "dispatch")[0] if order_id is not None else None
    need = access_need(user, need_id) if need_id is not None else None
    return order, need


@router.post("/hotline/calls", response={201: CallOut})
def log_call(request: HttpRequest, payload: CallIn) -> Status[CallLog]:
    """Log a call (operators and staff). Every call is logged, from an unknown caller too."""
    user = caller(request)
    desk_scope(user)
    member = access_member_at_desk(user, payload.member_id) if payload.member_id is not None else None
    order, need = _linked(user, payload.order_id, payload.need_id)
    org = None
    if payload.org_id is not None:
        org = access_org(user, payload.org_id)
        if not has_role(user, DESK_ROLES, org):
            raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")
    elif member is None:
        org = staff_scope(user)
    call = actions.do_log_call(
        user,
        org=org,
        kind=payload.kind,
        summary=payload.summary,
        started_at=payload.started_at or clock.now(),
        ended_at=payload.ended_at,
        member=member,
        phone=payload.phone,
        order=order,
        need=need,
    )
    return Status(201, _call(call.pk))


@router.get("/hotline/calls", response=Page[CallOut])
def list_calls(
    request: HttpRequest,
    limit: int = 50,
    cursor: CursorParam = None,
    member_id: PathId | None = None,
    kind: CallKindCode | None = None,
    order_id: PathId | None = None,
    need_id: PathId | None = None,
    mine: bool = False,
) -> dict[str, Any]:
    """Calls of the caller's subtree, newest first. `mine=true`: the calls I took."""
    user = caller(request)
    qs = visible_calls(user)
    if member_id:
        qs = qs.filter(member_id=member_id)
    if kind:
        qs = qs.filter(kind=kind)
    if order_id:
        qs = qs.filter(order_id=order_id)
    if need_id:
        qs = qs.filter(need_id=need_id)
    if mine:
        qs = qs.filter(operator=user)
    rows, nxt = paginate(qs.select_related("member", "operator"), limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}


@router.get("/hotline/calls/{call_id}", response=CallOut)
def get_call(request: HttpRequest, call_id: PathId) -> CallLog:
    return _call(access_call(caller(request), call_id).pk)


@router.patch("/hotline/calls/{call_id}", response=CallOut)
def patch_call(request: HttpRequest, call_id: PathId, payload: CallPatch) -> CallLog:
    """Finish a call's record: when it ended, a fuller summary, the order or need it produced."""
    user = caller(request)
    call = access_call(user, call_id, write=True)
    data = payload.dict(exclude_unset=True)
    for name, value in data.items():
        if value is None:
            raise Invalid(_("这一项不能为空。"), fields={name: "null"})
    order, need = _linked(user, payload.order_id, payload.need_id)
    actions.do_update_call(user, call, summary=payload.summary, ended_at=payload.ended_at, order=order, need=need)
    return _call(call.pk)


# ---- 满意度回访 ---------------------------------------------------------------------------------------


@router.get("/hotline/return-visits/due", response=Page[DueVisitOut])
def return_visits_due(request: HttpRequest, limit: int = 50, cursor: CursorParam = None) -> dict[str, Any]:
    """满意度回访 queue: confirmed or reviewed orders of the subtree, `return_visit_after_days` after
    confirmation, until a visit is recorded (one that did not get through keeps the order here).
    Like every list, it shows phones masked: the full number is on the member's own endpoint
    (`GET /members/{id}`), where each view is audited."""
    user = caller(request)
    desk_scope(user)
    _limit(limit)
    after = queries.return_visit_days(user)
    qs = queries.due_return_visits(user, after)
    rows, nxt = paginate(qs, limit, cursor)
    items = []
    for o in rows:
        assert o.confirmed_at is not None
        items.append(
            {
                "order_id": o.pk,
                "recipient_id": o.recipient_id,
                "recipient_name": o.recipient.name,
                "recipient_phone": mask_phone(o.recipient.phone),
                "service_item_name": o.service_item.name,
                "volunteer_name": o.volunteer.name if o.volunteer else None,
                "state": o.state,
                "rating": o.rating,
                "confirmed_at": o.confirmed_at,
                "due_since": o.confirmed_at + dt.timedelta(days=after.get(o.bank_id, 0)),
                "attempts": o.attempts,
                "last_attempt_at": o.last_attempt_at,
            }
        )
    return {"items": items, "next_cursor": nxt}


@router.post("/hotline/return-visits", response={201: ReturnVisitOut})
def record_return_visit(request: HttpRequest, payload: ReturnVisitIn) -> Status[ReturnVisit]:
    """Record a return visit (operators and staff of the order's subtree). `satisfaction` (1..5) is required
    when the recipient was reached. A second visit is 409, except after `not_reached`. The call is logged."""
    user = caller(request)
    order, _roles = access_order(user, payload.order_id, "dispatch")
    visit = actions.do_record_return_visit(
        user, order=order, outcome=payload.outcome, satisfaction=payload.satisfaction, note=payload.note
    )
    return Status(201, ReturnVisit.objects.select_related("created_by").get(pk=visit.pk))


@router.get("/hotline/return-visits", response=Page[ReturnVisitOut])
def list_return_visits(
    request: HttpRequest, limit: int = 50, cursor: CursorParam = None, order_id: PathId | None = None
) -> dict[str, Any]:
    """Return visits recorded in the caller's subtree, newest first."""
    user = caller(request)
    scope = desk_scope(user)
    qs = queries.in_scope(ReturnVisit.objects.select_related("created_by"), scope, "order__org__path")
    if order_id:
        qs = qs.filter(order_id=order_id)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}


# ---- 定期巡访 -----------------------------------------------------------------------------------------


@router.get("/hotline/welfare-checks/due", response=Page[DueCheckOut])
def welfare_checks_due(
    request: HttpRequest,
    limit: int = 50,
    cursor: CursorParam = None,
    org_id: PathId | None = None,
    category: CategoryCode | None = None,
) -> dict[str, Any]:
    """定期巡访 due: active recipients of the subtree in the rules' `welfare_check_categories` whose last check
    is older than `welfare_check_every_days`, or who were never checked (those first, then the longest
    waiting; within that, served-first priority). Like every list, it shows phones masked: the full number is on
    the member's own endpoint (`GET /members/{id}`), where each view is audited."""
    user = caller(request)
    desk_scope(user)
    _limit(limit)
    org = access_org(user, org_id) if org_id else None
    ranked = queries.due_welfare_checks(user, org=org, category=category)
    if cursor:
        after = decode_key(cursor, 4)
        ranked = [r for r in ranked if r.key > after]
    page = ranked[:limit]
    members = Member.objects.select_related("home_org").in_bulk([r.member_id for r in page])
    items = []
    for due in page:
        m = members[due.member_id]
        items.append(
            {
                "member_id": m.pk,
                "name": m.name,
                "phone": mask_phone(m.phone),
                "home_org_id": m.home_org_id,
                "home_org_name": m.home_org.name,
                "recipient_categories": m.recipient_categories,
                "priority": due.priority.as_dict(),
                "last_checked_at": due.last_checked_at,
                "due_since": due.due_since,
                "every_days": due.every_days,
            }
        )
    more = len(ranked) > limit
    return {"items": items, "next_cursor": encode_key(page[-1].key) if more and page else None}


@router.post("/hotline/welfare-checks", response={201: WelfareCheckOut})
def record_welfare_check(request: HttpRequest, payload: WelfareCheckIn) -> Status[WelfareCheck]:
    """Record a welfare check (operators and staff of the member's home subtree). With `need`, a need is
    opened in the same action, found by the check's method (phone call, home visit, video call)."""
    user = caller(request)
    member = access_member_at_desk(user, payload.member_id)
    spec = None
    if payload.need is not None:
        spec = actions.NeedSpec(
            level=payload.need.level, notes=payload.need.notes, item_ids=list(payload.need.item_ids)
        )
    check = actions.do_record_welfare_check(
        user,
        member=member,
        method=payload.method,
        found_ok=payload.found_ok,
        health_changed=payload.health_changed,
        note=payload.note,
        checked_at=payload.checked_at,
        need=spec,
    )
    return Status(201, WelfareCheck.objects.select_related("created_by").get(pk=check.pk))


@router.get("/hotline/welfare-checks", response=Page[WelfareCheckOut])
def list_welfare_checks(
    request: HttpRequest, limit: int = 50, cursor: CursorParam = None, member_id: PathId | None = None
) -> dict[str, Any]:
    """Welfare checks of the caller's subtree, newest first."""
    user = caller(request)
    qs = visible_welfare_checks(user).select_related("created_by")
    if member_id:
        qs = qs.filter(member_id=member_id)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}
