"""Four eyes (四眼原则) on large credits.

A positive adjustment, a service record or an activity's credit above the head office's
`approval_threshold_minutes` is not posted: the ledger action opens an `Approval` instead
(`open_approval`). A second person approves it (`do_approve`), which posts it through the same action's
posting half, exactly once, or rejects it (`do_reject`).

The threshold is for people. A call without an actor (settlement, the demo, system jobs) posts at once;
every call a person makes (staff, admins, the superuser) goes through it.

The threshold counts per member, not per call (else 20 records of 599 minutes never wait): what the
member was credited outside orders in the last 24 hours (positive adjustments, service records, activity
credits, award bonuses; posted, or still waiting for approval) plus this call's credit. A rolling 24 hours,
not the calendar day, so splitting across midnight does not help. `needs_approval` locks the member's row
first, so two parallel credits to one member are decided one after the other; lock order: members (by
primary key) before ledger accounts (by primary key) before the chain head.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from timebank.approvals.access import check_decider
from timebank.approvals.events import ApprovalDecided, CreditsCounted
from timebank.approvals.models import Approval, ApprovalKind, ApprovalState
from timebank.audit.actions import record
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.lib.events import publish
from timebank.members.models import Member, MemberStatus
from timebank.ops.idempotency import recorded, scope_of, write_once
from timebank.orgs.models import Org, Rules, User

WINDOW = dt.timedelta(hours=24)
# Award bonuses are deposits under this key (system scope): counted with the credits outside orders.
AWARD_BONUS_KEY = "award-bonus-"


def is_person(actor: User | None) -> bool:
    return actor is not None and bool(actor.pk)


def threshold_for(bank_id: int) -> int | None:
    return Rules.objects.filter(head_office_id=bank_id).values_list("approval_threshold_minutes", flat=True).first()


def lock_members(member_ids: Iterable[int]) -> None:
    """Lock members' rows in primary-key order (FOR NO KEY UPDATE: rows that refer to them can still be
    written). Inside the caller's transaction, before any ledger account is locked."""
    ids = sorted(set(member_ids))
    if ids:
        list(Member.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk").values_list("pk"))


def credited_lately(member: Member, *, now: dt.datetime | None = None) -> int:
    """Minutes credited to the member outside orders in the last 24 hours, posted or waiting for approval."""
    since = (now or clock.now()) - WINDOW
    posted = sum(publish(CreditsCounted(member.pk, since)))  # the ledger answers what it posted
    waiting = Approval.objects.filter(
        member_id=member.pk, state=ApprovalState.PENDING, created_at__gte=since
    ).aggregate(total=Sum("minutes"))["total"]
    return int(posted or 0) + int(waiting or 0)


def needs_approval(actor: User | None, member: Member, minutes: int) -> bool:
    """True when a person's credit of `minutes` to `member`, with what the member was credited outside orders
    in the last 24 hours (posted or waiting), is above the head office's threshold.

    Locks the member's row before counting, so call it inside the database transaction that then posts the
    credit or opens its approval: a parallel credit to the same member waits and counts this one."""
    if not is_person(actor) or minutes <= 0:
        return False
    threshold = threshold_for(member.bank_id)
    if threshold is None:
        return False
    # Locked even when this call alone is above the threshold: every decision on the member is taken in turn.
    lock_members([member.pk])
    return minutes > threshold or minutes + credited_lately(member) > threshold


def replayed_approval(actor: User | None, key: str | None, fp: str) -> Approval | None:
    """The approval this caller already opened with this key, or None. Another request under the key is 409."""
    approval: Approval | None = recorded(Approval.objects.all(), actor, key, fp)
    return approval


def open_approval(
    actor: User | None,
    *,
    kind: str,
    member: Member,
    minutes: int,
    payload: dict[str, Any],
    fp: str,
    idempotency_key: str | None,
    org: Org | None = None,
) -> tuple[Approval, bool]:
    """Keep the request, move nothing. Returns (approval, replayed).

    Who may approve is decided against `org`'s subtree: the credited member's home unless given (an award
    bonus: the head office that confirmed it)."""
    if kind not in ApprovalKind.values:
        raise AssertionError(f"unknown approval kind {kind}")

    def body() -> Approval:
        approval = Approval.objects.create(
            bank_id=member.bank_id,
            org_id=org.pk if org is not None else member.home_org_id,
            kind=kind,
            member=member,
            minutes=minutes,
            payload=payload,
            fingerprint=fp,
            maker=actor if is_person(actor) else None,
            idem_scope=scope_of(actor),
            idempotency_key=idempotency_key,
        )
        record(
            actor,
            "approval.request",
            approval,
            bank_id=member.bank_id,
            data={"kind": kind, "member": member.pk, "minutes": minutes},
        )
        return approval

    # The same key arrived twice at once: the first one's approval is the answer.
    return write_once(Approval.objects.all(), actor, idempotency_key, fp, body)


def _lock(approval: Approval) -> Approval:
    return Approval.objects.select_for_update(of=("self",)).select_related("member", "org").get(pk=approval.pk)


def _check_member_creditable(approval: Approval) -> None:
    """The member as they are now: a credit that waited is not posted to someone who left, was suspended or
    moved to another bank meanwhile (it can still be rejected)."""
    member = approval.member
    if member.bank_id != approval.bank_id or member.status in (MemberStatus.SUSPENDED, MemberStatus.LEFT):
        raise Conflict(
            _("这位会员已暂停、已退出或已转到另一家时间银行，不能再记入这笔时间。"),
            code="member_not_active",
            fields={"status": member.status},
        )


def _check_pending(approval: Approval) -> None:
    if approval.state != ApprovalState.PENDING:
        raise Conflict(_("这条记录已经审核过了。"), code="already_decided", fields={"state": approval.state})


def _post(actor: User, approval: Approval) -> int:
    """Post the kept request through its app's posting half (the subscriber of its kind, exactly one), with
    the idempotency key `approval:<id>`. Returns the transaction id."""
    posted = publish(ApprovalDecided(approval, approved=True, actor=actor))
    if len(posted) != 1:
        raise AssertionError(f"approval kind {approval.kind}: {len(posted)} apps posted it, not one")
    return int(posted[0])


@transaction.atomic
def do_approve(actor: User, approval: Approval) -> Approval:
    """Post the waiting credit. Under the approval's row lock, so parallel approvals post it once."""
    approval = _lock(approval)
    check_decider(actor, approval)  # the one place that decides who may decide
    _check_pending(approval)
    _check_member_creditable(approval)
    approval.transaction_id = _post(actor, approval)
    approval.state = ApprovalState.APPROVED
    approval.decided_by = actor
    approval.decided_at = clock.now()
    approval.save(update_fields=["transaction", "state", "decided_by", "decided_at", "updated_at"])
    record(
        actor,
        "approval.approve",
        approval,
        bank_id=approval.bank_id,
        data={
            "kind": approval.kind,
            "member": approval.member_id,
            "minutes": approval.minutes,
            "maker": approval.maker_id,
            "transaction": approval.transaction_id,
        },
    )
    return approval


@transaction.atomic
def do_reject(actor: User, approval: Approval, *, reason: str) -> Approval:
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise Invalid(_("请填写驳回原因（500 字以内）。"), fields={"reason": "required"})
    approval = _lock(approval)
    check_decider(actor, approval)  # the one place that decides who may decide
    _check_pending(approval)
    publish(ApprovalDecided(approval, approved=False, actor=actor))  # nothing moves
    approval.state = ApprovalState.REJECTED
    approval.decided_by = actor
    approval.decided_at = clock.now()
    approval.reason = reason
    approval.save(update_fields=["state", "decided_by", "decided_at", "reason", "updated_at"])
    record(
        actor,
        "approval.reject",
        approval,
        bank_id=approval.bank_id,
        data={"kind": approval.kind, "member": approval.member_id, "minutes": approval.minutes, "reason": reason},
    )
    return approval


def pending_answer(approval: Approval) -> dict[str, Any]:
    """The 202 body of a credit that waits. A replay of its key answers exactly the same, even once the
    approval was decided (its state is then read from `GET /approvals`)."""
    return {
        "approval_id": approval.pk,
        "state": ApprovalState.PENDING.value,
        "kind": approval.kind,
        "member_id": approval.member_id,
        "minutes": approval.minutes,
    }
