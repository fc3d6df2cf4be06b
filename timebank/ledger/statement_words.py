"""What a statement line says, from the member's side (issue 14, "Words from the member's side").

A transaction's kind names it from the bank's side: an order paid from the recipient's stored time is one
`service_redemption` (兑换服务) for both people in it, so a volunteer's earnings read 兑换服务. A member's line
says what happened to *them*: the volunteer served others (服务他人), the recipient used time for a service
(兑换服务), a gift is 转赠给<name> on one side and 收到<name>的转赠 on the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

from timebank.ledger.models import Leg, TransactionKind

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
