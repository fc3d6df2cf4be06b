"""The fund ledger (资金, in yuan): income by source, expenses by kind, donations in kind, and the
emergency fund (专项基金) buying a service that volunteers could not provide. Entries are never edited;
a correction is a reversing entry."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.catalogue.actions import weighted_minutes
from timebank.funds.models import Direction, ExpenseKind, Fund, FundEntry, Source
from timebank.funds.money import check_amount, yuan
from timebank.goods.actions import do_create_goods, do_restock
from timebank.goods.models import Goods
from timebank.ledger.models import AccountKind, Transaction, TransactionKind
from timebank.ledger.posting import lock_set, post
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.lib.masking import PERSONAL_NUMBER
from timebank.members.models import Member
from timebank.ops.idempotency import check_key, fingerprint, scope_of, write_once
from timebank.orders.actions import check_may_spend, transition
from timebank.orders.models import Order, Payer
from timebank.orders.rules import allows
from timebank.orgs.models import Org, OrgKind, Rules, User

EARLIEST = dt.date(1990, 1, 1)
BOUGHT_SERVICE_NOTE = "由专项基金购买服务"


def _text(value: str, max_length: int, field: str, *, required: bool = False) -> str:
    value = value.strip()
    if "\x00" in value or len(value) > max_length:
        raise Invalid(_("文字太长或含有无效字符。"), fields={field: "invalid"})
    if required and not value:
        raise Invalid(_("这一项必须填写。"), fields={field: "required"})
    return value


def check_occurred_on(day: object, field: str = "occurred_on") -> dt.date:
    if not isinstance(day, dt.date) or isinstance(day, dt.datetime):
        raise Invalid(_("日期格式应为 YYYY-MM-DD。"), fields={field: "invalid"})
    if day > clock.localdate():
        raise Invalid(_("日期不能在将来。"), fields={field: "in_future"})
    if day < EARLIEST:
        raise Invalid(_("日期太早了。"), fields={field: "too_early"})
    return day


def _bank_id(org: Org) -> int:
    if org.head_office_id is None:
        raise Invalid(_("这个机构不属于任何时间银行。"), fields={"org_id": "no_bank"})
    return org.head_office_id


@dataclass(frozen=True)
class EntryInput:
    """What a staff member writes in the fund book. `source` for income, `kind` for an expense."""

    direction: str
    amount: object
    occurred_on: object
    source: str = ""
    kind: str = ""
    fund: str = Fund.GENERAL
    description: str = ""
    donor_name: str = ""
    provider: str = ""


@dataclass(frozen=True)
class CheckedEntry:
    direction: str
    amount: Decimal
    occurred_on: dt.date
    source: str
    kind: str
    fund: str
    description: str
    donor_name: str
    provider: str


def check_entry(org: Org, data: EntryInput) -> CheckedEntry:
    """Validate one entry; every refusal is a 422 naming the field."""
    bank_id = _bank_id(org)
    if data.direction not in Direction.values:
        raise Invalid(_("方向只能是 income 或 expense。"), fields={"direction": "invalid"})
    if data.direction == Direction.INCOME:
        if data.source not in Source.values:
            raise Invalid(
                _("收入来源只能是 government、society、enterprise 或 residents。"), fields={"source": "invalid"}
            )
        if data.kind:
            raise Invalid(_("收入不填支出类别。"), fields={"kind": "not_for_income"})
    else:
        if data.kind not in ExpenseKind.values:
            raise Invalid(_("未知的支出类别。"), fields={"kind": "invalid"})
        if data.source:
            raise Invalid(_("支出不填收入来源。"), fields={"source": "not_for_expense"})
    if data.fund not in Fund.values:
        raise Invalid(_("资金只能是 general 或 emergency。"), fields={"fund": "invalid"})
    donor = _text(data.donor_name, 100, "donor_name")
    if donor and data.direction != Direction.INCOME:
        raise Invalid(_("只有收入才有捐赠方。"), fields={"donor_name": "not_for_expense"})
    if PERSONAL_NUMBER.search(donor):
        raise Invalid(_("捐赠方名称里不要写电话或证件号码。"), fields={"donor_name": "personal_number"})
    if donor and data.source == Source.ENTERPRISE and Member.objects.filter(bank_id=bank_id, name=donor).exists():
        # Enterprise names are disclosed to the public; a person's name must never be.
        raise Invalid(_("这是一位会员的姓名：个人捐款请记为“居民筹集”。"), fields={"donor_name": "person"})
    provider = _text(data.provider, 100, "provider")
    if PERSONAL_NUMBER.search(provider):
        raise Invalid(_("服务机构名称里不要写电话或证件号码。"), fields={"provider": "personal_number"})
    return CheckedEntry(
        direction=data.direction,
        amount=check_amount(data.amount),
        occurred_on=check_occurred_on(data.occurred_on),
        source=data.source if data.direction == Direction.INCOME else "",
        kind=data.kind if data.direction == Direction.EXPENSE else "",
        fund=data.fund,
        description=_text(data.description, 500, "description"),
        donor_name=donor,
        provider=provider,
    )


def _new_entry(
    actor: User | None, org: Org, e: CheckedEntry, *, key: str | None, fp: str, **extra: object
) -> FundEntry:
    return FundEntry.objects.create(
        bank_id=_bank_id(org),
        org=org,
        direction=e.direction,
        source=e.source,
        kind=e.kind,
        fund=e.fund,
        amount=e.amount,
        occurred_on=e.occurred_on,
        description=e.description,
        donor_name=e.donor_name,
        provider=e.provider,
        created_by=actor if actor and actor.pk else None,
        idem_scope=scope_of(actor) if key else "",
        idempotency_key=key,
        fingerprint=fp if key else "",
        **extra,
    )


def _audit(actor: User | None, action: str, entry: FundEntry, **data: object) -> None:
    record(
        actor,
        action,
        entry,
        bank_id=entry.bank_id,
        data={
            "org": entry.org_id,
            "direction": entry.direction,
            "category": entry.category,
            "fund": entry.fund,
            "amount": yuan(entry.amount),
            **data,
        },
    )


def do_record_entry(
    actor: User | None, org: Org, data: EntryInput, *, idempotency_key: str | None = None
) -> tuple[FundEntry, bool]:
    """Book one income or expense for `org`. Returns (entry, replayed)."""
    e = check_entry(org, data)
    key = check_key(idempotency_key)
    fp = fingerprint("fund_entry", {"org": org.pk, **e.__dict__})

    def body() -> FundEntry:
        entry = _new_entry(actor, org, e, key=key, fp=fp)
        _audit(actor, "funds.record", entry)
        return entry

    return write_once(FundEntry.objects.all(), actor, key, fp, body)


@dataclass(frozen=True)
class StockInput:
    """Put donated goods on an outlet's shelf: restock `goods`, or create new goods there."""

    outlet: Org
    quantity: int
    goods: Goods | None = None
    name: str = ""
    price_minutes: int = 0


