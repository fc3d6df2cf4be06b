"""The service loop: 点单 → 派单 → 接单 → service → confirmation → 评单, and its other endings.

Each action locks the order row, checks the state, records an OrderEvent and an audit row, and sends
notifications only after commit.
"""

from __future__ import annotations

import datetime as dt
import math
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import Note, record, record_all
from timebank.catalogue.actions import weighted_minutes
from timebank.catalogue.models import ServiceItem
from timebank.ledger.actions import check_star_gate, do_deposit, member_account_ids
from timebank.ledger.models import Account, AccountKind, TransactionKind
from timebank.ledger.posting import MAX_MINUTES
from timebank.lib import clock
from timebank.lib.errors import Conflict, Forbidden, Invalid
from timebank.lib.events import publish
from timebank.lib.prepared import OneByKey
from timebank.lib.summaries import LOCK_TIMEOUT_SECONDS, Rebuilt, rebuild
from timebank.members.access import member_of
from timebank.members.models import Certificate, InsurancePolicy, Member, MemberStatus, RelativeLink
from timebank.orders import summary
from timebank.orders.access import check_may_order_for
from timebank.orders.events import OrderTransitioned, VolunteerVetted
from timebank.orders.models import Channel, Order, OrderEvent, OrderQuerySet, OrderState, PaperSource, Payer
from timebank.orders.rules import CREDITED_STATES, TRANSITIONS, acts_on_behalf, allows
from timebank.orders.summary import add_order
from timebank.orgs.models import Org, OrgKind, Rules, User

MAX_PLANNED_MINUTES = 12 * 60
MAX_CODE_FAILURES = 5


def _audit(actor: User | None, action: str, order: Order, data: dict[str, Any]) -> None:
    # Subscribers of OrderTransitioned run inside the transition's transaction, after the order is written:
    # the notify app writes its outbox rows there (their delivery is enqueued on commit, so a rollback sends
    # nothing) and answers audit notes, appended with the order's own entry under one lock of the bank's chain.
    notes = [Note(actor, f"order.{action}", order, data)]
    notes += publish(OrderTransitioned(order, action))
    record_all(notes, bank_id=order.bank_id)


def age_on(born: dt.date | None, day: dt.date) -> int | None:
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# Read by every action but the last ones: the SQL compiled once.
_RULES = OneByKey(lambda bank_id: Rules.objects.filter(head_office_id=bank_id))


def _rules(bank_id: int) -> Rules:
    rules = _RULES.get(bank_id)
    if rules is None:
        raise Rules.DoesNotExist("Rules matching query does not exist.")
    return rules


def check_reserve_age(recipient: Member, rules: Rules) -> None:
    if rules.reserve_min_age is None:
        return
    age = age_on(recipient.birth_date, clock.localdate())
    if age is None or age < rules.reserve_min_age:
        raise Conflict(
            _("未满规定年龄，储存的时间还不能用于本人的服务；可以转赠给亲属使用。"),
            code="below_reserve_age",
            fields={"reserve_min_age": rules.reserve_min_age},
        )


def check_may_spend(recipient: Member, rules: Rules) -> None:
    """May `recipient` spend stored time on their own service: the rules' `reserve_min_age` and
    `spend_min_star_level` (409 `below_reserve_age`, `below_star_level`). Gifts to relatives are not spending."""
    check_reserve_age(recipient, rules)
    check_star_gate(recipient, rules)


def _spendable(member: Member) -> int:
    ids = member_account_ids(member.pk)
    return sum(
        Account.objects.filter(pk__in=[ids[AccountKind.EARNED], ids[AccountKind.RESERVE]]).values_list(
            "balance_minutes", flat=True
        )
    )


def _locking(order_id: int) -> OrderQuerySet:
    # of=("self",): lock the order row only. A plain FOR UPDATE would also lock the joined service item,
    # which every order of that item shares: all order actions queued on it, and deadlocked with the
    # KEY SHARE lock that inserting a new order takes on the same item.
    # The parties and their logins come along (read, not locked): the answer and the notifications need them.
    return (
        Order.objects.select_for_update(of=("self",))
        .select_related("org", "service_item", "recipient__user", "volunteer__user")
        .filter(pk=order_id)
    )


