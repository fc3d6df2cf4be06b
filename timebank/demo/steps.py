"""The demo's timeline: moments (minutes from today's midnight) and the steps that happen at them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from timebank.demo.banks import OrgSpec
from timebank.demo.people import LinkSpec, PersonSpec

# --------------------------------------------------------------------------------------------------------------
# The timeline: moments, and the steps that happen at them

DAY = 24 * 60
LAUNCH = -100  # the platform went live this many days ago: paper records moved in, members registered
SETTLED = -28  # the settlement's period end (run early the next morning)
# `at` values from RECENT on are the last few hours before the demo is made (RECENT_SPAN minutes at most).
RECENT = 10**7
RECENT_SPAN = 180


def when(day: int, hour: int, minute: int = 0) -> int:
    """A moment as minutes from today's midnight: `day` days from today (negative: before), at hour:minute."""
    return day * DAY + hour * 60 + minute


def ago(minutes: int) -> int:
    """`minutes` before the demo is made (at most RECENT_SPAN)."""
    return RECENT + RECENT_SPAN - minutes


def day_of(at: int) -> int:
    return at // DAY


def daytime(at: int) -> int:
    """Move a moment in the night to 08:00 the next morning: volunteers and staff work by day. It also keeps
    the night after the settlement's period end free of postings."""
    if at >= RECENT:
        return at
    minute = at % DAY
    if minute < 8 * 60:
        return at - minute + 8 * 60
    if minute > 21 * 60:
        return at - minute + DAY + 8 * 60
    return at


@dataclass(frozen=True)
class Step:
    at: int  # when it happens: see `when` and `ago`


OpAction = Literal["adjustment", "deposit", "transfer", "donation", "withdrawal"]


@dataclass(frozen=True)
class LedgerOp(Step):
    action: OpAction
    member: int  # the volunteer, the payer of a transfer, or the member adjusted / withdrawing
    minutes: int
    memo: str
    bucket: str = ""
    payer: str = ""  # deposits: recipient | pool
    other: int | None = None  # the recipient paying, or the receiver of a transfer


@dataclass(frozen=True)
class RecordService(Step):
    """A service outside an order (a group activity, or a home service arranged by the sub-branch)."""

    volunteer: int
    item: str
    minutes: int
    served_at: int
    memo: str
    actor: str
    recipient: int | None = None


@dataclass(frozen=True)
class Register(Step):
    person: int  # a self-registration waiting for approval


@dataclass(frozen=True)
class Approve(Step):
    person: int
    actor: str


@dataclass(frozen=True)
class Duty(Step):
    login: str


@dataclass(frozen=True)
class Insure(Step):
    members: tuple[int, ...]
    insurer: str
    number: str
    starts: int  # days from today
    ends: int
    group: bool
    actor: str


@dataclass(frozen=True)
class Certify(Step):
    member: int
    kind: str
    issuer: str
    valid_from: int  # days from today
    valid_until: int
    actor: str


@dataclass(frozen=True)
class Train(Step):
    key: str
    org: str
    title: str
    kind: str
    topic: str
    place: str
    trainer: str
    held_on: int  # days from today
    grants: str
    actor: str


@dataclass(frozen=True)
class Attend(Step):
    training: str
    rows: tuple[tuple[int, bool, bool | None, str | None], ...]  # member, attended, passed, score
    actor: str


@dataclass(frozen=True)
class Incident(Step):
    key: str
    order: int | None
    volunteer: int | None
    recipient: int | None
    occurred: int
    place: str
    what: str
    injury: str  # the injury, or "" when nobody was hurt
    actor: str


@dataclass(frozen=True)
class IncidentAct(Step):
    key: str
    action: Literal["follow_up", "decide", "claim", "close"]
    note: str
    actor: str
    responsibility: str = ""
    claim_status: str = ""
    claim_number: str = ""
    policy: str = ""  # the policy number the claim is filed under


@dataclass(frozen=True)
class NewOrder(Step):
    key: int
    recipient: int
    item: str
    scheduled: int
    planned: int
    payer: str
    channel: str
    urgent: bool
    notes: str
    actor: str