def _stock(actor: User | None, org: Org, stock: StockInput, note: str) -> Goods:
    if stock.outlet.head_office_id != org.head_office_id:
        raise Invalid(_("网点属于另一家时间银行。"), fields={"stock.outlet_id": "other_bank"})
    if not 1 <= stock.quantity <= 1_000_000:
        raise Invalid(_("入库数量不合理。"), fields={"stock.quantity": "out_of_range"})
    if stock.goods is not None:
        if stock.goods.outlet_id != stock.outlet.pk:
            raise Invalid(_("这件物品不在这个网点。"), fields={"stock.goods_id": "mismatch"})
        return do_restock(actor, stock.goods, quantity=stock.quantity, note=note)
    if stock.outlet.kind not in (OrgKind.OUTLET, OrgKind.SUB_BRANCH):
        raise Invalid(_("物品只能放在网点或支行。"), fields={"stock.outlet_id": "wrong_kind"})
    return do_create_goods(
        actor, outlet=stock.outlet, name=stock.name, price_minutes=stock.price_minutes, stock=stock.quantity
    )


def do_record_in_kind(
    actor: User | None,
    org: Org,
    *,
    source: str,
    estimated_value: object,
    occurred_on: object,
    item_description: str,
    donor_name: str = "",
    description: str = "",
    fund: str = Fund.GENERAL,
    stock: StockInput | None = None,
    idempotency_key: str | None = None,
) -> tuple[FundEntry, bool]:
    """A donation in kind, booked as income at its estimated value; optionally stocks an outlet's goods
    in the same transaction."""
    e = check_entry(
        org,
        EntryInput(
            direction=Direction.INCOME,
            amount=estimated_value,
            occurred_on=occurred_on,
            source=source,
            fund=fund,
            description=description,
            donor_name=donor_name,
        ),
    )
    item = _text(item_description, 200, "item_description", required=True)
    key = check_key(idempotency_key)
    fp = fingerprint(
        "fund_in_kind",
        {
            "org": org.pk,
            **e.__dict__,
            "item": item,
            "stock": None
            if stock is None
            else [
                stock.outlet.pk,
                stock.goods.pk if stock.goods else None,
                stock.name,
                stock.price_minutes,
                stock.quantity,
            ],
        },
    )

    def body() -> FundEntry:
        goods = _stock(actor, org, stock, note=f"捐赠入库：{item}"[:200]) if stock is not None else None
        entry = _new_entry(actor, org, e, key=key, fp=fp, in_kind=True, item_description=item, goods=goods)
        _audit(
            actor, "funds.in_kind", entry, goods=goods.pk if goods else None, quantity=stock.quantity if stock else 0
        )
        return entry

    return write_once(FundEntry.objects.all(), actor, key, fp, body)


