"""The ledger's part of the demo timeline: its operations (adjustments from the paper ledger, deposits,
withdrawals, transfers to relatives, donations to the pool) and the settlement.

Donations, withdrawals and transfers are drafted with the amount the plan wishes; the simulation
(`timebank/demo/simulation.py`) decides what the balances allow once it walks the drafts in time order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from timebank.approvals.demo import with_second_person
from timebank.ledger import actions as ledger_actions
from timebank.ledger.models import TransactionKind
from timebank.ledger.settlement import do_settle
from timebank.lib.demo_plan import SETTLED, Do, Ref, Step, do, when
from timebank.members.demo_timeline import TimelineBase
from timebank.members.models import Member
from timebank.orgs.demo import BANK1, BANK2
from timebank.orgs.models import User

OPENING_REASON = "纸质台账迁移"
OpAction = Literal["adjustment", "deposit", "transfer", "donation", "withdrawal"]


@dataclass(frozen=True)
class DonationDraft(Step):
    donor: int
    wish: int


@dataclass(frozen=True)
class WithdrawalDraft(Step):
    bank: str
    item: str
    wish: int


@dataclass(frozen=True)
class TransferDraft(Step):
    giver: int
    receiver: int
    relation: str
    wish: int


class LedgerTimeline(TimelineBase):
    """The ledger's operations on a member's time, and the settlement of both banks."""

    def ledger(
        self,
        at: int,
        action: OpAction,
        member: int,
        minutes: int,
        memo: str,
        *,
        bucket: str = "",
        payer: str = "",
        other: int | None = None,
    ) -> Do:
        """A ledger operation on `member`'s time: an adjustment (opening balances from paper, entered by their
        manager), a deposit for a service (paid by the recipient `other` or the pool), a withdrawal, a transfer
        to the relative `other`, or a donation to the pool."""
        person = self.people[member]
        manager = self.manager(person.org)
        who, key = Ref.member(member), Ref.idempotency_key()
        if action == "adjustment":
            return do(
                at,
                with_second_person,
                Ref.second_of(manager),
                ledger_actions.do_adjustment,
                Ref.maker(manager),
                member=who,
                minutes=minutes,
                bucket=bucket,
                reason=memo,
                idempotency_key=key,
            )
        if action == "deposit":
            return do(
                at,
                ledger_actions.do_deposit,
                Ref.login(manager),
                volunteer=who,
                minutes=minutes,
                payer=payer,
                payer_member=Ref.member(other),
                kind=TransactionKind.SERVICE_REDEMPTION if payer == "recipient" else TransactionKind.DEPOSIT,
                memo=memo,
                idempotency_key=key,
            )
        if action == "withdrawal":
            return do(
                at, ledger_actions.do_withdrawal, Ref.login(manager), member=who, minutes=minutes, memo=memo,
                idempotency_key=key,
            )  # fmt: skip
        # transfers and donations are the member's own acts: by their login if they have one
        return do(
            at,
            ledger_actions.do_transfer,
            Ref.login(person.login) if person.login else None,
            from_member=who,
            to_member=Ref.member(other),
            minutes=minutes,
            kind="relative" if action == "transfer" else "donation",
            memo=memo,
            idempotency_key=key,
        )

    def settlement(self) -> None:
        self.add(do(when(SETTLED + 1, 7, 30), do_settle, Ref.login("ho_admin"), Ref.org(BANK1), Ref.day(SETTLED)))
        self.add(do(when(SETTLED + 1, 7, 40), do_settle, Ref.login("nc_admin"), Ref.org(BANK2), Ref.day(SETTLED)))


def seed_waiting_credit(users: dict[str, User], key: Callable[[], str]) -> None:
    """At the end of the demo, the community's staff bring over a paper ledger page: above the threshold, so it
    waits for the branch admin (or any second person of the subtree) on the 待审核 page. `key` gives the demo's
    next idempotency key."""
    volunteer = Member.objects.filter(user__username="volunteer").first()
    staff = users.get("staff")
    if volunteer is None or staff is None:
        return
    ledger_actions.do_adjustment(
        staff,
        member=volunteer,
        minutes=720,
        bucket="earned",
        reason="纸质台账补录：去年社区助老服务 12 小时",
        idempotency_key=key(),
    )
