"""The 12349 desk: call logs, satisfaction return visits (满意度回访) and welfare checks (定期巡访)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.hotline.models import CallKind, CallLog, CheckMethod, ReturnVisit, ReturnVisitOutcome, WelfareCheck
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.lib.phone import PHONE_RE
from timebank.members.models import Member
from timebank.needs.actions import do_create_need, do_link_order
from timebank.needs.models import FoundBy, Need
from timebank.orders.models import Order
from timebank.orgs.models import Org, User

# Calls and checks are often written up after the fact, but not months later.
MAX_BACKDATE = dt.timedelta(days=30)
CLOCK_SKEW = dt.timedelta(minutes=5)
FOUND_BY_METHOD = {CheckMethod.PHONE: FoundBy.PHONE_CALL, CheckMethod.VISIT: FoundBy.HOME_VISIT}
FOUND_BY_METHOD |= {CheckMethod.VIDEO: FoundBy.VIDEO_CALL}


def _by(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def _text(value: str, name: str, *, required: bool, max_length: int = 500) -> str:
    text = value.strip()
    if "\x00" in text:
        raise Invalid(_("文字含有无效字符。"), fields={name: "invalid"})
    if required and not text:
        raise Invalid(_("请填写这一项。"), fields={name: "required"})
    if len(text) > max_length:
        raise Invalid(_("内容太长。"), fields={name: "too_long"})
    return text


def check_moment(value: dt.datetime, name: str, now: dt.datetime) -> dt.datetime:
    if timezone.is_naive(value):
        raise Invalid(_("时间必须带时区。"), fields={name: "naive"})
    if not now - MAX_BACKDATE <= value <= now + CLOCK_SKEW:
        raise Invalid(_("时间应在过去 30 天之内，且不能晚于现在。"), fields={name: "out_of_range"})
    return value


def _belongs(member: Member | None, order: Order | None, need: Need | None) -> None:
    if member is not None and order is not None and order.recipient_id != member.pk:
        raise Invalid(_("订单不是这位来电人的。"), fields={"order_id": "other_member"})
    if member is not None and need is not None and need.recipient_id != member.pk:
        raise Invalid(_("需求不是这位来电人的。"), fields={"need_id": "other_member"})
    if order is not None and need is not None and order.recipient_id != need.recipient_id:
        raise Invalid(_("订单和需求不属于同一位服务对象。"), fields={"need_id": "other_member"})


@transaction.atomic
def do_log_call(
    actor: User | None,
    *,
    org: Org | None,
    kind: str,
    summary: str,
    started_at: dt.datetime,
    ended_at: dt.datetime | None = None,
    member: Member | None = None,
    phone: str = "",
    order: Order | None = None,
    need: Need | None = None,
) -> CallLog:
    """Log a call. `org` places a call from an unknown caller; a known caller's call belongs to their home.
    A call that produced an order for a need links the two (the need is then in progress)."""
    if kind not in CallKind.values:
        raise Invalid(_("未知的来电类型。"), fields={"kind": "invalid"})
    summary = _text(summary, "summary", required=True)
    phone = _text(phone, "phone", required=False, max_length=20).replace(" ", "")
    if phone and not PHONE_RE.match(phone):
        raise Invalid(_("电话号码格式不对。"), fields={"phone": "invalid"})
    now = clock.now()
    check_moment(started_at, "started_at", now)
    if ended_at is not None:
        check_moment(ended_at, "ended_at", now)
        if ended_at < started_at:
            raise Invalid(_("结束时间不能早于开始时间。"), fields={"ended_at": "before_start"})
    if member is None and order is not None:
        member = order.recipient
    if member is None and need is not None:
        member = need.recipient
    _belongs(member, order, need)
    if member is not None:
        org = member.home_org
    if org is None or org.head_office_id is None:
        raise Invalid(_("不知道来电人时，请指明这通电话属于哪个机构。"), fields={"org_id": "required"})
    if member is not None and not phone:
        phone = member.phone
    if order is not None and need is not None:
        do_link_order(actor, need, order)
    call = CallLog.objects.create(
        bank_id=org.head_office_id,
        org=org,
        operator=_by(actor),
        member=member,
        phone=phone,
        kind=kind,
        summary=summary,
        started_at=started_at,
        ended_at=ended_at,
        order=order,
        need=need,
    )
    record(
        actor,
        "call.log",
        call,
        bank_id=call.bank_id,
        data={"kind": kind, "member": call.member_id, "order": call.order_id, "need": call.need_id},
    )
    return call


@transaction.atomic
def do_update_call(
    actor: User | None,
    call: CallLog,
    *,
    summary: str | None = None,
    ended_at: dt.datetime | None = None,
    order: Order | None = None,
    need: Need | None = None,
) -> CallLog:
    """Finish a call's record: its end, a fuller summary, and the order or need it produced."""
    call = CallLog.objects.select_for_update(of=("self",)).select_related("member").get(pk=call.pk)
    changed: list[str] = []
    if summary is not None:
        call.summary = _text(summary, "summary", required=True)
        changed.append("summary")
    if ended_at is not None:
        check_moment(ended_at, "ended_at", clock.now())
        if ended_at < call.started_at:
            raise Invalid(_("结束时间不能早于开始时间。"), fields={"ended_at": "before_start"})
        call.ended_at = ended_at
        changed.append("ended_at")
    new_order = order if order is not None else call.order
    new_need = need if need is not None else call.need
    member = call.member
    if member is None and new_order is not None:
        member = new_order.recipient
    if member is None and new_need is not None:
        member = new_need.recipient
    _belongs(member, new_order, new_need)
    if member is not None and call.member_id is None:
        if member.bank_id != call.bank_id:
            raise Invalid(_("会员属于另一家时间银行。"), fields={"order_id": "other_bank"})
        call.member = member
        changed.append("member")
    if order is not None and order.pk != call.order_id:
        if call.order_id is not None:
            raise Conflict(
                _("这通电话已经关联了另一个订单。"), code="already_linked", fields={"order_id": call.order_id}
            )
        call.order = order
        changed.append("order")
    if need is not None and need.pk != call.need_id:
        if call.need_id is not None:
            raise Conflict(_("这通电话已经关联了另一项需求。"), code="already_linked", fields={"need_id": call.need_id})
        call.need = need
        changed.append("need")
    if new_order is not None and new_need is not None and ("order" in changed or "need" in changed):
        do_link_order(actor, new_need, new_order)
    if changed:
        call.save(update_fields=changed)
    record(actor, "call.update", call, bank_id=call.bank_id, data={"fields": changed})
    return call