@transaction.atomic
def do_reverse_entry(actor: User | None, entry: FundEntry, *, reason: str) -> FundEntry:
    """Correct a mistake: book the same line with the amount negated. An entry is reversed once."""
    reason = _text(reason, 500, "reason", required=True)
    entry = FundEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.reverses_id is not None:
        raise Conflict(_("冲正记录不能再冲正，请重新记一笔。"), code="cannot_reverse_reversal")
    if FundEntry.objects.filter(reverses=entry).exists():
        raise Conflict(_("这条记录已经冲正过了。"), code="already_reversed")
    reversal = FundEntry.objects.create(
        bank_id=entry.bank_id,
        org_id=entry.org_id,
        direction=entry.direction,
        source=entry.source,
        kind=entry.kind,
        fund=entry.fund,
        amount=-entry.amount,
        occurred_on=clock.localdate(),
        description=entry.description,
        donor_name=entry.donor_name,
        provider=entry.provider,
        in_kind=entry.in_kind,
        item_description=entry.item_description,
        goods_id=entry.goods_id,
        order_id=entry.order_id,
        reverses=entry,
        reason=reason,
        created_by=actor if actor and actor.pk else None,
    )
    _audit(actor, "funds.reverse", reversal, reverses=entry.pk, reason=reason)
    return reversal


def _redeem_for_order(actor: User | None, order: Order, minutes: int) -> Transaction:
    """The recipient pays the order's weighted minutes from `reserve`, then `earned` (down to the overdraft
    limit), as for a volunteer's service. No volunteer earns them: they go back to issuance (retired)."""
    locked = lock_set(order.bank_id, [order.recipient_id], [AccountKind.ISSUANCE])
    reserve = locked.bucket(order.recipient_id, AccountKind.RESERVE)
    earned = locked.bucket(order.recipient_id, AccountKind.EARNED)
    floor = -Rules.objects.values_list("overdraft_minutes", flat=True).get(head_office_id=order.bank_id)
    spendable = reserve.balance_minutes + earned.balance_minutes
    if spendable - minutes < floor:
        raise Conflict(
            _("时间余额不足以支付这次服务。"),
            code="insufficient_balance",
            fields={"available_minutes": spendable - floor, "needed_minutes": minutes},
        )
    from_reserve = min(minutes, max(reserve.balance_minutes, 0))
    return post(
        bank_id=order.bank_id,
        kind=TransactionKind.SERVICE_REDEMPTION,
        legs=[
            (reserve, -from_reserve),
            (earned, -(minutes - from_reserve)),
            (locked.system(AccountKind.ISSUANCE), minutes),
        ],
        actor=actor,
        memo=f"订单 #{order.pk} {order.service_item.name}（{BOUGHT_SERVICE_NOTE}）",
    )


def fund_balance(org: Org, fund: str) -> Decimal:
    """What is left in one of the org's own funds: cash in minus money out (reversals carry negated amounts,
    so plain sums hold). Goods given in kind are not money. Summed in Python: Decimal stays exact on SQLite."""
    rows = FundEntry.objects.filter(org=org, fund=fund).values_list("direction", "in_kind", "amount")
    balance = Decimal(0)
    for direction, in_kind, amount in rows.iterator():
        if direction == Direction.EXPENSE:
            balance -= amount
        elif not in_kind:
            balance += amount
    return balance