# Every action reads the order so: compiled once (138 columns cost more CPU to compile than to read).
_LOCKED = OneByKey(_locking)


def lock_order(order_id: int) -> Order | None:
    """The order read and locked as an action reads it, or None. Call it in a transaction block of its own
    (`with transaction.atomic():`) and hand the order to the action inside that block: the action then reads
    it no more (the API checks access on it and acts on it with one read instead of two)."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_order must run inside the acting transaction")
    order = _LOCKED.get(order_id)
    if order is not None:
        # The block holding the lock: while it is open (a rolled-back savepoint leaves the stack, and its lock
        # is released with it), `_lock` answers this object.
        order._locked_in = connection.atomic_blocks[-1]  # type: ignore[attr-defined]
    return order


def _lock(order: Order) -> Order:
    held = getattr(order, "_locked_in", None)
    if held is not None and any(block is held for block in connection.atomic_blocks):
        return order  # locked and read by lock_order in this transaction
    if not connection.in_atomic_block:
        raise RuntimeError("an order is locked inside the action's transaction")
    locked = _LOCKED.get(order.pk)
    if locked is None:
        raise Order.DoesNotExist("Order matching query does not exist.")
    return locked


def _require(order: Order, action: str, *, by_staff: bool = False) -> None:
    """The transition table (orders.rules.TRANSITIONS) lets an order in its state take `action`, or 409."""
    if not allows(action, order.state, by_staff=by_staff):
        raise Conflict(
            _("订单当前状态下不能做这项操作。"),
            code="invalid_transition",
            fields={"state": order.state, "action": action},
        )


def transition(
    order: Order,
    actor: User | None,
    action: str,
    note: str = "",
    fields: tuple[str, ...] = (),
    data: dict[str, Any] | None = None,
    *,
    by_staff: bool = False,
) -> Order:
    """Move the (locked) order by `action` of the transition table: from a state it allows (`by_staff`: with
    the states only staff may leave) to its target; records the OrderEvent and the audit entry."""
    _require(order, action, by_staff=by_staff)
    from_state = order.state
    to = TRANSITIONS[action].target
    order.state = to
    order.save(update_fields=["state", "updated_at", *fields])
    OrderEvent.objects.create(
        order=order,
        action=action,
        from_state=from_state,
        to_state=to,
        actor=actor if actor and actor.pk else None,
        volunteer_id=order.volunteer_id,
        note=note[:500],
    )
    _audit(
        actor,
        action,
        order,
        {"from": from_state, "to": to, "volunteer": order.volunteer_id, "note": note[:200], **(data or {})},
    )
    if to in CREDITED_STATES and from_state not in CREDITED_STATES:
        add_order(order)  # the services' daily summary, in this transaction (last: its row lock is held shortest)
    return order


@transaction.atomic
def do_create_order(
    actor: User | None,
    *,
    recipient: Member,
    service_item: ServiceItem,
    scheduled_start: dt.datetime,
    planned_minutes: int,
    payer: str,
    channel: str,
    notes: str = "",
    urgent: bool = False,
) -> Order:
    if payer not in Payer.values:
        raise Invalid(_("付款方式只能是 subsidy、recipient 或 pool。"), fields={"payer": "invalid"})
    if channel not in Channel.values:
        raise Invalid(_("渠道只能是 app、hotline、visit 或 staff。"), fields={"channel": "invalid"})
    if not 1 <= planned_minutes <= MAX_PLANNED_MINUTES:
        raise Invalid(_("计划时长应在 1 到 720 分钟之间。"), fields={"planned_minutes": "out_of_range"})
    if timezone.is_naive(scheduled_start):
        raise Invalid(_("时间必须带时区。"), fields={"scheduled_start": "naive"})
    now = clock.now()
    if not now - dt.timedelta(days=7) <= scheduled_start <= now + dt.timedelta(days=366):
        raise Invalid(_("预约时间应在过去 7 天到未来一年之内。"), fields={"scheduled_start": "out_of_range"})
    if len(notes) > 500:
        raise Invalid(_("备注太长。"), fields={"notes": "too_long"})
    if service_item.head_office_id != recipient.bank_id:
        raise Invalid(_("服务项目属于另一家时间银行。"), fields={"service_item_id": "other_bank"})
    if not service_item.active:
        raise Conflict(_("这个服务项目已停用。"), code="item_inactive")
    if recipient.status != MemberStatus.ACTIVE:
        raise Conflict(_("会员不是正常状态，不能办理。"), code="member_not_active")
    if actor is not None and actor.pk:
        check_may_order_for(actor, recipient)  # a login on hold after a reset does not order for the family
    rules = _rules(recipient.bank_id)
    multiplier = Decimal(str(rules.multipliers[service_item.tier]))
    if payer == Payer.RECIPIENT:
        check_may_spend(recipient, rules)
        needed = weighted_minutes(planned_minutes, multiplier)
        if _spendable(recipient) + rules.overdraft_minutes < needed:
            raise Conflict(
                _("时间余额不足以支付这次服务。"), code="insufficient_balance", fields={"needed_minutes": needed}
            )
    order = Order.objects.create(
        bank_id=recipient.bank_id,
        org=recipient.home_org,
        recipient=recipient,
        service_item=service_item,
        payer=payer,
        channel=channel,
        urgent=urgent,
        scheduled_start=scheduled_start,
        planned_minutes=planned_minutes,
        multiplier=multiplier,
        notes=notes.strip(),
        code=f"{secrets.randbelow(10**6):06d}",
        created_by=actor if actor and actor.pk else None,
    )
    OrderEvent.objects.create(order=order, action="create", from_state="", to_state=order.state, actor=order.created_by)
    _audit(
        actor,
        "create",
        order,
        {"recipient": recipient.pk, "item": service_item.pk, "payer": payer, "channel": channel, "urgent": urgent},
    )
    return order


def check_volunteer_eligible(volunteer: Member, service_item: ServiceItem, today: dt.date | None = None) -> None:
    """Who may be credited for serving `service_item`, in dispatch and in service records alike: an active
    volunteer not suspended from dispatch, with a valid certificate when the item requires one (409)."""
    if not volunteer.is_volunteer or volunteer.status != MemberStatus.ACTIVE:
        raise Conflict(_("这位会员不是在册的志愿者。"), code="not_a_volunteer")
    today = today or clock.localdate()
    publish(VolunteerVetted(volunteer, today))  # a suspension from dispatch (奖惩, evaluation) is in force: 409
    kind = service_item.requires_certificate
    if kind and not Certificate.objects.filter(member=volunteer, kind=kind).valid_on(today).exists():
        raise Conflict(
            _("这项服务需要相应资质，该志愿者没有有效证书。"),
            code="certificate_required",
            fields={"requires_certificate": kind},
        )


def check_volunteer_for(order: Order, volunteer: Member) -> None:
    """The hard rules for who may serve: active volunteer of the bank, certified and insured as required."""
    if volunteer.bank_id != order.bank_id:
        raise Invalid(_("志愿者属于另一家时间银行。"), fields={"volunteer_id": "other_bank"})
    if not volunteer.is_volunteer or volunteer.status != MemberStatus.ACTIVE:
        raise Conflict(_("这位会员不是在册的志愿者。"), code="not_a_volunteer")
    rules = _rules(order.bank_id)
    check_no_conflict(order, volunteer, rules)
    today = clock.localdate()
    check_volunteer_eligible(volunteer, order.service_item, today)
    if (
        rules.require_insurance_to_dispatch
        and not InsurancePolicy.objects.filter(member=volunteer).in_force(today).exists()
    ):
        raise Conflict(_("规则要求志愿者有有效的意外险才能派单。"), code="insurance_required")


def check_no_conflict(order: Order, volunteer: Member, rules: Rules) -> None:
    """Conflicts of interest: nobody serves an order for themselves, nor for a linked relative unless the head
    office's rules allow it; they would credit themselves from the elder's account or the subsidy."""
    if volunteer.pk == order.recipient_id:
        raise Conflict(_("志愿者不能为自己服务。"), code="conflict_of_interest", fields={"volunteer_id": "self"})
    if (
        not rules.serve_relatives
        and RelativeLink.objects.filter(member_id=order.recipient_id, relative_id=volunteer.pk).exists()
    ):
        raise Conflict(
            _("这位志愿者是服务对象的亲属，按本行规则不能为亲属服务。"),
            code="conflict_of_interest",
            fields={"volunteer_id": "relative"},
        )


def served_by(actor: User | None, order: Order) -> bool:
    """Whether the caller is the order's volunteer, whatever other role they also hold (relative, staff)."""
    if actor is None or not actor.pk or order.volunteer_id is None:
        return False
    me = member_of(actor)
    return me is not None and me.pk == order.volunteer_id


