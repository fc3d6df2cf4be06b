"""The orders' part of the demo timeline: random orders with their outcomes, and the demo logins' stories
(点单 → 派单 → 接单 → service → confirmation → 评单).

An order's story also has steps of higher apps: the hotline's calls and return visits, the link to a need, a
service the emergency fund buys. Their apps draw them (`call`, `return_visit`, `open_need`, `needs_of`,
`link_need`, `buy_market_service` below are theirs): the timeline composed in `timebank/demo/timeline.py`
puts those parts above this one, at the same points of the story."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from timebank.catalogue.demo import CORE_MENU, SERVICE_BY_NAME, Service
from timebank.catalogue.demo_timeline import MULTIPLIERS
from timebank.lib.demo_plan import DAY, RECENT, Do, Ref, ago, day_of, daytime, do, when
from timebank.members.demo import POOR, PersonSpec, weighted
from timebank.orders import actions as order_actions
from timebank.orders.demo import (
    CANCEL_REASONS,
    DECLINE_REASONS,
    DISPUTE_CANCEL,
    DISPUTE_REASONS,
    NO_SHOW_NOTES,
    NO_VOLUNTEER,
    ORDER_NOTES,
    REVIEWS,
)
from timebank.orders.demo_history import OrdersHistory

RATINGS = {5: 55, 4: 30, 3: 10, 2: 4, 1: 1}
OUTCOMES = {
    "done": 62,
    "declined": 8,
    "no_show": 3,
    "cancelled": 8,
    "cancelled_dispatched": 5,
    "disputed": 6,
    "unfilled": 4,
}


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


@dataclass
class Story:
    """An order being drafted: its key, and the time of its latest step."""

    key: int
    recipient: PersonSpec
    item: Service
    t: int
    open: bool = True  # False once a step would fall after now: the rest has not happened yet


class OrderStories(OrdersHistory):
    """The orders of the timeline."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.order_keys = itertools.count(1)
        self.orders: dict[int, OrderInfo] = {}
        self.done_orders: list[tuple[int, int, PersonSpec, PersonSpec]] = []  # key, check-in, volunteer, recipient

    # -- the steps of higher apps in an order's story (drawn by their parts of the timeline)

    def call(self, story: Story, at: int, kind: str, summary: str, actor: str, need: int | None = None) -> bool:
        """A call to the hotline about the order (the hotline's part draws it); False once it would be after now."""
        raise NotImplementedError

    def return_visit(self, at: int, order: int, outcome: str, satisfaction: int | None, note: str, actor: str) -> Do:
        """回访 after a service (the hotline's part)."""
        raise NotImplementedError

    def open_need(self, recipient: PersonSpec, at: int) -> int | None:
        """The recipient's need open at `at`, if any (the needs' part)."""
        raise NotImplementedError

    def needs_of(self, person: PersonSpec) -> list[int]:
        """The person's needs (the needs' part)."""
        raise NotImplementedError

    def link_need(self, at: int, actor: str, need: int, order: int) -> Do:
        """The order linked to the need it meets (the needs' part)."""
        raise NotImplementedError

    def buy_market_service(self, at: int, order: int, amount: str, note: str) -> Do:
        """The order bought from a provider by the emergency fund (专项基金兜底; the funds' part)."""
        raise NotImplementedError

    # -- the orders

    def new_order(
        self,
        recipient: PersonSpec,
        item: Service,
        at: int,
        *,
        channel: str,
        actor: str,
        scheduled: int,
        planned: int,
        payer: str = "subsidy",
        urgent: bool = False,
        notes: str | None = None,
        fixed_payer: bool = False,
    ) -> Story:
        key = next(self.order_keys)
        mult = MULTIPLIERS[item.tier]
        self.orders[key] = OrderInfo(recipient.bank, recipient.index, mult, planned * mult, None, fixed_payer)
        if notes is None:
            notes = self.rng.choice(ORDER_NOTES.get(item.name, ("",)))
        self.add(
            do(
                at,
                order_actions.do_create_order,
                Ref.login(actor),
                recipient=Ref.member(recipient.index),
                service_item=Ref.item(recipient.index, item.name),
                scheduled_start=Ref.moment(scheduled),
                planned_minutes=planned,
                payer=payer,  # the simulation may make it a subsidy when the payer cannot pay
                channel=channel,
                notes=notes,
                urgent=urgent,
                keep=Ref.order(key),
            )
        )
        return Story(key, recipient, item, at)

    def next_at(self, story: Story, at: int) -> int | None:
        """The story's next moment: after its last step, by day; None once it would be after now."""
        if not story.open:
            return None
        at = max(at, story.t + 1)
        if at < RECENT:
            at = daytime(at)
            if at >= 0:
                story.open = False
                return None
        story.t = at
        return at

    def act(
        self,
        story: Story,
        at: int,
        action: str,
        actor: str,
        *,
        volunteer: int | None = None,
        note: str = "",
        minutes: int | None = None,
        rating: int | None = None,
        by: str = "",
        lat: str = "",
        lon: str = "",
    ) -> bool:
        """The order's next transition, if it has happened by now."""
        moment = self.next_at(story, at)
        if moment is None:
            return False
        if action == "confirm":
            assert minutes is not None
            info = self.orders[story.key]
            info.pays_at = moment
            info.hold = max(info.hold, minutes * info.multiplier)
        self.add(self.transition(moment, story.key, action, actor, volunteer, note, minutes, rating, by, lat, lon))
        return True

    def transition(
        self,
        at: int,
        key: int,
        action: str,
        actor: str,
        volunteer: int | None,
        note: str,
        minutes: int | None,
        rating: int | None,
        by: str,
        lat: str,
        lon: str,
    ) -> Do:
        """The call of order `key`'s transition named `action` (dispatch, take, accept, decline, no-show, check-in,
        check-out, confirm, review, cancel, dispute); `by` who confirms or cancels: staff, volunteer or party."""
        who, order = Ref.login(actor), Ref.order(key)
        keep = Ref.order(key)
        where = (Decimal(lat), Decimal(lon)) if lat else (None, None)
        match action:
            case "dispatch" | "take":
                act = order_actions.do_dispatch if action == "dispatch" else order_actions.do_take
                return do(at, act, who, order, Ref.member(volunteer), keep=keep)
            case "accept":
                return do(at, order_actions.do_accept, who, order, keep=keep)
            case "decline":
                return do(at, order_actions.do_decline, who, order, note, keep=keep)
            case "no-show":
                return do(at, order_actions.do_no_show, who, order, note, keep=keep)
            case "check-in":
                return do(at, order_actions.do_check_in, who, order, *where, keep=keep)
            case "check-out":
                return do(at, order_actions.do_check_out, who, order, *where, keep=keep)
            case "confirm":
                return do(
                    at,
                    order_actions.do_confirm,
                    who,
                    order,
                    actual_minutes=minutes,
                    code=Ref.order_code(key) if by == "volunteer" else None,
                    by_staff=by == "staff",
                    by_volunteer=by == "volunteer",
                    keep=keep,
                )
            case "review":
                assert rating is not None
                return do(at, order_actions.do_review, who, order, rating=rating, comment=note, keep=keep)
            case "cancel":
                return do(at, order_actions.do_cancel, who, order, reason=note, by_staff=by == "staff", keep=keep)
            case "dispute":
                return do(at, order_actions.do_dispute, who, order, reason=note, keep=keep)
        raise AssertionError(f"unknown order action {action}")

    def serve(self, s: Story, v: PersonSpec, scheduled: int, actual: int) -> int | None:
        """Check in at the scheduled time and out `actual` minutes later; the check-in moment, or None."""
        lat, lon = self.coords(s.recipient)
        if not self.act(s, scheduled + self.rng.randint(-10, 10), "check-in", self.acts_for(v), lat=lat, lon=lon):
            return None
        check_in = s.t
        lat, lon = self.coords(s.recipient)
        if not self.act(s, check_in + actual, "check-out", self.acts_for(v), lat=lat, lon=lon):
            return None
        return check_in

    def random_orders(self, bank: str, count: int) -> None:
        rng = self.rng
        recipients = self.active(bank, "recipient")
        volunteers = self.active(bank, "volunteer")
        if not recipients or not volunteers:
            return
        for _ in range(count):
            r = rng.choice(recipients)
            menu = [SERVICE_BY_NAME[n] for n in self.menu_of.get(r.org, CORE_MENU)]
            menu = [
                i for i in menu if not i.certificate or any(self.certified(v, i.certificate, -40) for v in volunteers)
            ]
            item = rng.choice(menu)
            created = self.daytime_at(-40, -2, 8, 17)
            channel = rng.choices(("hotline", "visit", "staff"), weights=(45, 25, 30))[0]
            desk = self.operator(bank) if channel == "hotline" else self.manager(r.org)
            urgent = item.name == "紧急救援" or rng.random() < 0.05
            roll = rng.random()
            payer = (
                "recipient"
                if roll < 0.35
                else "pool"
                if roll < 0.6 and POOR & set(r.recipient_categories)
                else "subsidy"
            )
            planned = 60 if urgent else rng.choice((60, 60, 90, 120, 120, 150))
            if urgent:
                scheduled = created + 60
            else:
                scheduled = when(
                    day_of(created) + rng.randint(1, 3), rng.choice((8, 9, 10, 14, 15)), rng.choice((0, 30))
                )
            s = self.new_order(
                r,
                item,
                created,
                channel=channel,
                actor=desk,
                scheduled=scheduled,
                planned=planned,
                payer=payer,
                urgent=urgent,
            )
            need = self.open_need(r, created)
            if channel == "hotline":
                self.call(
                    s, created + 2, "order", f"来电预约{item.name}", desk, need if need and rng.random() < 0.7 else None
                )
            elif need is not None and rng.random() < 0.5:
                self.add(self.link_need(created + 1, self.manager(r.org), need, s.key))
            self.order_outcome(s, weighted(rng, OUTCOMES), desk, scheduled, planned, urgent)

    def order_outcome(self, s: Story, outcome: str, desk: str, scheduled: int, planned: int, urgent: bool) -> None:
        rng = self.rng
        r, item = s.recipient, s.item
        staff = self.manager(r.org)
        if outcome == "cancelled":
            self.act(s, s.t + rng.randint(30, 600), "cancel", staff, note=rng.choice(CANCEL_REASONS), by="staff")
            return
        v = self.pick_volunteer(r, item, day_of(s.t) + 1, set())
        if outcome == "unfilled" or v is None:
            self.act(s, s.t + rng.randint(2, 4) * DAY, "cancel", staff, note=NO_VOLUNTEER, by="staff")
            return
        if not self.act(
            s, s.t + (rng.randint(5, 20) if urgent else rng.randint(20, 300)), "dispatch", desk, volunteer=v.index
        ):
            return
        if outcome == "declined":
            if not self.act(
                s, s.t + rng.randint(30, 180), "decline", self.acts_for(v), note=rng.choice(DECLINE_REASONS)
            ):
                return
            v2 = self.pick_volunteer(r, item, day_of(s.t) + 1, {v.index})
            if v2 is None:
                self.act(s, s.t + DAY, "cancel", staff, note=NO_VOLUNTEER, by="staff")
                return
            v = v2
            if not self.act(s, s.t + rng.randint(30, 120), "dispatch", desk, volunteer=v.index):
                return
        if not self.act(s, s.t + rng.randint(10, 240), "accept", self.acts_for(v)):
            return
        if outcome == "cancelled_dispatched":
            self.act(s, s.t + rng.randint(60, 900), "cancel", staff, note=rng.choice(CANCEL_REASONS), by="staff")
            return
        if outcome == "no_show":
            if not self.act(s, scheduled + 90, "no-show", staff, note=rng.choice(NO_SHOW_NOTES)):
                return
            v2 = self.pick_volunteer(r, item, day_of(s.t) + 1, {v.index})
            if v2 is None:
                self.act(s, s.t + 60, "cancel", staff, note=NO_VOLUNTEER, by="staff")
                return
            v = v2
            if not self.act(s, s.t + 30, "dispatch", desk, volunteer=v.index):
                return
            if not self.act(s, s.t + rng.randint(10, 120), "accept", self.acts_for(v)):
                return
            scheduled += DAY
        actual = max(20, planned + rng.choice((-15, -10, -5, 0, 0, 0, 5, 10, 15, 20)))
        check_in = self.serve(s, v, max(scheduled, s.t + 30), actual)
        if check_in is None or not s.open:
            return
        if outcome == "disputed":
            complaint = rng.choice(DISPUTE_REASONS)
            if not self.call(s, s.t + rng.randint(60, 1440), "complaint", complaint, self.operator(r.bank)):
                return
            if not self.act(s, s.t + 3, "dispute", self.operator(r.bank), note=complaint):
                return
            if rng.random() < 0.7:
                self.act(
                    s,
                    s.t + rng.randint(1, 3) * DAY,
                    "confirm",
                    staff,
                    minutes=max(15, actual - 30),
                    by="staff",
                )
            else:
                self.act(s, s.t + rng.randint(1, 3) * DAY, "cancel", staff, note=DISPUTE_CANCEL, by="staff")
            return
        if not self.act(s, s.t + rng.randint(10, 900), "confirm", staff, minutes=actual, by="staff"):
            return
        self.done_orders.append((s.key, check_in, v, r))
        confirmed = s.t
        rating = int(weighted(rng, {str(k): w for k, w in RATINGS.items()}))
        reviewed = rng.random() < 0.65
        if rng.random() < 0.65:
            operator = self.operator(r.bank)
            moment = self.next_at(s, confirmed + rng.randint(3, 6) * DAY)
            if moment is None:
                return
            roll = rng.random()
            if roll < 0.15:
                self.add(self.return_visit(moment, s.key, "not_reached", None, "电话无人接听，改天再打", operator))
                moment = self.next_at(s, moment + rng.randint(1, 2) * DAY)
                if moment is None:
                    return
            elif roll < 0.22:
                self.add(self.return_visit(moment, s.key, "refused", None, "老人表示不用回访", operator))
                return
            note = "老人对服务满意" if rating >= 4 else "老人提出改进意见"
            self.add(self.return_visit(moment, s.key, "reached", rating, note, operator))
            if reviewed:
                self.act(s, moment + 2, "review", operator, rating=rating, note=rng.choice(REVIEWS[rating]))
        elif reviewed:
            self.act(
                s,
                confirmed + rng.randint(60, 2 * DAY),
                "review",
                staff,
                rating=rating,
                note=rng.choice(REVIEWS[rating]),
            )

    def family(self, *people: PersonSpec) -> set[int]:
        """The people and their linked relatives: none of them serves the others (conflicts of interest; the
        demo's banks keep the rule `serve_relatives` off)."""
        ids = {p.index for p in people}
        return (
            ids
            | {link.relative for link in self.links if link.member in ids}
            | {link.member for link in self.links if link.relative in ids}
        )

    def pick_volunteer(self, recipient: PersonSpec, item: Service, day: int, exclude: set[int]) -> PersonSpec | None:
        rng = self.rng
        family = self.family(recipient)
        pool = [v for v in self.active(recipient.bank, "volunteer") if v.index not in family and v.index not in exclude]
        if item.certificate:
            pool = [v for v in pool if self.certified(v, item.certificate, day)]
        if not pool:
            return None
        skilled = [v for v in pool if item.skill and item.skill in v.skills]
        if skilled and rng.random() < 0.8:
            pool = skilled
        near = [v for v in pool if v.org == recipient.org]
        area = [v for v in pool if self.branch_of(v.org) == self.branch_of(recipient.org)]
        roll = rng.random()
        if near and roll < 0.6:
            return rng.choice(near)
        if area and roll < 0.9:
            return rng.choice(area)
        return rng.choice(pool)

    def persona_orders(self) -> None:
        """Orders that give each demo login something to look at and something to do."""
        V, R, L = self.volunteer, self.recipient, self.relative
        item = SERVICE_BY_NAME
        shunhe = self.local("recipient", "顺河社区", 3, R, strict=True)  # the staff login's community
        helpers = self.local("volunteer", "顺河社区", 2, V, avoid=self.family(R, *shunhe))
        gucheng = self.local("recipient", "古城社区", 1, R, avoid=self.family(L))[0]
        own_need = next(iter(self.needs_of(R)), None)

        # reviewed: the recipient ordered on his phone, the volunteer served, he confirmed and reviewed
        s = self.new_order(
            R,
            item["家庭保洁"],
            when(-20, 10),
            channel="app",
            actor="recipient",
            scheduled=when(-19, 9),
            planned=120,
            payer="recipient",
            fixed_payer=True,
            notes="换季了，帮忙把棉被拆洗一下",
        )
        if own_need is not None:
            self.add(self.link_need(when(-20, 10, 5), "staff", own_need, s.key))
        self.act(s, when(-20, 14), "dispatch", "staff", volunteer=V.index)
        self.act(s, when(-20, 15, 10), "accept", "volunteer")
        self.serve(s, V, when(-19, 9, 2), 120)
        self.act(s, when(-19, 11, 30), "confirm", "recipient", minutes=120, by="party")
        self.act(
            s,
            when(-19, 12),
            "review",
            "recipient",
            rating=5,
            note="王老师干活细致，屋里收拾得干干净净，还陪我说了会儿话。",
        )
        # confirmed with the code: the son ordered, the volunteer took it from the pool
        s = self.new_order(
            R,
            item["陪同就医"],
            when(-13, 20),
            channel="app",
            actor="relative",
            scheduled=when(-11, 8),
            planned=150,
            notes="父亲去区人民医院复查血压，需要有人陪同挂号取药",
        )
        self.act(s, when(-12, 8, 30), "take", "volunteer", volunteer=V.index)
        self.serve(s, V, when(-11, 8), 150)
        self.act(s, when(-11, 10, 40), "confirm", "volunteer", minutes=150, by="volunteer")
        for at, outcome, satisfaction, note in (
            (when(-8, 16), "not_reached", None, "电话无人接听，明天再打"),
            (when(-7, 10), "reached", 5, "老人说王老师很耐心，全程陪着"),
        ):
            moment = self.next_at(s, at)
            if moment is not None:
                self.add(self.return_visit(moment, s.key, outcome, satisfaction, note, "operator"))
        # paid from the donation pool, which the volunteer gave to just before
        self.add(self.ledger(when(-16, 9, 1), "donation", V.index, 120, "自愿捐赠到捐赠池，帮助困难老人"))
        poor = next((p for p in shunhe if POOR & set(p.recipient_categories)), shunhe[1])
        s = self.new_order(
            poor,
            item["餐饮配送"],
            when(-16, 9, 2),
            channel="staff",
            actor="staff",
            scheduled=when(-15, 11),
            planned=60,
            payer="pool",
            fixed_payer=True,
            notes="困难老人，由捐赠池支付",
        )
        self.act(s, when(-16, 10), "dispatch", "staff", volunteer=helpers[1].index)
        self.act(s, when(-16, 13), "accept", self.acts_for(helpers[1]))
        self.serve(s, helpers[1], when(-15, 11), 60)
        self.act(s, when(-15, 14), "confirm", "staff", minutes=60, by="staff")
        self.act(s, when(-14, 10), "review", "staff", rating=5, note="饭菜热乎，送得准时。")
        # bought by the emergency fund: no certified nurse could come (专项基金兜底)
        s = self.new_order(
            R,
            item["医疗护理"],
            when(-9, 9),
            channel="app",
            actor="relative",
            scheduled=when(-8, 9),
            planned=60,
            payer="recipient",
            fixed_payer=True,
            notes="父亲腿上伤口需要每天换药",
        )
        bought = self.next_at(s, when(-7, 10, 30))
        if bought is not None:
            self.orders[s.key].pays_at = bought
            note = "持证护理志愿者近期都排不开，由专项基金向护理公司购买服务"
            self.add(self.buy_market_service(bought, s.key, "150.00", note))
        # cancelled by the son: his father is staying with him
        s = self.new_order(
            R,
            item["理发"],
            when(-10, 19),
            channel="app",
            actor="relative",
            scheduled=when(-8, 15),
            planned=30,
            notes="老人卧床，需要上门理发",
        )
        self.act(s, when(-9, 8, 20), "cancel", "relative", note="父亲这几天住到我家了，不在家", by="party")
        # completed: the recipient has to confirm it
        s = self.new_order(
            R,
            item["聊天陪伴"],
            when(-3, 18),
            channel="app",
            actor="recipient",
            scheduled=when(-1, 15),
            planned=90,
            payer="recipient",
            fixed_payer=True,
            notes="想找人下象棋",
        )
        self.act(s, when(-2, 9), "dispatch", "staff", volunteer=helpers[0].index)
        self.act(s, when(-2, 10), "accept", self.acts_for(helpers[0]))
        self.serve(s, helpers[0], when(-1, 15), 90)
        # requested: just ordered on the phone
        self.new_order(
            R,
            item["物品代购"],
            when(-1, 19, 30),
            channel="app",
            actor="recipient",
            scheduled=when(1, 10),
            planned=60,
            payer="recipient",
            fixed_payer=True,
            notes="帮忙买一袋大米和几斤鸡蛋",
        )
        # dispatched to the volunteer: she has to accept it
        s = self.new_order(
            shunhe[0],
            item["读书读报"],
            when(-1, 16),
            channel="hotline",
            actor="operator",
            scheduled=when(1, 9, 30),
            planned=60,
            notes="老人喜欢听时事新闻",
        )
        self.call(s, when(-1, 16, 3), "order", "老人来电，想请人读读报纸", "operator")
        self.act(s, when(-1, 17, 30), "dispatch", "operator", volunteer=V.index)
        # accepted by the volunteer: she has to check in when she gets there
        s = self.new_order(
            shunhe[1], item["聊天陪伴"], when(-2, 10), channel="visit", actor="staff", scheduled=when(1, 15), planned=90
        )
        self.act(s, when(-2, 11), "dispatch", "staff", volunteer=V.index)
        self.act(s, when(-2, 19), "accept", "volunteer")
        # accepted by the relative, who volunteers as an electrician
        s = self.new_order(
            gucheng,
            item["家电维修"],
            when(-3, 10),
            channel="staff",
            actor=self.manager(gucheng.org),
            scheduled=when(2, 9),
            planned=60,
            notes="洗衣机不转了",
        )
        if gucheng.index not in self.family(L):  # a tiny demo's only recipient is the relative's father
            self.act(s, when(-3, 11), "dispatch", self.manager(gucheng.org), volunteer=L.index)
            self.act(s, when(-3, 20), "accept", "relative")
        # overdue: nobody dispatched within the rules' 24 hours
        s = self.new_order(
            shunhe[2],
            item["管道疏通"],
            when(-3, 9, 40),
            channel="hotline",
            actor="operator",
            scheduled=when(-1, 9),
            planned=60,
            notes="厨房下水道堵了",
        )
        self.call(s, when(-3, 9, 45), "order", "老人来电，厨房下水道堵了", "operator")
        self.new_order(
            shunhe[0],
            item["心理咨询"],
            when(-2, 16),
            channel="staff",
            actor="staff",
            scheduled=when(1, 14),
            planned=60,
            notes="老伴去世后情绪低落，家属希望有心理咨询师上门",
        )
        # disputed: the family says the volunteer left early
        s = self.new_order(
            shunhe[1], item["家庭保洁"], when(-6, 9), channel="staff", actor="staff", scheduled=when(-4, 9), planned=120
        )
        self.act(s, when(-6, 10), "dispatch", "staff", volunteer=helpers[1].index)
        self.act(s, when(-6, 14), "accept", self.acts_for(helpers[1]))
        self.serve(s, helpers[1], when(-4, 9), 120)
        self.call(s, when(-3, 10), "complaint", DISPUTE_REASONS[0], "operator")
        self.act(s, when(-3, 10, 5), "dispute", "operator", note=DISPUTE_REASONS[0])
        # urgent, minutes ago: a neighbour called the hotline
        s = self.new_order(
            shunhe[2],
            item["紧急救援"],
            ago(50),
            channel="hotline",
            actor="operator",
            scheduled=ago(45),
            planned=60,
            urgent=True,
            notes="老人在家中摔倒，起不来，邻居打来电话",
        )
        self.call(s, ago(48), "order", "邻居来电：老人在家中摔倒，起不来", "operator")
        # in service: the volunteer checked in a little while ago
        s = self.new_order(
            shunhe[0],
            item["日间照料"],
            when(-1, 15),
            channel="visit",
            actor="staff",
            scheduled=ago(45),
            planned=180,
            notes="白天子女上班，需要有人照看",
        )
        self.act(s, when(-1, 16), "dispatch", "staff", volunteer=helpers[0].index)
        self.act(s, when(-1, 18), "accept", self.acts_for(helpers[0]))
        lat, lon = self.coords(shunhe[0])
        self.act(s, ago(40), "check-in", self.acts_for(helpers[0]), lat=lat, lon=lon)
