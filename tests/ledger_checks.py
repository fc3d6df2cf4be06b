"""Invariant checks shared by the ledger tests: computed straight from the rows, not through `verify`."""

from __future__ import annotations

from collections import defaultdict

from timebank.ledger.models import Account, AccountKind, Leg, Transaction
from timebank.orgs.models import Rules


def ledger_problems(bank_id: int) -> list[str]:
    problems: list[str] = []
    per_tx: dict[int, int] = defaultdict(int)
    per_account: dict[int, int] = defaultdict(int)
    for tx_id, account_id, minutes in Leg.objects.filter(transaction__bank_id=bank_id).values_list(
        "transaction_id", "account_id", "minutes"
    ):
        per_tx[tx_id] += minutes
        per_account[account_id] += minutes
    problems += [f"transaction {t} sums to {s}" for t, s in per_tx.items() if s != 0]
    overdraft = Rules.objects.get(head_office_id=bank_id).overdraft_minutes
    spendable: dict[int, int] = defaultdict(int)
    for acc in Account.objects.filter(bank_id=bank_id):
        if acc.balance_minutes != per_account.get(acc.pk, 0):
            problems.append(f"account {acc.pk} holds {acc.balance_minutes}, legs say {per_account.get(acc.pk, 0)}")
        if acc.kind == AccountKind.GOODS and acc.balance_minutes < 0:
            problems.append(f"goods account {acc.pk} is negative")
        if acc.kind == AccountKind.DONATION_POOL and acc.balance_minutes < 0:
            problems.append("the donation pool is negative")
        if acc.member_id and acc.kind in (AccountKind.EARNED, AccountKind.RESERVE):
            spendable[acc.member_id] += acc.balance_minutes
    problems += [f"member {m} is at {s}, below -{overdraft}" for m, s in spendable.items() if s < -overdraft]
    keys = list(
        Transaction.objects.filter(bank_id=bank_id, idempotency_key__isnull=False).values_list(
            "idem_scope", "idempotency_key"
        )
    )
    if len(keys) != len(set(keys)):
        problems.append("an idempotency key maps to more than one transaction")
    return problems