@transaction.atomic
def do_dispatch(actor: User | None, order: Order, volunteer: Member) -> Order:
    order = _lock(order)
    check_volunteer_for(order, volunteer)
    order.volunteer = volunteer
    order.dispatched_at = clock.now()
    return transition(
        order,
        actor,
        "dispatch",
        fields=("volunteer", "dispatched_at"),
    )


@transaction.atomic
def do_take(actor: User | None, order: Order, volunteer: Member) -> Order:
    """A volunteer takes an open order from the pool of their area: taking is accepting."""
    order = _lock(order)
    if not allows("take", order.state):
        raise Conflict(_("这个订单已经有人接了。"), code="invalid_transition", fields={"state": order.state})
    check_volunteer_for(order, volunteer)
    now = clock.now()
    order.volunteer = volunteer
    order.dispatched_at = order.accepted_at = now
    return transition(
        order,
        actor,
        "take",
        fields=("volunteer", "dispatched_at", "accepted_at"),
    )


# ---- paper mode: staff or an operator act for the order's volunteer -------------------------------------------

# A clock a little ahead of the server's is not "the future" (a page's default of now, a phone's clock).
CLOCK_SKEW = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class OnBehalf:
    """Paper mode (the contract's "Paper mode"): staff or an operator of the order's subtree accept, check in or
    check out for the dispatched volunteer, who has no smartphone. `at`: when it happened, as written on the paper
    sign-in sheet or said on the phone (None: now); `source`: how they know (`PaperSource`). Who may act so is the
    transition table's `on_behalf` (orders.rules.acts_on_behalf)."""

    at: dt.datetime | None = None
    source: str | None = None


