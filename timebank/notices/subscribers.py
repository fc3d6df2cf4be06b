"""The notices' subscriptions to lower apps' events (timebank.lib.events), registered from
NoticesConfig.ready(). Each runs inside the publishing action's transaction."""

from __future__ import annotations

from timebank.ledger.events import SettlementFinished
from timebank.lib.events import subscribe
from timebank.notices.auto import rules_changed, settlement_finished
from timebank.orgs.events import RulesChanged


@subscribe(RulesChanged)
def on_rules_changed(event: RulesChanged) -> None:
    """The head office changed its rules: the automatic notice tells everyone in the bank what changed."""
    rules_changed(event.actor, event.rules, event.before, event.after)


@subscribe(SettlementFinished)
def on_settlement_finished(event: SettlementFinished) -> None:
    """A settlement is done: the automatic notice tells the bank's members (when automatic notices are on)."""
    settlement_finished(event.settlement)
