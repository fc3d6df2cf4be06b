"""The goods' subscriptions to lower apps' events (timebank.lib.events), registered from GoodsConfig.ready().
Each runs inside the publishing action's transaction."""

from __future__ import annotations

from timebank.goods.actions import lock_redemption_for_reversal, void_reversed_redemption
from timebank.ledger.events import TransactionReversed, TransactionReversing
from timebank.lib.events import subscribe


@subscribe(TransactionReversing)
def on_transaction_reversing(event: TransactionReversing) -> None:
    """A goods redemption's voucher is locked before the reversal locks accounts, and the reversal is refused
    when the goods were handed over (bringing goods back is a return)."""
    lock_redemption_for_reversal(event.original)


@subscribe(TransactionReversed)
def on_transaction_reversed(event: TransactionReversed) -> None:
    """The reversed redemption's voucher becomes void and its stock comes back (the voucher is already locked
    by this transaction: reading it again waits for nobody)."""
    redemption = lock_redemption_for_reversal(event.original)
    if redemption is not None:
        void_reversed_redemption(event.actor, redemption)