def on_behalf_for(
    action: str, roles: set[str], at: dt.datetime | None = None, source: str | None = None
) -> OnBehalf | None:
    """How a caller with `roles` does `action`: for the order's volunteer (an OnBehalf with the time and source
    they give), or as the volunteer themselves (None). A volunteer acting for themselves gives neither: the time
    is the server's clock (422 on the field, nothing written)."""
    if acts_on_behalf(action, roles):
        return OnBehalf(at=at, source=source)
    if at is not None or source is not None:
        raise Invalid(
            _("只有工作人员代为操作时才能填写时间和来源。"),
            fields={"at" if at is not None else "source": "on_behalf_only"},
        )
    return None


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _recorded_at(
    order: Order, on_behalf: OnBehalf | None, steps: tuple[tuple[dt.datetime | None, str], ...]
) -> dt.datetime:
    """When the step happened: now, or the time staff recorded for the volunteer (422 on `at`, nothing written).

    A recorded time is not in the future (beyond CLOCK_SKEW), not before the order was dispatched, and not before
    the order's earlier steps (`steps`: each earlier time, with the error code it names). A paper sheet says the
    minute: a time in the same minute as the earlier step counts as that step's time, so the steps stay in order."""
    now = clock.now()
    if on_behalf is None or on_behalf.at is None:
        return now
    at = on_behalf.at
    if timezone.is_naive(at):
        raise Invalid(_("时间必须带时区。"), fields={"at": "naive"})
    if at > now + CLOCK_SKEW:
        raise Invalid(_("记录的时间不能在将来。"), fields={"at": "in_future"})
    for earlier, code in ((order.dispatched_at, "before_dispatch"), *steps):
        if earlier is None:
            continue
        if at < _minute(earlier):
            raise Invalid(_("记录的时间早于订单的上一步（派单、接单或签到）。"), fields={"at": code})
        at = max(at, earlier)
    return min(at, now)


