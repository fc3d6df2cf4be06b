"""What a statement line says, from the member's side (issue 14, "Words from the member's side").

A transaction's kind names it from the bank's side: an order paid from the recipient's stored time is one
`service_redemption` (兑换服务) for both people in it, so a volunteer's earnings read 兑换服务. A member's line
says what happened to *them*: the volunteer served others (服务他人), the recipient used time for a service
(兑换服务), a gift is 转赠给<name> on one side and 收到<name>的转赠 on the other.

The balance is told the same way wherever a member's time is shown (我的时间, the staff's statement, the
statement PDF and .xlsx, the personal-data copy): one total, the three parts it is made of, each in words, and
what can be spent on services, with why that is less.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext_lazy as _

from timebank.ledger.models import MEMBER_BUCKETS, Account, AccountKind, Leg, TransactionKind

# What each part of a member's time is, in words an old person uses (never "bucket").
PART_WORDS: dict[str, Any] = {
    AccountKind.EARNED: _("最近服务存入的时间。到结算的时候，一部分可以换物品，其余的储存起来。"),
    AccountKind.GOODS: _("可以到服务网点换生活用品。"),
    AccountKind.RESERVE: _("存着，将来您或家人需要上门服务时用。"),
}
TOTAL_LABEL = _("我的时间一共")
TOTAL_WORDS = _("是下面三部分加起来。")
SPENDABLE_LABEL = _("可以用来换上门服务的")
SPENDABLE_WORDS = _("是“待结算”和“储存”两部分加起来。")
WHY_TWO_NUMBERS = _(
    "为什么两个数不一样：“可兑换物品”那部分只能到服务网点换生活用品，不能换上门服务，也不能转赠，"
    "所以可以换服务的时间比一共的少。"
)


@dataclass(frozen=True)
class Part:
    kind: str
    label: str
    minutes: int
    words: str


@dataclass(frozen=True)
class Balance:
    """A member's time: the one total, its three parts with their words, and what may pay for a service."""

    parts: list[Part]

    @property
    def total(self) -> int:
        return sum(p.minutes for p in self.parts)

    @property
    def spendable(self) -> int:
        return sum(p.minutes for p in self.parts if p.kind != AccountKind.GOODS)

    total_label = TOTAL_LABEL
    total_words = TOTAL_WORDS
    spendable_label = SPENDABLE_LABEL
    spendable_words = SPENDABLE_WORDS
    why_two_numbers = WHY_TWO_NUMBERS


def balance_of(member_id: int) -> Balance:
    """The member's balance, explained (one query)."""
    rows = dict(Account.objects.filter(member_id=member_id).values_list("kind", "balance_minutes"))
    return Balance(
        [Part(k.value, str(k.label), rows.get(k.value, 0), str(PART_WORDS[k.value])) for k in MEMBER_BUCKETS]
    )


# (kind, money came in) -> the words; None for "the same either way".
WORDS = {
    (TransactionKind.SERVICE_REDEMPTION, True): _("服务他人"),
    (TransactionKind.SERVICE_REDEMPTION, False): _("兑换服务"),
    (TransactionKind.DEPOSIT, True): _("服务他人"),
    (TransactionKind.DEPOSIT, False): _("服务记录撤回"),
    (TransactionKind.SERVICE_RECORD, True): _("服务他人（社区登记）"),
    (TransactionKind.SERVICE_RECORD, False): _("服务记录撤回"),
    (TransactionKind.WITHDRAWAL, False): _("兑换服务"),
    (TransactionKind.WITHDRAWAL, True): _("退回时间"),
    (TransactionKind.DONATION, False): _("捐赠给时间银行"),
    (TransactionKind.DONATION, True): _("收到捐赠的时间"),
    (TransactionKind.GOODS_REDEMPTION, False): _("兑换物品"),
    (TransactionKind.GOODS_REDEMPTION, True): _("兑换物品退回"),
    (TransactionKind.ADJUSTMENT, True): _("工作人员补记"),
    (TransactionKind.ADJUSTMENT, False): _("工作人员扣减"),
    (TransactionKind.SETTLEMENT, True): _("结算：分到这一部分"),
    (TransactionKind.SETTLEMENT, False): _("结算：从待结算分出"),
}


@dataclass(frozen=True)
class StatementLine:
    leg: Leg
    words: str


def describe(legs: Iterable[Leg], member_id: int) -> list[StatementLine]:
    """Each of a member's legs with its words. One query for the other members in those transactions (the
    name in 转赠给… and 收到…的转赠)."""
    legs = list(legs)
    tx_ids = {leg.transaction_id for leg in legs}
    others: dict[int, str] = {}
    if tx_ids:
        rows = (
            Leg.objects.filter(transaction_id__in=tx_ids, account__member__isnull=False)
            .exclude(account__member_id=member_id)
            .values_list("transaction_id", "account__member__name")
        )
        for tx_id, name in rows:
            others.setdefault(tx_id, name)
    return [StatementLine(leg, str(_words(leg, others.get(leg.transaction_id)))) for leg in legs]


def _words(leg: Leg, other: str | None) -> str:
    tx = leg.transaction
    came_in = leg.minutes > 0
    if tx.kind == TransactionKind.REVERSAL:
        return str(_("撤销一笔记录，时间退回") if came_in else _("撤销一笔记录，时间扣回"))
    if tx.kind == TransactionKind.TRANSFER:
        if other:
            return str((_("收到%(name)s的转赠") if came_in else _("转赠给%(name)s")) % {"name": other})
        return str(_("收到家人的转赠") if came_in else _("转赠给家人"))
    words = WORDS.get((TransactionKind(tx.kind), came_in))
    return str(words if words is not None else tx.get_kind_display())