@transaction.atomic
def do_buy_market_service(
    actor: User | None,
    order: Order,
    *,
    fund_org: Org,
    provider: str,
    amount: object,
    note: str = "",
    unfillable: bool = False,
    occurred_on: dt.date | None = None,
) -> tuple[Order, FundEntry]:
    """专项基金: volunteers could not take an order paid from stored time within the rules' time, so staff buy
    the service from a paid provider. The order is completed and the recipient's credits are honoured
    (their minutes are redeemed as for any service); the money is booked to the emergency fund of
    `fund_org` (the order's org or an org above it)."""
    money = check_amount(amount)
    provider = _text(provider, 100, "provider", required=True)
    if PERSONAL_NUMBER.search(provider):
        raise Invalid(_("服务机构名称里不要写电话或证件号码。"), fields={"provider": "personal_number"})
    note = _text(note, 500, "note")
    day = check_occurred_on(occurred_on or clock.localdate())
    if unfillable and not note:
        raise Invalid(_("请说明为什么志愿者无法完成这个订单。"), fields={"note": "required"})
    # of=("self",): the order only, as the service loop locks it (locking the shared service item deadlocked).
    order = Order.objects.select_for_update(of=("self",)).select_related("service_item", "recipient").get(pk=order.pk)
    if fund_org.head_office_id != order.bank_id or not fund_org.contains(order.org):
        raise Invalid(_("付款的机构应是订单所在机构或其上级。"), fields={"org_id": "not_above_order"})
    if not allows("buy-service", order.state):
        raise Conflict(
            _("只有还在等待派单的订单才能由专项基金购买服务。"),
            code="invalid_transition",
            fields={"state": order.state, "action": "buy-service"},
        )
    if order.payer != Payer.RECIPIENT:
        raise Conflict(
            _("只有用本人储存时间支付的订单才由专项基金兜底。"),
            code="not_paid_from_time",
            fields={"payer": order.payer},
        )
    rules = Rules.objects.get(head_office_id=order.bank_id)
    if not unfillable and not order.is_overdue(rules.dispatch_within_hours):
        raise Conflict(
            _("订单还没有超过规定的派单时间；确实无人能接时，请勾选“无法由志愿者完成”并说明原因。"),
            code="not_overdue",
            fields={"dispatch_within_hours": rules.dispatch_within_hours},
        )
    check_may_spend(order.recipient, rules)
    credited = weighted_minutes(order.planned_minutes, order.multiplier)
    tx = _redeem_for_order(actor, order, credited)
    # One purchase at a time per fund, so two cannot both spend the last of it (after the recipient's
    # minutes: a refusal here rolls their redemption back with everything else).
    Org.objects.select_for_update().filter(pk=fund_org.pk).first()
    available = fund_balance(fund_org, Fund.EMERGENCY)
    if available < money:
        raise Conflict(
            _(
                "%(org)s的专项基金余额不足：还有 %(available)s 元，这次需要 %(amount)s 元。"
                "请先登记专项基金收入，或改由上级机构的专项基金支付。"
            )
            % {"org": fund_org.name, "available": yuan(available), "amount": yuan(money)},
            code="insufficient_fund",
            fields={"available": yuan(available), "amount": yuan(money)},
        )
    entry = FundEntry.objects.create(
        bank_id=order.bank_id,
        org=fund_org,
        direction=Direction.EXPENSE,
        kind=ExpenseKind.MARKET_SERVICES,
        fund=Fund.EMERGENCY,
        amount=money,
        occurred_on=day,
        description=(f"订单 #{order.pk} {order.service_item.name}" + (f"：{note}" if note else ""))[:500],
        provider=provider,
        order=order,
        created_by=actor if actor and actor.pk else None,
    )
    order.actual_minutes = order.planned_minutes
    order.credited_minutes = credited
    order.transaction = tx
    order.confirmed_at = clock.now()
    transition(
        order,
        actor,
        "buy-service",
        note=f"{BOUGHT_SERVICE_NOTE}：{provider}" + (f"（{note}）" if note else ""),
        fields=("actual_minutes", "credited_minutes", "transaction", "confirmed_at"),
    )
    _audit(actor, "funds.buy_service", entry, order=order.pk, transaction=tx.pk, minutes=credited)
    return order, entry