def _check_source(on_behalf: OnBehalf | None) -> None:
    if on_behalf is not None and on_behalf.source is not None and on_behalf.source not in PaperSource.values:
        raise Invalid(_("来源只能是纸质签到表、电话或当面。"), fields={"source": "invalid"})


def _on_behalf_data(order: Order, on_behalf: OnBehalf | None, at: dt.datetime) -> tuple[str, dict[str, Any]]:
    """The order event's note and the audit entry's data when staff acted for the volunteer: for whom, how they
    know, and the time they recorded (the actor is the staff login)."""
    if on_behalf is None:
        return "", {}
    source = on_behalf.source
    label = str(PaperSource(source).label) if source in PaperSource.values else ""
    note = str(_("代为操作")) + (f"（{label}）" if label else "")
    return note, {"on_behalf_of": order.volunteer_id, "source": source, "at": timezone.localtime(at).isoformat()}


@transaction.atomic
def do_accept(actor: User | None, order: Order, *, on_behalf: OnBehalf | None = None) -> Order:
    """接单: the volunteer, or staff for them (`on_behalf`, paper mode)."""
    _check_source(on_behalf)
    order = _lock(order)
    _require(order, "accept")
    assert order.volunteer is not None
    check_no_conflict(order, order.volunteer, _rules(order.bank_id))  # a relative link made since dispatch
    order.accepted_at = _recorded_at(order, on_behalf, ())
    note, data = _on_behalf_data(order, on_behalf, order.accepted_at)
    return transition(order, actor, "accept", note=note, fields=("accepted_at",), data=data)


@transaction.atomic
def do_decline(actor: User | None, order: Order, reason: str = "") -> Order:
    """The volunteer says no: the order goes back to dispatch."""
    order = _lock(order)
    _require(order, "decline")
    declined = order.volunteer_id
    order.volunteer = None
    order.dispatched_at = None
    moved = transition(
        order,
        actor,
        "decline",
        note=reason,
        fields=("volunteer", "dispatched_at"),
    )
    OrderEvent.objects.filter(order=order, action="decline").order_by("-pk").update(volunteer_id=declined)
    return moved


@transaction.atomic
def do_no_show(actor: User | None, order: Order, note: str = "") -> Order:
    """The volunteer did not come: recorded against them, and the order goes back to dispatch."""
    order = _lock(order)
    _require(order, "no-show")
    missing = order.volunteer_id
    order.volunteer = None
    order.dispatched_at = order.accepted_at = None
    moved = transition(
        order,
        actor,
        "no-show",
        note=note,
        fields=("volunteer", "dispatched_at", "accepted_at"),
    )
    OrderEvent.objects.filter(order=order, action="no-show").order_by("-pk").update(volunteer_id=missing)
    return moved


def _check_location(lat: Decimal | None, lng: Decimal | None) -> None:
    if (lat is None) != (lng is None):
        raise Invalid(_("经纬度需要同时提供。"), fields={"latitude": "pair"})
    if lat is not None and lng is not None and (abs(lat) > 90 or abs(lng) > 180):
        raise Invalid(_("坐标超出范围。"), fields={"latitude": "out_of_range"})


def _check_not_located(on_behalf: OnBehalf | None, latitude: Decimal | None) -> None:
    # A location says where the volunteer's phone was; staff acting for them have only their own.
    if on_behalf is not None and latitude is not None:
        raise Invalid(_("代为签到、签退时不能提供位置。"), fields={"latitude": "on_behalf"})


