"""Goods at outlets: stock kept exact, redemptions paid from the `goods` bucket, vouchers used once."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets

from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.goods.models import (
    Goods,
    MemberCard,
    Redemption,
    StockMovement,
    StockMovementKind,
    VoucherStatus,
    WrongCardCode,
)
from timebank.ledger.actions import member_account_ids, system_account_id
from timebank.ledger.models import AccountKind, Transaction, TransactionKind
from timebank.ledger.posting import lock_accounts, post, run_idempotent
from timebank.lib import clock
from timebank.lib.errors import Conflict, Forbidden, Invalid
from timebank.members.models import Member, MemberStatus
from timebank.ops.idempotency import check_key, fingerprint
from timebank.orgs.actions import check_name
from timebank.orgs.models import Org, OrgKind, User

MAX_STOCK = 1_000_000
MAX_PRICE = 100_000

# The member-card code: 8 digits, short enough to read out. Guessing is bounded twice: one staff login may type
# only a few wrong codes in a row for one card (then that card is locked *for that login*), and only a few wrong
# codes a day, whichever members they try, so 10^8 codes cannot be walked at a counter. The lock is per card and
# staff login, not per card: otherwise any outlet's staff could lock an elder's card with 5 wrong codes and keep
# the elder out of every outlet. The member or a relative re-issues the card, and staff of the member's home
# subtree re-issue or unlock it (audited), which ends every login's lock on it.
CARD_CODE_DIGITS = 8
CARD_WRONG_LIMIT = 5
ACTOR_WRONG_LIMIT = 10
ACTOR_WRONG_WINDOW = dt.timedelta(hours=24)


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
            voucher_code=new_voucher_code(),
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


VOUCHER_DIGITS = 8


def new_voucher_code() -> str:
    """8 random digits, shown as 1234 5678: short to read aloud at the counter and to type. Guessing one is
    worth little: only staff who manage the voucher's outlet can look a code up (access_redemption), in person
    at the counter, with 10^8 codes against the few open vouchers of one outlet. Vouchers issued before
    (16 hex characters) keep working: the lookup takes both."""
    for _attempt in range(20):
        code = f"{secrets.randbelow(10**VOUCHER_DIGITS):0{VOUCHER_DIGITS}d}"
        if not Redemption.objects.filter(voucher_code=code).exists():
            return code
    raise RuntimeError("no free voucher code after 20 tries")  # 10^8 codes: never, unless the table is full


@transaction.atomic
def do_hand_over(actor: User | None, redemption: Redemption) -> Redemption:
    """The outlet checks the voucher and hands the goods over. A voucher works once."""
    redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
    if redemption.status == VoucherStatus.VOID:
        raise Conflict(_("这张兑换券已经作废（兑换已冲正），不能领取。"), code="voucher_void")
    if redemption.status != VoucherStatus.ISSUED:
        raise Conflict(
            _("这张兑换券已经用过了。"),
            code="voucher_used",
            fields={"handed_over_at": redemption.handed_over_at},  # a time: the API writes it in local time
        )
    redemption.status = VoucherStatus.HANDED_OVER
    redemption.handed_over_at = clock.now()
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


# Reversing a redemption (called by the ledger's do_reversal, inside its transaction) ------------------------
# Locks are taken voucher → accounts → goods → chain head: do_redeem takes accounts → goods → chain head and
# do_hand_over the voucher alone, so no two of them ever wait on each other in a cycle.


def lock_redemption_for_reversal(original: Transaction) -> Redemption | None:
    """The first step of reversing a goods redemption: lock its voucher and refuse when the goods were
    handed over (bringing goods back is a return, not a reversal). None for any other transaction."""
    if original.kind != TransactionKind.GOODS_REDEMPTION:
        return None
    redemption = Redemption.objects.select_for_update().filter(transaction_id=original.pk).first()
    if redemption is None:
        return None
    if redemption.status == VoucherStatus.HANDED_OVER:
        raise Conflict(
            _("物品已经交给会员，不能冲正这笔兑换。退货请另行办理。"),
            code="voucher_handed_over",
            fields={"handed_over_at": redemption.handed_over_at},  # a time: the API writes it in local time
        )
    if redemption.status == VoucherStatus.VOID:
        # Only a concurrent reversal gets here (a finished one is refused before the lock): it is the same race
        # as two reversals inserting the same row, so run_idempotent answers it as a replay of the same key or
        # a 409 `concurrent_update`.
        raise IntegrityError("the redemption was reversed by a concurrent request")
    return redemption


def void_reversed_redemption(actor: User | None, redemption: Redemption) -> None:
    """The second step, after the reversal has locked the accounts and before it posts: the voucher becomes
    void and the stock comes back, in the reversal's own transaction."""
    item = Goods.objects.select_for_update().get(pk=redemption.goods_id)
    # Put back what was taken, even if the goods were since counted down or taken off the shelf.
    item.stock += redemption.quantity
    item.save(update_fields=["stock"])
    StockMovement.objects.create(
        goods=item,
        kind=StockMovementKind.REVERSAL,
        change=redemption.quantity,
        stock_after=item.stock,
        note=f"#{redemption.pk}",
        actor=actor if actor and actor.pk else None,
    )
    redemption.status = VoucherStatus.VOID
    redemption.voided_at = clock.now()
    redemption.save(update_fields=["status", "voided_at"])
    record(
        actor,
        "goods.voucher_void",
        redemption,
        bank_id=_bank(item.outlet),
        data={"goods": item.pk, "quantity": redemption.quantity, "stock": item.stock},
    )


