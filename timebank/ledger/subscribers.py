"""The ledger's subscriptions to lower apps' events (timebank.lib.events), registered from LedgerConfig.ready().
Each runs inside the publishing action's transaction."""

from __future__ import annotations

from django.db.models import Q, Sum

from timebank.approvals.actions import AWARD_BONUS_KEY
from timebank.approvals.events import ApprovalDecided, CreditsCounted
from timebank.approvals.models import ApprovalKind
from timebank.ledger.actions import open_member_accounts, open_system_accounts, post_adjustment
from timebank.ledger.models import Leg, TransactionKind
from timebank.lib.events import subscribe
from timebank.members.events import MemberRegistered
from timebank.orgs.events import BankOpened


@subscribe(BankOpened)
def on_bank_opened(event: BankOpened) -> None:
    open_system_accounts(event.bank)


@subscribe(MemberRegistered)
def on_member_registered(event: MemberRegistered) -> None:
    open_member_accounts(event.member)


@subscribe(ApprovalDecided)
def on_approval_decided(event: ApprovalDecided) -> list[int] | None:
    """An approved adjustment is posted through the adjustment's posting half, once (key `approval:<id>`)."""
    approval = event.approval
    if not event.approved or approval.kind != ApprovalKind.ADJUSTMENT:
        return None
    p = approval.payload
    tx, _replayed = post_adjustment(
        event.actor,
        member=approval.member,
        minutes=int(p["minutes"]),
        bucket=str(p["bucket"]),
        reason=str(p["reason"]),
        idempotency_key=f"approval:{approval.pk}",
    )
    return [tx.pk]


@subscribe(CreditsCounted)
def count_credits(event: CreditsCounted) -> list[int]:
    """Minutes posted to the member outside orders since then: positive adjustments, service records (activity
    credits are service records too) and award bonuses (deposits under the system's award-bonus keys)."""
    posted = (
        Leg.objects.filter(account__member_id=event.member_id, minutes__gt=0, transaction__created_at__gte=event.since)
        .filter(
            Q(transaction__kind__in=(TransactionKind.ADJUSTMENT, TransactionKind.SERVICE_RECORD))
            | Q(
                transaction__kind=TransactionKind.DEPOSIT,
                transaction__idem_scope="system",
                transaction__idempotency_key__startswith=AWARD_BONUS_KEY,
            )
        )
        .aggregate(total=Sum("minutes"))["total"]
    )
    return [int(posted or 0)]
