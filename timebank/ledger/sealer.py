"""The ledger's chain for the sealer (timebank/audit/sealing.py): its queue and what each hash covers."""

from __future__ import annotations

from django.db.models import QuerySet

from timebank.audit.sealing import Chain, register
from timebank.ledger.models import Transaction
from timebank.ledger.posting import ledger_payloads


def _unsealed(scope: str) -> QuerySet[Transaction]:
    bank_id = int(scope.split(":", 1)[1]) if scope.startswith("bank:") else 0
    return Transaction.objects.filter(bank_id=bank_id, seq__isnull=True)


def _scopes() -> list[str]:
    banks = Transaction.objects.filter(seq__isnull=True).values_list("bank_id", flat=True).distinct()
    return [f"bank:{bank_id}" for bank_id in banks]


LEDGER = Chain(name="ledger", model=Transaction, unsealed=_unsealed, payloads=ledger_payloads, scopes_pending=_scopes)
register(LEDGER)
