"""Subscriptions of the service loop to the events of the apps below it, registered from OrdersConfig.ready()."""

from __future__ import annotations

import datetime as dt

from django.db.models import F, Q, Sum

from timebank.approvals.events import ApprovalDecided
from timebank.approvals.models import Approval, ApprovalKind
from timebank.catalogue.models import ServiceItem
from timebank.ledger.events import BankVerifying
from timebank.lib.events import subscribe
from timebank.members.models import Member
from timebank.orders.models import Order, ServiceRecord
from timebank.orders.records import post_service_record
from timebank.orders.summary import summary_problems
from timebank.orgs.models import User


@subscribe(BankVerifying)
def verify_credits(event: BankVerifying) -> list[str]:
    """An order's (or service record's) credited minutes are what its transaction moved, by its legs."""
    bank_id = event.bank_id
    problems: list[str] = []
    moved = Sum("transaction__legs__minutes", filter=Q(transaction__legs__minutes__gt=0))
    for model, name in ((Order, "order"), (ServiceRecord, "service record")):
        wrong = (
            model.objects.filter(bank_id=bank_id, transaction__isnull=False)
            .annotate(moved=moved)
            .exclude(credited_minutes=F("moved"))
            .values_list("pk", "credited_minutes", "moved", "transaction_id")
        )
        for pk, credited, legs, tx_id in wrong:
            problems.append(
                f"bank {bank_id}: {name} {pk} says {credited} minutes were credited, "
                f"its transaction {tx_id} moved {legs}"
            )
    return problems


@subscribe(BankVerifying)
def verify_service_summary(event: BankVerifying) -> list[str]:
    """The services' daily summary equals the bank's credited orders and posted records counted again."""
    return summary_problems(event.bank_id)


def post_approved_service_record(actor: User, approval: Approval) -> ServiceRecord:
    """The kept request of a service record (or an activity's credit) posted through the service record's
    posting half, once (key `approval:<id>`), on behalf of whoever asked for it."""
    p = approval.payload
    recipient = Member.objects.filter(pk=p["recipient_id"]).first() if p.get("recipient_id") else None
    rec, _replayed = post_service_record(
        actor,
        volunteer=approval.member,
        service_item=ServiceItem.objects.get(pk=p["service_item_id"]),
        minutes=int(p["minutes"]),
        served_at=dt.datetime.fromisoformat(str(p["served_at"])),
        recipient=recipient,
        memo=str(p.get("memo", "")),
        idempotency_key=f"approval:{approval.pk}",
        created_by=approval.maker,
    )
    return rec


@subscribe(ApprovalDecided)
def on_approval_decided(event: ApprovalDecided) -> list[int] | None:
    """An approved service record is posted (an activity's credit is the teams' to post and link)."""
    if not event.approved or event.approval.kind != ApprovalKind.SERVICE_RECORD:
        return None
    rec = post_approved_service_record(event.actor, event.approval)
    assert rec.transaction_id is not None
    return [rec.transaction_id]