@transaction.atomic
def do_record_return_visit(
    actor: User | None, *, order: Order, outcome: str, satisfaction: int | None, note: str = ""
) -> ReturnVisit:
    """满意度回访. One per order; only "not reached" may be tried again. The call is logged too."""
    if outcome not in ReturnVisitOutcome.values:
        raise Invalid(_("回访结果只能是 reached、not_reached 或 refused。"), fields={"outcome": "invalid"})
    if outcome == ReturnVisitOutcome.REACHED:
        if satisfaction is None or not 1 <= satisfaction <= 5:
            raise Invalid(_("回访接通时请填写 1 到 5 的满意度。"), fields={"satisfaction": "required"})
    elif satisfaction is not None:
        raise Invalid(_("没有接通或拒绝回访时不能填写满意度。"), fields={"satisfaction": "not_reached"})
    note = _text(note, "note", required=False)
    # Lock the order: two operators recording the same visit at once must not both succeed.
    order = (
        Order.objects.select_for_update(of=("self",))
        .select_related("recipient", "recipient__home_org")
        .get(pk=order.pk)
    )
    if not order.is_credited:
        raise Conflict(_("订单确认完成后才能回访。"), code="order_not_completed", fields={"state": order.state})
    if ReturnVisit.objects.filter(order=order).exclude(outcome=ReturnVisitOutcome.NOT_REACHED).exists():
        raise Conflict(_("这个订单已经回访过了。"), code="already_visited")
    recipient = order.recipient
    now = clock.now()
    call = CallLog.objects.create(
        bank_id=order.bank_id,
        org=recipient.home_org,
        operator=_by(actor),
        member=recipient,
        phone=recipient.phone,
        kind=CallKind.RETURN_VISIT,
        summary=note or str(ReturnVisitOutcome(outcome).label),
        started_at=now,
        order=order,
    )
    try:
        with transaction.atomic():
            visit = ReturnVisit.objects.create(
                bank_id=order.bank_id,
                order=order,
                call=call,
                outcome=outcome,
                satisfaction=satisfaction,
                note=note,
                created_by=_by(actor),
            )
    except IntegrityError:
        raise Conflict(_("这个订单已经回访过了。"), code="already_visited") from None
    record(
        actor,
        "order.return_visit",
        visit,
        bank_id=order.bank_id,
        data={"order": order.pk, "outcome": outcome, "satisfaction": satisfaction},
    )
    return visit


@dataclass
class NeedSpec:
    """A need opened in the same action as a welfare check."""

    level: str = "general"
    notes: str = ""
    item_ids: list[int] = field(default_factory=list)


@transaction.atomic
def do_record_welfare_check(
    actor: User | None,
    *,
    member: Member,
    method: str,
    found_ok: bool,
    health_changed: bool,
    note: str = "",
    checked_at: dt.datetime | None = None,
    need: NeedSpec | None = None,
) -> WelfareCheck:
    """定期巡访. A call or video call is logged as a call; a changed health may open a need at once."""
    if method not in CheckMethod.values:
        raise Invalid(_("巡访方式只能是 phone、visit 或 video。"), fields={"method": "invalid"})
    note = _text(note, "note", required=False)
    now = clock.now()
    checked_at = check_moment(checked_at, "checked_at", now) if checked_at is not None else now
    if not member.is_recipient:
        raise Invalid(_("只有服务对象需要定期巡访。"), code="not_a_recipient", fields={"member_id": "not_a_recipient"})
    opened = None
    if need is not None:
        opened = do_create_need(
            actor,
            recipient=member,
            level=need.level,
            found_by=FOUND_BY_METHOD[CheckMethod(method)],
            item_ids=need.item_ids,
            notes=need.notes or note,
        )
    call = None
    if method in (CheckMethod.PHONE, CheckMethod.VIDEO):
        call = CallLog.objects.create(
            bank_id=member.bank_id,
            org=member.home_org,
            operator=_by(actor),
            member=member,
            phone=member.phone,
            kind=CallKind.WELFARE_CHECK,
            summary=note or str(CheckMethod(method).label),
            started_at=checked_at,
            need=opened,
        )
    check = WelfareCheck.objects.create(
        bank_id=member.bank_id,
        member=member,
        org=member.home_org,
        method=method,
        found_ok=found_ok,
        health_changed=health_changed,
        note=note,
        need=opened,
        call=call,
        checked_at=checked_at,
        created_by=_by(actor),
    )
    record(
        actor,
        "member.welfare_check",
        check,
        bank_id=member.bank_id,
        data={"member": member.pk, "method": method, "found_ok": found_ok, "need": check.need_id},
    )
    return check
