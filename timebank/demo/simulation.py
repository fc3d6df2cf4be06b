"""Walking the drafted steps in time order with the balances the actions will see."""

from __future__ import annotations

import dataclasses

from timebank.approvals.demo import with_second_person
from timebank.catalogue.demo import SERVICE_BY_NAME
from timebank.demo.steps import (
    SETTLED,
    Do,
    DonationDraft,
    LedgerOp,
    OrderInfo,
    RecordService,
    Ref,
    ServiceDraft,
    Step,
    StockCountDraft,
    TransferDraft,
    WithdrawalDraft,
    do,
    when,
)
from timebank.demo.timeline import Timeline
from timebank.demo.world import GOODS_SHARE_PERCENT, MULTIPLIERS, TIER_NAMES
from timebank.funds import actions as funds_actions
from timebank.goods import actions as goods_actions
from timebank.ledger import actions as ledger_actions
from timebank.ledger import settlement
from timebank.ledger.models import TransactionKind
from timebank.members.demo import POOR
from timebank.orders import actions as order_actions
from timebank.orgs.demo import BANK1, BANK2, manager_of


class Simulation:
    """Walks the drafts in time order with the balances the actions will see, and decides what each draft
    becomes: nobody overdraws, every order's payer can pay, no redemption exceeds its bucket or the stock.

    Money an open order may still cost is held back (`held`), so later spending cannot take it. An order paid
    from the recipient's time never spans the settlement, which turns part of `earned` into `goods`.
    """

    def __init__(self, timeline: Timeline) -> None:
        self.tl = timeline
        self.rng = timeline.rng
        self.balance = {p.index: [0, 0, 0] for p in timeline.people}  # earned, goods, reserve
        self.held = {p.index: 0 for p in timeline.people}
        self.pool = {BANK1: 0, BANK2: 0}
        self.pool_held = {BANK1: 0, BANK2: 0}
        self.stock: dict[str, int] = {}
        self.price: dict[str, int] = {}
        self.dropped: set[object] = set()  # redemptions that cannot happen (their `keep`)
        self.serving: dict[int, int] = {}  # order → its volunteer now
        self.settle_at = when(SETTLED + 1, 7, 30)

    def free(self, index: int) -> int:
        b = self.balance[index]
        return b[0] + b[2] - self.held[index]

    def pool_free(self, bank: str) -> int:
        return self.pool[bank] - self.pool_held[bank]

    def pay(self, index: int, minutes: int) -> None:
        """Reserve first, then earned, as the ledger's actions do."""
        b = self.balance[index]
        assert b[0] + b[2] >= minutes, "the plan would overdraw"
        from_reserve = min(minutes, max(b[2], 0))
        b[2] -= from_reserve
        b[0] -= minutes - from_reserve

    def run(self) -> list[Step]:
        steps: list[Step] = []
        for _at, _seq, draft in sorted(self.tl.drafts, key=lambda d: (d[0], d[1])):
            steps += [self.call_of(step) for step in self.decide(draft)]
        return steps

    def call_of(self, step: Step) -> Step:
        """A ledger operation or a service record as the call of its action (the other steps are calls already)."""
        match step:
            case LedgerOp():
                return self.ledger_call(step)
            case RecordService():
                # entered by the community's staff; above the threshold it waits for the second person
                return do(
                    step.at,
                    with_second_person,
                    Ref.second_of(step.actor),
                    order_actions.do_service_record,
                    Ref.maker(step.actor),
                    volunteer=Ref.member(step.volunteer),
                    service_item=Ref.item(step.volunteer, step.item),
                    minutes=step.minutes,
                    served_at=Ref.moment(step.served_at),
                    recipient=Ref.member(step.recipient),
                    memo=step.memo,
                    idempotency_key=Ref.idempotency_key(),
                )
        return step

    def ledger_call(self, op: LedgerOp) -> Do:
        person = self.tl.people[op.member]
        manager = manager_of(person.org, self.tl.specs)
        member, key = Ref.member(op.member), Ref.idempotency_key()
        if op.action == "adjustment":
            return do(
                op.at,
                with_second_person,
                Ref.second_of(manager),
                ledger_actions.do_adjustment,
                Ref.maker(manager),
                member=member,
                minutes=op.minutes,
                bucket=op.bucket,
                reason=op.memo,
                idempotency_key=key,
            )
        if op.action == "deposit":
            return do(
                op.at,
                ledger_actions.do_deposit,
                Ref.login(manager),
                volunteer=member,
                minutes=op.minutes,
                payer=op.payer,
                payer_member=Ref.member(op.other),
                kind=TransactionKind.SERVICE_REDEMPTION if op.payer == "recipient" else TransactionKind.DEPOSIT,
                memo=op.memo,
                idempotency_key=key,
            )
        if op.action == "withdrawal":
            return do(
                op.at, ledger_actions.do_withdrawal, Ref.login(manager), member=member, minutes=op.minutes, memo=op.memo,
                idempotency_key=key,
            )  # fmt: skip
        # transfers and donations are the member's own acts: by their login if they have one
        return do(
            op.at,
            ledger_actions.do_transfer,
            Ref.login(person.login) if person.login else None,
            from_member=member,
            to_member=Ref.member(op.other),
            minutes=op.minutes,
            kind="relative" if op.action == "transfer" else "donation",
            memo=op.memo,
            idempotency_key=key,
        )

    def decide(self, step: Step) -> list[Step]:
        match step:
            case LedgerOp():
                self.ledger(step)
            case RecordService():
                self.balance[step.volunteer][0] += step.minutes * MULTIPLIERS[SERVICE_BY_NAME[step.item].tier]
            case ServiceDraft():
                return [self.service(step)]
            case DonationDraft():
                minutes = min(self.free(step.donor), step.wish)
                if minutes <= 0:
                    return []
                return self.decide(LedgerOp(step.at, "donation", step.donor, minutes, "自愿捐赠到捐赠池，帮助困难老人"))
            case WithdrawalDraft():
                candidates = [r for r in self.tl.active(step.bank, "recipient") if self.free(r.index) >= 60]
                if not candidates:
                    return []
                r = self.rng.choice(candidates)
                minutes = min(self.free(r.index) // 30 * 30, step.wish)
                memo = f"兑换服务：{step.item} {minutes} 分钟"
                return self.decide(LedgerOp(step.at, "withdrawal", r.index, minutes, memo))
            case TransferDraft():
                minutes = min(self.free(step.giver) // 30 * 30, step.wish)
                if minutes <= 0:
                    return []
                memo = f"转赠亲属{self.tl.people[step.receiver].name}（{step.relation}孝心转赠）"
                return self.decide(LedgerOp(step.at, "transfer", step.giver, minutes, memo, other=step.receiver))
            case Do(action=order_actions.do_create_order):
                return [self.new_order(step)]
            case Do(action=order_actions.do_dispatch | order_actions.do_take):
                self.serving[step.args[1].key] = step.args[2].key
            case Do(action=order_actions.do_cancel):
                self.release(self.tl.orders[step.args[1].key])
            case Do(action=order_actions.do_confirm):
                self.confirm(step.args[1].key, step.kwargs["actual_minutes"])
            case Do(action=funds_actions.do_buy_market_service):
                info = self.tl.orders[step.args[1].key]
                assert info.payer == "recipient"
                self.held[info.recipient] -= info.hold
                self.pay(info.recipient, info.hold)
            case Do(action=settlement.do_settle):
                bank = step.args[1].key
                for person in self.tl.people:
                    b = self.balance[person.index]
                    if person.bank == bank and b[0] > 0:
                        goods = b[0] * GOODS_SHARE_PERCENT // 100
                        b[1], b[2], b[0] = b[1] + goods, b[2] + b[0] - goods, 0
            case Do(action=goods_actions.do_create_goods):
                assert isinstance(step.keep, str)
                self.stock[step.keep], self.price[step.keep] = step.kwargs["stock"], step.kwargs["price_minutes"]
            case Do(action=goods_actions.do_restock):
                self.stock[step.args[1].key] += step.kwargs["quantity"]
            case Do(action=funds_actions.do_record_in_kind):
                stock = step.kwargs["stock"]
                self.stock[stock.goods.key] += stock.quantity
            case StockCountDraft():
                key = f"goods:{step.goods}"
                counted = max(0, self.stock[key] - step.shortfall)
                self.stock[key] = counted
                who, goods = Ref.login(step.actor), Ref.kept(key)
                return [
                    do(step.at, goods_actions.do_stock_count, who, goods, counted=counted, note=step.note, keep=key)
                ]
            case Do(action=goods_actions.do_redeem):
                b = self.balance[step.kwargs["member"].key]
                goods = step.kwargs["goods"].key
                quantity = step.kwargs["quantity"]
                while quantity and (b[1] < self.price[goods] * quantity or self.stock[goods] < quantity):
                    quantity -= 1
                if not quantity:
                    self.dropped.add(step.keep)
                    return []
                b[1] -= self.price[goods] * quantity
                self.stock[goods] -= quantity
                return [dataclasses.replace(step, kwargs={**step.kwargs, "quantity": quantity})]
            case Do(action=goods_actions.do_hand_over):
                if step.args[1].key in self.dropped:
                    return []
        return [step]

    def ledger(self, op: LedgerOp) -> None:
        b = self.balance[op.member]
        bank = self.tl.people[op.member].bank
        if op.action == "adjustment":
            b[("earned", "goods", "reserve").index(op.bucket)] += op.minutes
        elif op.action == "deposit":
            b[0] += op.minutes
            if op.payer == "recipient":
                assert op.other is not None and self.free(op.other) >= op.minutes
                self.pay(op.other, op.minutes)
            else:
                assert self.pool_free(bank) >= op.minutes
                self.pool[bank] -= op.minutes
        else:
            assert self.free(op.member) >= op.minutes, "the plan would overdraw"
            self.pay(op.member, op.minutes)
            if op.other is not None:
                self.balance[op.other][2] += op.minutes
            elif op.action == "donation":
                self.pool[bank] += op.minutes

    def service(self, draft: ServiceDraft) -> Step:
        """A service arranged by the sub-branch: paid from the recipient's time, the pool, or a subsidy."""
        tl = self.tl
        volunteer, recipient = tl.people[draft.volunteer], tl.people[draft.recipient]
        item = SERVICE_BY_NAME[draft.item]
        mult = MULTIPLIERS[item.tier]
        minutes = draft.base * mult
        memo = f"为{recipient.name}提供{item.name} {draft.base} 分钟（{TIER_NAMES[item.tier]} ×{mult}）"
        roll = self.rng.random()
        payer = ""
        if roll < 0.25 and self.free(recipient.index) >= minutes:
            payer = "recipient"
        elif roll < 0.6 and POOR & set(recipient.recipient_categories) and self.pool_free(volunteer.bank) >= minutes:
            payer = "pool"
        if payer:
            op = LedgerOp(draft.at, "deposit", volunteer.index, minutes, memo, payer=payer, other=recipient.index)
            self.ledger(op)
            return op
        served = draft.at - draft.base - 30
        record = RecordService(
            draft.at, volunteer.index, item.name, draft.base, served, memo, draft.actor, recipient.index
        )
        self.balance[volunteer.index][0] += minutes
        return record

    def new_order(self, step: Do) -> Step:
        info = self.tl.orders[step.keep.key]
        payer = step.kwargs["payer"]
        spans_settlement = step.at < self.settle_at and (info.pays_at is None or info.pays_at > self.settle_at)
        if payer == "recipient":
            if self.free(info.recipient) >= info.hold and not spans_settlement:
                self.held[info.recipient] += info.hold
            else:
                assert not info.fixed_payer, "a story's payer cannot pay"
                payer = "subsidy"
        if payer == "pool":
            if self.pool_free(info.bank) >= info.hold:
                self.pool_held[info.bank] += info.hold
            else:
                assert not info.fixed_payer, "a story's payer cannot pay"
                payer = "subsidy"
        info.payer = payer
        if payer == step.kwargs["payer"]:
            return step
        return dataclasses.replace(step, kwargs={**step.kwargs, "payer": payer})

    def release(self, info: OrderInfo) -> None:
        if info.payer == "recipient":
            self.held[info.recipient] -= info.hold
        elif info.payer == "pool":
            self.pool_held[info.bank] -= info.hold

    def confirm(self, key: int, minutes: int) -> None:
        """The order is confirmed: its payer pays what the volunteer is credited."""
        info = self.tl.orders[key]
        credited = minutes * info.multiplier
        self.release(info)
        if info.payer == "recipient":
            self.pay(info.recipient, credited)
        elif info.payer == "pool":
            self.pool[info.bank] -= credited
        self.balance[self.serving[key]][0] += credited
