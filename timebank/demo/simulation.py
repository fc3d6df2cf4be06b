"""Walking the drafted steps in time order with the balances the actions will see."""

from __future__ import annotations

import dataclasses

from timebank.approvals import demo as approvals_demo
from timebank.catalogue.demo import SERVICE_BY_NAME
from timebank.catalogue.demo_timeline import MULTIPLIERS, TIER_NAMES
from timebank.demo.timeline import Timeline
from timebank.demo.world import GOODS_SHARE_PERCENT
from timebank.funds import actions as funds_actions
from timebank.goods import actions as goods_actions
from timebank.goods.demo_timeline import StockCountDraft
from timebank.ledger import actions as ledger_actions
from timebank.ledger import settlement
from timebank.ledger.demo_timeline import DonationDraft, TransferDraft, WithdrawalDraft
from timebank.lib.demo_plan import SETTLED, Do, Ref, Step, do, when
from timebank.members.demo import POOR
from timebank.orders import actions as order_actions
from timebank.orders.demo_history import ServiceDraft
from timebank.orders.demo_timeline import OrderInfo
from timebank.orgs.demo import BANK1, BANK2


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
            steps += self.decide(draft)
        return steps

    def decide(self, step: Step) -> list[Step]:
        match step:
            case Do(
                action=approvals_demo.with_second_person
                | ledger_actions.do_deposit
                | ledger_actions.do_withdrawal
                | ledger_actions.do_transfer
            ):
                self.account(step)
            case ServiceDraft():
                return [self.service(step)]
            case DonationDraft():
                minutes = min(self.free(step.donor), step.wish)
                if minutes <= 0:
                    return []
                return self.decide(
                    self.tl.ledger(step.at, "donation", step.donor, minutes, "自愿捐赠到捐赠池，帮助困难老人")
                )
            case WithdrawalDraft():
                candidates = [r for r in self.tl.active(step.bank, "recipient") if self.free(r.index) >= 60]
                if not candidates:
                    return []
                r = self.rng.choice(candidates)
                minutes = min(self.free(r.index) // 30 * 30, step.wish)
                memo = f"兑换服务：{step.item} {minutes} 分钟"
                return self.decide(self.tl.ledger(step.at, "withdrawal", r.index, minutes, memo))
            case TransferDraft():
                minutes = min(self.free(step.giver) // 30 * 30, step.wish)
                if minutes <= 0:
                    return []
                memo = f"转赠亲属{self.tl.people[step.receiver].name}（{step.relation}孝心转赠）"
                return self.decide(self.tl.ledger(step.at, "transfer", step.giver, minutes, memo, other=step.receiver))
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

    def account(self, call: Do) -> None:
        """What a call that moves time does to the balances, as the ledger's actions will do it."""
        kw = call.kwargs
        if call.action is approvals_demo.with_second_person:  # a credit entered by staff
            if call.args[1] is ledger_actions.do_adjustment:
                b = self.balance[kw["member"].key]
                b[("earned", "goods", "reserve").index(kw["bucket"])] += kw["minutes"]
            else:  # a service record
                _person, item = kw["service_item"].key
                self.balance[kw["volunteer"].key][0] += kw["minutes"] * MULTIPLIERS[SERVICE_BY_NAME[item].tier]
        elif call.action is ledger_actions.do_deposit:
            volunteer, minutes = kw["volunteer"].key, kw["minutes"]
            bank = self.tl.people[volunteer].bank
            self.balance[volunteer][0] += minutes
            if kw["payer"] == "recipient":
                payer = kw["payer_member"].key
                assert self.free(payer) >= minutes
                self.pay(payer, minutes)
            else:
                assert self.pool_free(bank) >= minutes
                self.pool[bank] -= minutes
        else:  # a withdrawal, a transfer to a relative or a donation to the pool
            member, minutes = (kw.get("member") or kw["from_member"]).key, kw["minutes"]
            bank = self.tl.people[member].bank
            assert self.free(member) >= minutes, "the plan would overdraw"
            self.pay(member, minutes)
            if kw.get("to_member") is not None:
                self.balance[kw["to_member"].key][2] += minutes
            elif kw.get("kind") == "donation":
                self.pool[bank] += minutes

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
            op = tl.ledger(draft.at, "deposit", volunteer.index, minutes, memo, payer=payer, other=recipient.index)
            self.account(op)
            return op
        served = draft.at - draft.base - 30
        record = tl.service_record(
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
