"""Service records: service done outside an order (on paper, at an activity), credited to the volunteer.

Split from the service loop's actions (`orders/actions.py`): a record has no order and no transitions, only
the volunteer's eligibility, the four-eyes gate and the deposit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.approvals.actions import is_person, needs_approval, open_approval, replayed_approval
from timebank.approvals.models import Approval, ApprovalKind
from timebank.audit.actions import record
from timebank.catalogue.actions import multiplier_for, weighted_minutes
from timebank.catalogue.models import ServiceItem
from timebank.ledger.actions import do_deposit
from timebank.ledger.models import TransactionKind
from timebank.lib import clock
from timebank.lib.errors import Invalid
from timebank.members.models import Member
from timebank.ops.idempotency import check_key, fingerprint, key_reused, scope_of
from timebank.orders.actions import check_volunteer_eligible
from timebank.orders.models import ServiceRecord
from timebank.orders.summary import add_record
from timebank.orgs.models import User


def do_service_record(
    actor: User | None,
    *,
    volunteer: Member,
    service_item: ServiceItem,
    minutes: int,
    served_at: dt.datetime,
    recipient: Member | None = None,
    memo: str = "",
    idempotency_key: str | None = None,
    require_approval: bool = False,
    approval_kind: str = ApprovalKind.SERVICE_RECORD,
    approval_context: dict[str, Any] | None = None,
) -> tuple[ServiceRecord | Approval, bool]:
    """Service outside an order: credits `minutes × multiplier` to `earned`, from issuance.

    The volunteer must be eligible as in dispatch (`check_volunteer_eligible`: volunteer role, active, not
    suspended, a valid certificate when the item requires one), else 409.

    Returns `(ServiceRecord, replayed)` when posted at once. When `require_approval` is true, or a person
    (`actor` not None) credits more than the head office's `approval_threshold_minutes` (the credited
    minutes, after the multiplier), nothing moves and it returns `(Approval, replayed)` in state
    `pending_approval`, of kind `approval_kind` (`service_record`, or `activity_close` for an activity's
    credit). `approval_context` is kept in the approval's payload; with a `signup_id` in it, approving links
    that ActivitySignup to the new ServiceRecord. Replaying the key answers the same approval."""
    key = check_key(idempotency_key)
    multiplier, credited = _check_service_record(volunteer, service_item, minutes, served_at, recipient, memo)
    fp = _service_record_fp(volunteer, service_item, minutes, served_at, recipient, memo)
    if is_person(actor) and (waiting := replayed_approval(actor, key, fp)) is not None:
        return waiting, True
    # One transaction: needs_approval locks the volunteer, so a parallel credit to them counts this one.
    with transaction.atomic():
        if require_approval or needs_approval(actor, volunteer, credited):
            if key and (
                existing := ServiceRecord.objects.filter(
                    transaction__idem_scope=scope_of(actor), transaction__idempotency_key=key
                ).first()
            ):
                return _replayed_record(existing, service_item, minutes, served_at), True
            payload = {
                **(approval_context or {}),
                "volunteer_id": volunteer.pk,
                "service_item_id": service_item.pk,
                "minutes": minutes,
                "multiplier": str(multiplier),
                "served_at": served_at.isoformat(),
                "recipient_id": recipient.pk if recipient is not None else None,
                "memo": memo,
            }
            return open_approval(
                actor,
                kind=approval_kind,
                member=volunteer,
                minutes=credited,
                payload=payload,
                fp=fp,
                idempotency_key=key,
            )
        return post_service_record(
            actor,
            volunteer=volunteer,
            service_item=service_item,
            minutes=minutes,
            served_at=served_at,
            recipient=recipient,
            memo=memo,
            idempotency_key=key,
        )


def _check_service_record(
    volunteer: Member,
    service_item: ServiceItem,
    minutes: int,
    served_at: dt.datetime,
    recipient: Member | None,
    memo: str,
) -> tuple[Decimal, int]:
    """Validate a service record; answers (multiplier, credited minutes)."""
    if not 1 <= minutes <= 24 * 60:
        raise Invalid(_("服务时长应在 1 到 1440 分钟之间。"), fields={"minutes": "out_of_range"})
    if timezone.is_naive(served_at) or served_at > clock.now() + dt.timedelta(hours=1):
        raise Invalid(_("服务时间不能在将来。"), fields={"served_at": "in_future"})
    if service_item.head_office_id != volunteer.bank_id:
        raise Invalid(_("服务项目属于另一家时间银行。"), fields={"service_item_id": "other_bank"})
    if recipient is not None and recipient.bank_id != volunteer.bank_id:
        raise Invalid(_("服务对象属于另一家时间银行。"), fields={"recipient_id": "other_bank"})
    if recipient is not None and recipient.pk == volunteer.pk:
        raise Invalid(_("志愿者不能为自己服务。"), fields={"recipient_id": "self"})
    if len(memo) > 500:
        raise Invalid(_("备注太长。"), fields={"memo": "too_long"})
    check_volunteer_eligible(volunteer, service_item)
    multiplier = multiplier_for(volunteer.bank_id, service_item.tier)
    return multiplier, weighted_minutes(minutes, multiplier)


def _service_record_fp(
    volunteer: Member,
    service_item: ServiceItem,
    minutes: int,
    served_at: dt.datetime,
    recipient: Member | None,
    memo: str,
) -> str:
    return fingerprint(
        "service_record",
        {
            "volunteer": volunteer.pk,
            "item": service_item.pk,
            "m": minutes,
            "at": served_at.isoformat(),
            "recipient": recipient.pk if recipient is not None else None,
            "memo": memo,
        },
    )


def _replayed_record(
    existing: ServiceRecord | None, service_item: ServiceItem, minutes: int, served_at: dt.datetime
) -> ServiceRecord:
    if existing is None or (existing.served_at, existing.minutes, existing.service_item_id) != (
        served_at,
        minutes,
        service_item.pk,
    ):
        raise key_reused()
    return existing


def post_service_record(
    actor: User | None,
    *,
    volunteer: Member,
    service_item: ServiceItem,
    minutes: int,
    served_at: dt.datetime,
    recipient: Member | None = None,
    memo: str = "",
    idempotency_key: str | None = None,
    created_by: User | None = None,
) -> tuple[ServiceRecord, bool]:
    """The posting half of `do_service_record`, with no four-eyes check (an approved approval, the system).

    Eligibility is checked again: the volunteer may have been suspended while the record waited."""
    multiplier, credited = _check_service_record(volunteer, service_item, minutes, served_at, recipient, memo)
    with transaction.atomic():
        tx, replayed = do_deposit(
            actor,
            volunteer=volunteer,
            minutes=credited,
            payer="subsidy",
            kind=TransactionKind.SERVICE_RECORD,
            memo=memo or service_item.name,
            idempotency_key=idempotency_key,
        )
        if replayed:
            return _replayed_record(
                ServiceRecord.objects.filter(transaction=tx).first(), service_item, minutes, served_at
            ), True
        maker = created_by or actor
        rec = ServiceRecord.objects.create(
            bank_id=volunteer.bank_id,
            org=volunteer.home_org,
            volunteer=volunteer,
            recipient=recipient,
            service_item=service_item,
            minutes=minutes,
            multiplier=multiplier,
            credited_minutes=credited,
            served_at=served_at,
            memo=memo,
            transaction=tx,
            created_by=maker if maker and maker.pk else None,
        )
        record(
            actor,
            "service_record.create",
            rec,
            bank_id=volunteer.bank_id,
            data={"volunteer": volunteer.pk, "minutes": minutes, "credited": credited},
        )
        add_record(rec, tx)  # the services' daily summary, in this transaction
        return rec, False