# The member card (proof of presence at an outlet) ---------------------------------------------------------


def _derive_code(card: MemberCard) -> str:
    mac = salted_hmac(
        "timebank.goods.member_card", f"{card.member_id}:{card.version}:{card.salt}", algorithm="sha256"
    ).digest()
    return f"{int.from_bytes(mac[:8], 'big') % 10**CARD_CODE_DIGITS:0{CARD_CODE_DIGITS}d}"


def _card(member: Member) -> MemberCard:
    card = MemberCard.objects.filter(member=member).first()
    if card is None:
        # Two first reads at once both try to create it: the loser's row is simply not inserted.
        MemberCard.objects.bulk_create([MemberCard(member=member, salt=secrets.token_hex(16))], ignore_conflicts=True)
        card = MemberCard.objects.get(member=member)
    return card


def card_code(member: Member) -> str:
    """The code on the member's card (issued on first use). Only the member and their relatives may read it."""
    return _derive_code(_card(member))


@transaction.atomic
def do_reissue_card(
    actor: User | None, member: Member, *, printed_by_staff: bool = False, by_staff: bool = False
) -> str:
    """A new code for a lost card or after wrong guesses: the old code stops working, the lock is lifted.
    Staff printing a paper card for a member always issue a new code, so what they saw is audited; so do staff
    of the member's home subtree re-issuing it through the API (`by_staff`)."""
    card = MemberCard.objects.select_for_update().get(pk=_card(member).pk)
    card.salt = secrets.token_hex(16)
    card.version += 1
    card.save(update_fields=["salt", "version"])
    action = "goods.card_printed" if printed_by_staff else "goods.card_reissued"
    by_staff = by_staff or printed_by_staff
    record(actor, action, member, bank_id=member.bank_id, data={"version": card.version, "by_staff": by_staff})
    return _derive_code(card)


@transaction.atomic
def do_unlock_card(actor: User | None, member: Member) -> int:
    """Staff of the member's home subtree end every staff login's lock on the card; the code stays the same (the
    member's paper card keeps working). Answers how many wrong codes were cleared."""
    card = MemberCard.objects.select_for_update().get(pk=_card(member).pk)
    cleared = WrongCardCode.objects.filter(member=member, card_version=card.version, cleared_at__isnull=True).update(
        cleared_at=clock.now()
    )
    record(actor, "goods.card_unlocked", member, bank_id=member.bank_id, data={"cleared": cleared})
    return cleared


def normalise_card_code(code: str) -> str:
    """1234 5678 or 1234-5678 as read out, written down or typed."""
    return "".join(ch for ch in code if ch not in " -")


def do_check_card_code(actor: User, *, member: Member, outlet: Org, code: str) -> None:
    """Staff at an outlet outside the member's subtree type the member's card code. A wrong code is counted
    and audited (and survives the refusal: it is committed before the 403 is raised), so call this outside the
    redemption's transaction."""
    with transaction.atomic():
        refusal = _check_card_code(actor, member=member, outlet=outlet, code=normalise_card_code(code))
    if refusal is not None:
        raise refusal


def _check_card_code(actor: User, *, member: Member, outlet: Org, code: str) -> Forbidden | None:
    # One staff login's checks run one at a time, so parallel guesses cannot all slip under the limit.
    User.objects.select_for_update().filter(pk=actor.pk).first()
    since = clock.now() - ACTOR_WRONG_WINDOW
    if WrongCardCode.objects.filter(actor=actor, created_at__gte=since).count() >= ACTOR_WRONG_LIMIT:
        return Forbidden(
            _("您今天输错会员卡码的次数太多，请明天再试，或请会员用自己的手机兑换。"), code="too_many_wrong_codes"
        )
    card = MemberCard.objects.select_for_update().get(pk=_card(member).pk)
    # This login's run of wrong codes on this card version (a right code or an unlock clears it).
    mine = WrongCardCode.objects.filter(member=member, actor=actor, card_version=card.version, cleared_at__isnull=True)
    wrong = mine.count()
    if wrong >= CARD_WRONG_LIMIT:
        return Forbidden(
            _("您在这张会员卡上输错卡码的次数太多，已不能再试。请会员的社区工作人员解锁，或请会员用自己的手机兑换。"),
            code="card_locked",
        )
    if hmac.compare_digest(code.encode(), _derive_code(card).encode()):
        mine.update(cleared_at=clock.now())
        return None
    WrongCardCode.objects.create(member=member, actor=actor, outlet=outlet, card_version=card.version)
    tries = wrong + 1  # the login's row is locked above, so nobody else added one meanwhile
    record(
        actor,
        "goods.card_code_wrong",
        member,
        bank_id=member.bank_id,
        data={"outlet": outlet.pk, "tries": tries},
    )
    if tries >= CARD_WRONG_LIMIT:
        record(actor, "goods.card_locked", member, bank_id=member.bank_id, data={"outlet": outlet.pk, "for": "actor"})
    return Forbidden(_("会员卡码不对。"), code="member_code_wrong")
