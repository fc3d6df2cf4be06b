"""What the ledger tells the apps built on it. Subscribers register in their `AppConfig.ready()`."""

from __future__ import annotations

from dataclasses import dataclass

from timebank.ledger.models import Settlement


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