@dataclass(frozen=True)
class OrderAct(Step):
    key: int
    action: str  # dispatch, take, accept, decline, no-show, check-in, check-out, confirm, review, cancel, dispute
    actor: str
    volunteer: int | None = None
    note: str = ""
    minutes: int | None = None  # confirm: the actual minutes
    rating: int | None = None
    by: str = ""  # who confirms or cancels: staff | volunteer | party
    lat: str = ""
    lon: str = ""


@dataclass(frozen=True)
class BuyService(Step):
    order: int
    fund_org: str
    provider: str
    amount: str
    note: str
    actor: str


@dataclass(frozen=True)
class NewNeed(Step):
    key: int
    recipient: int
    level: str
    found_by: str
    items: tuple[str, ...]
    notes: str
    actor: str


@dataclass(frozen=True)
class NeedAct(Step):
    key: int
    action: Literal["follow_up", "met", "close", "link"]
    note: str
    actor: str
    order: int | None = None


@dataclass(frozen=True)
class CensusImport(Step):
    org: str
    filename: str
    people: tuple[int, ...]  # the first rows: written as new recipients
    rows: tuple[tuple[str, ...], ...]  # the file's rows; the last ones are rejected by the dry run
    actor: str


@dataclass(frozen=True)
class Call(Step):
    kind: str
    org: str
    member: int | None
    phone: str
    summary: str
    minutes: int
    actor: str
    order: int | None = None
    need: int | None = None


@dataclass(frozen=True)
class ReturnVisit(Step):
    order: int
    outcome: str
    satisfaction: int | None
    note: str
    actor: str


@dataclass(frozen=True)
class WelfareCheck(Step):
    member: int
    method: str
    found_ok: bool
    health_changed: bool
    note: str
    actor: str
    need_level: str = ""  # opens a need at once
    need_items: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewGoods(Step):
    key: str
    outlet: str
    name: str
    price: int
    stock: int
    actor: str


@dataclass(frozen=True)
class Redeem(Step):
    key: int
    member: int
    goods: str
    quantity: int
    actor: str


@dataclass(frozen=True)
class HandOver(Step):
    redemption: int
    actor: str


@dataclass(frozen=True)
class Restock(Step):
    goods: str
    quantity: int
    note: str
    actor: str


@dataclass(frozen=True)
class StockCount(Step):
    goods: str
    shortfall: int
    note: str
    actor: str
    counted: int = -1  # filled in by the plan's simulation


@dataclass(frozen=True)
class Money(Step):
    org: str
    direction: str
    amount: str
    occurred_on: int  # days from today
    description: str
    actor: str
    source: str = ""
    kind: str = ""
    fund: str = "general"
    donor: str = ""
    provider: str = ""


@dataclass(frozen=True)
class InKind(Step):
    org: str
    source: str
    value: str
    item: str
    donor: str
    description: str
    goods: str
    quantity: int
    actor: str


@dataclass(frozen=True)
class Settle(Step):
    bank: str
    period_end: int  # days from today
    actor: str


# Drafts: what the plan means to do; the simulation turns them into steps once the balances are known.


@dataclass(frozen=True)
class ServiceDraft(Step):
    volunteer: int
    recipient: int
    item: str
    base: int
    actor: str


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


@dataclass(frozen=True)
class MenuSpec:
    org: str
    item: str
    times: str
    place: str


@dataclass
class Plan:
    seed: int
    orgs: list[OrgSpec]
    people: list[PersonSpec]
    links: list[LinkSpec]
    menus: list[MenuSpec]
    steps: list[Step]


@dataclass
class OrderInfo:
    """What the simulation needs to know about an order."""

    bank: str
    recipient: int
    multiplier: int
    hold: int  # the most it may cost the payer
    pays_at: int | None  # when it is confirmed (or bought), if it is
    fixed_payer: bool = False  # a story that needs this payer: the plan must allow it
    payer: str = ""