@transaction.atomic
def do_check_in(
    actor: User | None,
    order: Order,
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
    *,
    on_behalf: OnBehalf | None = None,
) -> Order:
    """签到: the volunteer (optionally with location), or staff for them (`on_behalf`, paper mode, at the recorded
    time). Not earlier than the rules' `checkin_early_minutes` before `scheduled_start` (409 `too_early`)."""
    _check_location(latitude, longitude)
    _check_not_located(on_behalf, latitude)
    _check_source(on_behalf)
    order = _lock(order)
    _require(order, "check-in")
    now = _recorded_at(order, on_behalf, ((order.accepted_at, "before_accept"),))
    early = _rules(order.bank_id).checkin_early_minutes
    if now < order.scheduled_start - dt.timedelta(minutes=early):
        # Time on the clock: a service scheduled later cannot be started (and so credited) now.
        raise Conflict(
            _("还没到预约时间：最早可在开始前 %(minutes)s 分钟签到。") % {"minutes": early},
            code="too_early",
            fields={"scheduled_start": order.scheduled_start, "checkin_early_minutes": early},
        )
    order.check_in_at = now
    order.check_in_latitude, order.check_in_longitude = latitude, longitude
    note, data = _on_behalf_data(order, on_behalf, now)
    return transition(
        order,
        actor,
        "check-in",
        note=note,
        fields=("check_in_at", "check_in_latitude", "check_in_longitude"),
        data=data,
    )


@transaction.atomic
def do_check_out(
    actor: User | None,
    order: Order,
    latitude: Decimal | None = None,
    longitude: Decimal | None = None,
    *,
    on_behalf: OnBehalf | None = None,
) -> Order:
    """签退: the volunteer, or staff for them (`on_behalf`, paper mode: the recorded time is after check-in)."""
    _check_location(latitude, longitude)
    _check_not_located(on_behalf, latitude)
    _check_source(on_behalf)
    order = _lock(order)
    _require(order, "check-out")
    order.check_out_at = _recorded_at(
        order, on_behalf, ((order.accepted_at, "before_accept"), (order.check_in_at, "before_check_in"))
    )
    recorded = on_behalf.at if on_behalf is not None else None
    if recorded is not None and order.check_in_at is not None and recorded <= order.check_in_at:
        raise Invalid(_("签退时间必须晚于签到时间。"), fields={"at": "before_check_in"})
    order.check_out_latitude, order.check_out_longitude = latitude, longitude
    note, data = _on_behalf_data(order, on_behalf, order.check_out_at)
    return transition(
        order,
        actor,
        "check-out",
        note=note,
        fields=("check_out_at", "check_out_latitude", "check_out_longitude"),
        data=data,
    )


def checked_minutes(order: Order) -> int:
    if order.check_in_at is None or order.check_out_at is None:
        return order.planned_minutes
    return max(1, math.ceil((order.check_out_at - order.check_in_at).total_seconds() / 60))


def creditable_minutes(order: Order, rules: Rules) -> int:
    """The most an order may be confirmed for without a staff reason: the measured time between check-in and
    check-out plus `checkout_grace_minutes`, and never more than planned plus `confirm_grace_minutes`."""
    cap = order.planned_minutes + rules.confirm_grace_minutes
    if order.check_in_at is not None and order.check_out_at is not None:
        cap = min(cap, checked_minutes(order) + rules.checkout_grace_minutes)
    return cap


def default_minutes(order: Order, rules: Rules) -> int:
    """What a confirmation without `actual_minutes` credits: the planned time, unless the clock says less."""
    return min(order.planned_minutes, creditable_minutes(order, rules))


