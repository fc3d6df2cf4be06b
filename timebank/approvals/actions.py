"""Four eyes (四眼原则) on large credits.

A positive adjustment, a service record or an activity's credit above the head office's
`approval_threshold_minutes` is not posted: the ledger action opens an `Approval` instead
(`open_approval`). A second person approves it (`do_approve`), which posts it through the same action's
posting half, exactly once, or rejects it (`do_reject`).

The threshold is for people. A call without an actor (settlement, the demo, system jobs) posts at once;
every call a person makes (staff, admins, the superuser) goes through it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.approvals.models import Approval, ApprovalKind, ApprovalState
from timebank.audit.actions import record
from timebank.ledger.posting import idem_scope
from timebank.lib.errors import Conflict, Forbidden, Invalid
from timebank.members.models import Member
from timebank.orgs.models import Rules, User


def is_person(actor: User | None) -> bool:
    return actor is not None and bool(actor.pk)


def threshold_for(bank_id: int) -> int | None:
    return Rules.objects.filter(head_office_id=bank_id).values_list("approval_threshold_minutes", flat=True).first()


def needs_approval(actor: User | None, bank_id: int, minutes: int) -> bool:
    """True when a person credits one member more than the head office's threshold in one call."""
    if not is_person(actor) or minutes <= 0:
        return False
    threshold = threshold_for(bank_id)
    return threshold is not None and minutes > threshold


def replayed_approval(actor: User | None, key: str | None, fp: str) -> Approval | None:
    """The approval this caller already opened with this key, or None. Another request under the key is 409."""
    if not key:
        return None
    existing = Approval.objects.filter(idem_scope=idem_scope(actor), idempotency_key=key).first()
    if existing is not None and existing.fingerprint != fp:
        raise Conflict(_("这个幂等键已用于另一个不同的请求。"), code="idempotency_key_reused")
    return existing


def open_approval(
    actor: User | None,
    *,
    kind: str,
    member: Member,
    minutes: int,
    payload: dict[str, Any],
    fp: str,
    idempotency_key: str | None,
) -> tuple[Approval, bool]:
    """Keep the request, move nothing. Returns (approval, replayed)."""
    if kind not in ApprovalKind.values:
        raise AssertionError(f"unknown approval kind {kind}")
    if (existing := replayed_approval(actor, idempotency_key, fp)) is not None:
        return existing, True
    try:
        with transaction.atomic():
            approval = Approval.objects.create(
                bank_id=member.bank_id,
                org_id=member.home_org_id,
                kind=kind,
                member=member,
                minutes=minutes,
                payload=payload,
                fingerprint=fp,
                maker=actor if is_person(actor) else None,
                idem_scope=idem_scope(actor),
                idempotency_key=idempotency_key,
            )
            record(
                actor,
                "approval.request",
                approval,
                bank_id=member.bank_id,
                data={"kind": kind, "member": member.pk, "minutes": minutes},
            )
    except IntegrityError:
        # The same key arrived twice at once: the first one's approval is the answer.
        if (existing := replayed_approval(actor, idempotency_key, fp)) is not None:
            return existing, True
        raise
    return approval, False


def _lock(approval: Approval) -> Approval:
    return Approval.objects.select_for_update(of=("self",)).select_related("member", "org").get(pk=approval.pk)


def _check_decider(actor: User, approval: Approval) -> None:
    if approval.maker_id is not None and approval.maker_id == actor.pk:
        raise Forbidden(_("不能审核自己提交的记录，请另一位工作人员审核。"), code="own_request")
    member = getattr(actor, "member", None)
    if member is not None and member.pk == approval.member_id:
        raise Forbidden(_("不能审核记给自己的时间。"), code="own_credit")


def _check_pending(approval: Approval) -> None:
    if approval.state != ApprovalState.PENDING:
        raise Conflict(_("这条记录已经审核过了。"), code="already_decided", fields={"state": approval.state})


def _post(actor: User, approval: Approval) -> int:
    """Post the kept request through its ledger action's posting half. Returns the transaction id."""
    from timebank.catalogue.models import ServiceItem  # late: the ledger and orders import this module
    from timebank.ledger.actions import post_adjustment
    from timebank.orders.actions import post_service_record

    p = approval.payload
    key = f"approval:{approval.pk}"
    if approval.kind == ApprovalKind.ADJUSTMENT:
        tx, _replayed = post_adjustment(
            actor,
            member=approval.member,
            minutes=int(p["minutes"]),
            bucket=str(p["bucket"]),
            reason=str(p["reason"]),
            idempotency_key=key,
        )
        return tx.pk
    recipient = Member.objects.filter(pk=p["recipient_id"]).first() if p.get("recipient_id") else None
    rec, _replayed = post_service_record(
        actor,
        volunteer=approval.member,
        service_item=ServiceItem.objects.get(pk=p["service_item_id"]),
        minutes=int(p["minutes"]),
        served_at=dt.datetime.fromisoformat(str(p["served_at"])),
        recipient=recipient,
        memo=str(p.get("memo", "")),
        idempotency_key=key,
        created_by=approval.maker,
    )
    if approval.kind == ApprovalKind.ACTIVITY_CLOSE and p.get("signup_id"):
        from timebank.teams.models import ActivitySignup  # late: teams imports the orders' actions

        ActivitySignup.objects.filter(pk=p["signup_id"], service_record__isnull=True).update(service_record=rec)
    return rec.transaction_id


@transaction.atomic
def do_approve(actor: User, approval: Approval) -> Approval:
    """Post the waiting credit. Under the approval's row lock, so parallel approvals post it once."""
    approval = _lock(approval)
    _check_decider(actor, approval)
    _check_pending(approval)
    approval.transaction_id = _post(actor, approval)
    approval.state = ApprovalState.APPROVED
    approval.decided_by = actor
    approval.decided_at = timezone.now()
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
    _check_decider(actor, approval)
    _check_pending(approval)
    approval.state = ApprovalState.REJECTED
    approval.decided_by = actor
    approval.decided_at = timezone.now()
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
    """The 202 body of a credit that waits; a replay answers the same (with the state as it is now)."""
    return {
        "approval_id": approval.pk,
        "state": approval.state,
        "kind": approval.kind,
        "member_id": approval.member_id,
        "minutes": approval.minutes,
    }
