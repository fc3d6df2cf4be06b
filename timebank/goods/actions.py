"""Goods at outlets: stock kept exact, redemptions paid from the `goods` bucket, vouchers used once."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.goods.models import Goods, Redemption, StockMovement, StockMovementKind, VoucherStatus
from timebank.ledger.actions import member_account_ids, system_account_id
from timebank.ledger.models import AccountKind, Transaction, TransactionKind
from timebank.ledger.posting import check_key, fingerprint, lock_accounts, post, run_idempotent
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Member, MemberStatus
from timebank.orgs.actions import check_name
from timebank.orgs.models import Org, OrgKind, User

MAX_STOCK = 1_000_000
MAX_PRICE = 100_000


def _bank(org: Org) -> int:
    assert org.head_office_id is not None
    return org.head_office_id


@transaction.atomic
def do_create_goods(actor: User | None, *, outlet: Org, name: str, price_minutes: int, stock: int) -> Goods:
    if outlet.kind not in (OrgKind.OUTLET, OrgKind.SUB_BRANCH):
        raise Invalid(_("物品只能放在网点或支行。"), fields={"outlet_id": "wrong_kind"})
    if not 1 <= price_minutes <= MAX_PRICE:
        raise Invalid(_("价格应在 1 到 100000 分钟之间。"), fields={"price_minutes": "out_of_range"})
    if not 0 <= stock <= MAX_STOCK:
        raise Invalid(_("库存数量不合理。"), fields={"stock": "out_of_range"})
    goods = Goods.objects.create(outlet=outlet, name=check_name(name), price_minutes=price_minutes, stock=stock)
    if stock:
        StockMovement.objects.create(
            goods=goods,
            kind=StockMovementKind.RESTOCK,
            change=stock,
            stock_after=stock,
            note="初始库存",
            actor=actor if actor and actor.pk else None,
        )
    record(
        actor,
        "goods.create",
        goods,
        bank_id=_bank(outlet),
        data={"name": goods.name, "stock": stock, "price_minutes": price_minutes},
    )
    return goods


@transaction.atomic
def do_restock(actor: User | None, goods: Goods, *, quantity: int, note: str = "") -> Goods:
    if not 1 <= quantity <= MAX_STOCK:
        raise Invalid(_("入库数量不合理。"), fields={"quantity": "out_of_range"})
    goods = Goods.objects.select_for_update().get(pk=goods.pk)
    if goods.stock + quantity > MAX_STOCK:
        raise Invalid(_("库存数量不合理。"), fields={"quantity": "out_of_range"})
    goods.stock += quantity
    goods.save(update_fields=["stock"])
    StockMovement.objects.create(
        goods=goods,
        kind=StockMovementKind.RESTOCK,
        change=quantity,
        stock_after=goods.stock,
        note=note[:200],
        actor=actor if actor and actor.pk else None,
    )
    record(
        actor, "goods.restock", goods, bank_id=_bank(goods.outlet), data={"quantity": quantity, "stock": goods.stock}
    )
    return goods


@transaction.atomic
def do_stock_count(actor: User | None, goods: Goods, *, counted: int, note: str = "") -> Goods:
    """盘点: record the counted stock; the difference is kept as a movement."""
    if not 0 <= counted <= MAX_STOCK:
        raise Invalid(_("库存数量不合理。"), fields={"counted": "out_of_range"})
    goods = Goods.objects.select_for_update().get(pk=goods.pk)
    change = counted - goods.stock
    goods.stock = counted
    goods.save(update_fields=["stock"])
    StockMovement.objects.create(
        goods=goods,
        kind=StockMovementKind.COUNT,
        change=change,
        stock_after=counted,
        note=note[:200],
        actor=actor if actor and actor.pk else None,
    )
    record(actor, "goods.count", goods, bank_id=_bank(goods.outlet), data={"counted": counted, "change": change})
    return goods


def do_redeem(
    actor: User | None,
    *,
    member: Member,
    goods: Goods,
    quantity: int,
    outlet: Org,
    idempotency_key: str | None,
) -> tuple[Redemption, bool]:
    """Spend from `goods` only, and take the stock in the same transaction. 409 without stock or minutes."""
    if not 1 <= quantity <= 1000:
        raise Invalid(_("数量应在 1 到 1000 之间。"), fields={"quantity": "out_of_range"})
    if goods.outlet_id != outlet.pk:
        raise Invalid(_("这件物品不在这个网点。"), fields={"outlet_id": "mismatch"})
    if member.bank_id != outlet.head_office_id:
        raise Invalid(_("会员属于另一家时间银行。"), fields={"member_id": "other_bank"})
    key = check_key(idempotency_key)
    fp = fingerprint("goods_redemption", {"member": member.pk, "goods": goods.pk, "q": quantity, "outlet": outlet.pk})

    def body() -> Transaction:
        if member.status != MemberStatus.ACTIVE:
            raise Conflict(_("会员不是正常状态，不能办理。"), code="member_not_active")
        ids = member_account_ids(member.pk)
        sink = system_account_id(member.bank_id, AccountKind.GOODS_REDEEMED)
        locked = lock_accounts([ids[AccountKind.GOODS], sink])
        item = Goods.objects.select_for_update().get(pk=goods.pk)
        if not item.active:
            raise Conflict(_("这件物品已下架。"), code="goods_inactive")
        if item.stock < quantity:
            raise Conflict(_("库存不足。"), code="out_of_stock", fields={"stock": item.stock})
        price = item.price_minutes * quantity
        wallet = locked[ids[AccountKind.GOODS]]
        if wallet.balance_minutes < price:
            raise Conflict(
                _("可兑换物品的时间不足。"),
                code="insufficient_balance",
                fields={"available_minutes": wallet.balance_minutes, "price_minutes": price},
            )
        tx = post(
            bank_id=member.bank_id,
            kind=TransactionKind.GOODS_REDEMPTION,
            legs=[(wallet, -price), (locked[sink], price)],
            actor=actor,
            memo=f"{item.name} × {quantity}",
            key=key,
            fp=fp,
        )
        item.stock -= quantity
        item.save(update_fields=["stock"])
        StockMovement.objects.create(
            goods=item,
            kind=StockMovementKind.REDEMPTION,
            change=-quantity,
            stock_after=item.stock,
            actor=actor if actor and actor.pk else None,
        )
        redemption = Redemption.objects.create(
            member=member,
            goods=item,
            outlet=outlet,
            quantity=quantity,
            minutes=price,
            transaction=tx,
            voucher_code=secrets.token_hex(8),
        )
        record(
            actor,
            "goods.redeem",
            redemption,
            bank_id=member.bank_id,
            data={"member": member.pk, "goods": item.pk, "quantity": quantity, "minutes": price},
        )
        return tx

    tx, replayed = run_idempotent(actor, key, fp, body)
    return Redemption.objects.select_related("goods", "member").get(transaction=tx), replayed


@transaction.atomic
def do_hand_over(actor: User | None, redemption: Redemption) -> Redemption:
    """The outlet checks the voucher and hands the goods over. A voucher works once."""
    redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
    if redemption.status != VoucherStatus.ISSUED:
        raise Conflict(
            _("这张兑换券已经用过了。"),
            code="voucher_used",
            fields={"handed_over_at": redemption.handed_over_at.isoformat() if redemption.handed_over_at else None},
        )
    redemption.status = VoucherStatus.HANDED_OVER
    redemption.handed_over_at = timezone.now()
    redemption.handed_over_by = actor if actor and actor.pk else None
    redemption.save(update_fields=["status", "handed_over_at", "handed_over_by"])
    record(
        actor,
        "goods.hand_over",
        redemption,
        bank_id=redemption.member.bank_id,
        data={"voucher": redemption.voucher_code[:4] + "…"},
    )
    return redemption