def do_confirm(
    actor: User | None,
    order: Order,
    *,
    actual_minutes: int | None = None,
    code: str | None = None,
    by_staff: bool = False,
    by_volunteer: bool = False,
    reason: str = "",
    payer: str | None = None,
) -> Order:
    """Credit the volunteer and debit the payer in one ledger transaction. Once only, by state.

    The order's own volunteer confirms only with the recipient's code, even when they are also the recipient's
    relative or staff (conflicts of interest). More than `creditable_minutes` only by staff, with a reason.
    `payer="subsidy"`: staff confirm it paid by the subsidy instead of its payer (a donation pool or a recipient
    that cannot pay would otherwise leave the order unconfirmed), as staff may choose the subsidy when ordering."""
    reason = reason.strip()
    if len(reason) > 500:
        raise Invalid(_("原因太长。"), fields={"reason": "too_long"})
    if payer is not None and payer != Payer.SUBSIDY:
        raise Invalid(_("确认时只能改由政府补贴支付。"), fields={"payer": "invalid"})
    if served_by(actor, order):
        if code is None and (by_staff or not by_volunteer):
            raise Conflict(
                _("您是这个订单的志愿者，只能凭老人告诉您的确认码确认。"),
                code="conflict_of_interest",
                fields={"code": "required"},
            )
        by_staff, by_volunteer = False, True
    if payer is not None and not by_staff:
        raise Forbidden(_("只有工作人员或热线坐席可以选择补贴或捐赠池付款。"), code="payer_not_allowed")
    if by_volunteer and not by_staff:
        # A wrong code is counted in its own transaction: the count must survive the refusal.
        with transaction.atomic():
            locked = _lock(order)
            _require(locked, "confirm")
            if locked.code_failures >= MAX_CODE_FAILURES:
                raise Conflict(_("确认码输错次数过多，请老人或工作人员确认。"), code="code_locked")
            wrong = code is None or not secrets.compare_digest(str(code), locked.code)
            if wrong:
                locked.code_failures += 1
                locked.save(update_fields=["code_failures"])
        if wrong:
            raise WrongCode()
    return _confirm(actor, order, actual_minutes=actual_minutes, by_staff=by_staff, reason=reason, payer=payer)


@transaction.atomic
def _confirm(
    actor: User | None,
    order: Order,
    *,
    actual_minutes: int | None,
    by_staff: bool,
    reason: str,
    payer: str | None = None,
) -> Order:
    order = _lock(order)
    _require(order, "confirm", by_staff=by_staff)
    changed: dict[str, Any] = {}
    if payer is not None and payer != order.payer:
        changed = {"payer": payer, "payer_was": order.payer}
        order.payer = payer
    rules = _rules(order.bank_id)
    cap = creditable_minutes(order, rules)
    minutes = actual_minutes if actual_minutes is not None else default_minutes(order, rules)
    if not 1 <= minutes <= MAX_PLANNED_MINUTES + rules.confirm_grace_minutes:
        raise Invalid(_("实际时长不合理。"), fields={"actual_minutes": "out_of_range"})
    if minutes > cap and not (by_staff and reason):
        # Time on the clock: nobody credits more than was measured (plus grace), except staff who say why.
        fields: dict[str, Any] = {"actual_minutes": "too_high", "max_minutes": cap}
        if by_staff:
            fields["reason"] = "required"
        raise Conflict(
            _("确认的时长超过了签到到签退的时间（最多 %(minutes)s 分钟）。") % {"minutes": cap},
            code="exceeds_measured_time",
            fields=fields,
        )
    credited = weighted_minutes(minutes, order.multiplier)
    if credited > MAX_MINUTES:
        raise Invalid(_("实际时长不合理。"), fields={"actual_minutes": "out_of_range"})
    assert order.volunteer is not None
    if order.payer == Payer.RECIPIENT:
        check_may_spend(order.recipient, rules)
    tx, _replayed = do_deposit(
        actor,
        volunteer=order.volunteer,
        minutes=credited,
        payer=order.payer,
        payer_member=order.recipient if order.payer == Payer.RECIPIENT else None,
        kind=TransactionKind.SERVICE_REDEMPTION if order.payer == Payer.RECIPIENT else TransactionKind.DEPOSIT,
        memo=f"订单 #{order.pk} {order.service_item.name}",
    )
    order.actual_minutes = minutes
    order.credited_minutes = credited
    order.transaction = tx
    order.confirmed_at = clock.now()
    note = "; ".join(filter(None, ["dispute resolved" if order.state == OrderState.DISPUTED else "", reason]))
    measured = checked_minutes(order) if order.check_in_at and order.check_out_at else None
    times: dict[str, Any] = {"actual_minutes": minutes, "measured_minutes": measured, "max_minutes": cap}
    if reason:
        times["reason"] = reason[:500]
        times["over_measured_time"] = minutes > cap
    return transition(
        order,
        actor,
        "confirm",
        note=note,
        fields=("actual_minutes", "credited_minutes", "transaction", "confirmed_at", *(("payer",) if changed else ())),
        data={**times, **changed},
        by_staff=by_staff,
    )


