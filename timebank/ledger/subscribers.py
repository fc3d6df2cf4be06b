"""The ledger's subscriptions to lower apps' events (timebank.lib.events), registered from LedgerConfig.ready().
Each runs inside the publishing action's transaction."""

from __future__ import annotations

from timebank.ledger.actions import open_member_accounts, open_system_accounts
from timebank.lib.events import subscribe
from timebank.members.events import MemberRegistered
from timebank.orgs.events import BankOpened


@subscribe(BankOpened)
def on_bank_opened(event: BankOpened) -> None:
    open_system_accounts(event.bank)


@subscribe(MemberRegistered)
def on_member_registered(event: MemberRegistered) -> None:
    open_member_accounts(event.member)
