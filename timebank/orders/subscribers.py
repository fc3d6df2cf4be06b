"""Subscriptions of the service loop to the events of the apps below it, registered from OrdersConfig.ready()."""

from __future__ import annotations

from django.db.models import F, Q, Sum

from timebank.ledger.events import BankVerifying
from timebank.lib.events import subscribe
from timebank.orders.models import Order, ServiceRecord


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
