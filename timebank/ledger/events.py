"""What the ledger tells the apps built on it. Subscribers register in their `AppConfig.ready()`."""

from __future__ import annotations

from dataclasses import dataclass

from timebank.ledger.models import Settlement, Transaction
from timebank.orgs.models import User


@dataclass(frozen=True)
class SettlementFinished:
    """A settlement is done. Published once, inside the transaction that marks it done and audits
    `settlement.finish` (the notices app publishes the automatic notice to the bank's members)."""

    settlement: Settlement


@dataclass(frozen=True)
class BankVerifying:
    """`verify` is checking one bank, after its chains, before its rules. Apps whose live rows restate what the
    ledger moved (an order's credited minutes) answer their problems as sentences, reported with the ledger's
    own, in subscription order. A question rather than news: nothing is written."""

    bank_id: int


@dataclass(frozen=True)
class TransactionReversing:
    """A transaction is about to be reversed, before any account is locked (inside the reversal's transaction).
    An app whose rows hang on it locks them first and refuses the reversal by raising (goods: 409
    `voucher_handed_over` when the redeemed goods were handed over). Nothing is written yet."""

    original: Transaction


@dataclass(frozen=True)
class TransactionReversed:
    """The reversal is decided: its accounts are locked and their floors checked, and it posts next, in the same
    transaction, before the chain head is locked. Apps undo what hung on the original (goods: the voucher
    becomes void and the stock comes back, audited `goods.voucher_void`)."""

    actor: User | None
    original: Transaction


@dataclass(frozen=True)
class CreditsOverCap:
    """A credit would have taken the member's stored time above the head office's `storage_cap_hours`: `minutes`
    of it went to the bank's donation pool in `transaction` instead. Published inside the crediting transaction
    (the notify app queues the member's notice there, so it exists exactly when the credit committed)."""

    member_id: int
    minutes: int
    cap_minutes: int
    transaction: Transaction


@dataclass(frozen=True)
class StoredTimeSpending:
    """A member is about to spend stored time on a service for themselves, and the head office's rules set
    `spend_min_star_level`. The app that knows star levels (evaluation) refuses by raising (409
    `below_star_level`). A question, inside the spending action's transaction: nothing is written."""

    member_id: int
    bank_id: int
    min_level: int