class WrongCode(Invalid):
    code = "wrong_code"

    def __init__(self) -> None:
        super().__init__(_("确认码不对，请向老人核对。"), fields={"code": "wrong"})


@transaction.atomic
def do_review(actor: User | None, order: Order, *, rating: int, comment: str = "") -> Order:
    if not 1 <= rating <= 5:
        raise Invalid(_("评分应为 1 到 5。"), fields={"rating": "out_of_range"})
    if len(comment) > 500:
        raise Invalid(_("评价太长。"), fields={"comment": "too_long"})
    order = _lock(order)
    if served_by(actor, order):
        raise Conflict(_("志愿者不能评价自己服务的订单。"), code="conflict_of_interest", fields={"rating": "own_order"})
    order.rating = rating
    order.review_comment = comment.strip()
    order.reviewed_at = clock.now()
    return transition(
        order,
        actor,
        "review",
        fields=("rating", "review_comment", "reviewed_at"),
    )


@transaction.atomic
def do_cancel(actor: User | None, order: Order, *, reason: str, by_staff: bool) -> Order:
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise Invalid(_("请填写取消原因（500 字以内）。"), fields={"reason": "required"})
    order = _lock(order)
    order.cancel_reason = reason
    return transition(order, actor, "cancel", note=reason, fields=("cancel_reason",), by_staff=by_staff)


@transaction.atomic
def do_dispute(actor: User | None, order: Order, *, reason: str) -> Order:
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise Invalid(_("请说明哪里不对（500 字以内）。"), fields={"reason": "required"})
    order = _lock(order)
    order.dispute_reason = reason
    return transition(order, actor, "dispute", note=reason, fields=("dispute_reason",))


def require_staff_payer(payer: str, roles: set[str]) -> None:
    if payer in (Payer.SUBSIDY, Payer.POOL) and not roles:
        raise Forbidden(_("只有工作人员或热线坐席可以选择补贴或捐赠池付款。"), code="payer_not_allowed")


@transaction.atomic
def do_rebuild_service_summary(
    actor: User | None, bank: Org, *, dry_run: bool = False, lock_timeout: float = LOCK_TIMEOUT_SECONDS
) -> Rebuilt:
    """Make the bank's services' daily summary equal to its credited orders and posted records counted again (`manage.py
    rebuild_summaries`): only the rows that differ are written, under a lock that holds off the table's writers until
    commit (see `timebank.lib.summaries`). Audited in the global chain, not the bank's: the bank's writers may hold its
    chain head while they wait for the table, and the rebuild must not wait for them in turn."""
    if bank.kind != OrgKind.HEAD_OFFICE:
        raise Invalid(_("汇总按总行保存：%(name)s 不是总行。") % {"name": bank.name}, code="not_head_office")
    done = rebuild(
        summary.SUMMARY,
        bank.pk,
        summary.kept_rows_sql("AND {t}.bank_id = %s"),
        [bank.pk, bank.pk],
        dry_run=dry_run,
        lock_timeout=lock_timeout,
    )
    if done.rows and not dry_run:
        record(actor, "summary.rebuild", bank, bank_id=None, data=done.as_data())
    return done
