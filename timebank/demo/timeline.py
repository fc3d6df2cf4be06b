"""The whole timeline: needs, the census import, calls, welfare checks, goods, money and the settlement."""

from __future__ import annotations

from collections.abc import Sequence

from timebank.catalogue.demo import BANK2_SERVICES
from timebank.demo.steps import (
    DAY,
    LAUNCH,
    SETTLED,
    Do,
    Ref,
    StockCountDraft,
    day_of,
    daytime,
    do,
    when,
)
from timebank.demo.timeline_orders import OrderStories
from timebank.funds.actions import EntryInput, StockInput, do_record_entry, do_record_in_kind
from timebank.funds.demo import COMPANIES
from timebank.goods.actions import do_create_goods, do_hand_over, do_redeem, do_restock
from timebank.goods.demo import GOODS
from timebank.hotline.actions import NeedSpec, do_record_welfare_check
from timebank.hotline.demo import CALL_SUMMARIES, WELFARE_CONCERN, WELFARE_OK
from timebank.ledger.settlement import do_settle
from timebank.members.actions import do_approve_member
from timebank.members.demo import (
    CATEGORY_WORDS,
    MOBILE_PREFIXES,
    WELFARE_CATEGORIES,
    PersonSpec,
    register_person,
    weighted,
)
from timebank.needs.actions import do_add_follow_up, do_close_need, do_create_need
from timebank.needs.demo import CLOSE_REASONS, FOLLOW_UPS, MET_NOTES, NEED_ITEMS, NEED_NOTES, import_census
from timebank.notify.actions import do_set_duty
from timebank.orgs.demo import BANK1, BANK2
from timebank.orgs.models import OrgKind


class Timeline(OrderStories):
    """Draws the steps of the hundred days since launch; `Simulation` then walks them in time order."""

    def level_for(self, categories: Sequence[str]) -> str:
        cats = set(categories)
        if cats & {"disabled", "severe_disability", "extreme_poverty"}:
            return "essential"
        if cats & {"partly_disabled", "living_alone", "advanced_age"}:
            return "special"
        return "general"

    def items_for(self, person: PersonSpec) -> tuple[str, ...]:
        names = [n for c in person.recipient_categories for n in NEED_ITEMS.get(c, ())]
        if person.bank == BANK2:
            names = [n for n in names if n in BANK2_SERVICES]
        return tuple(sorted(set(self.rng.sample(names, min(len(names), self.rng.randint(1, 3))))))

    def need(
        self, person: PersonSpec, created: int, actor: str, *, found_by: str | None = None, ending: bool = True
    ) -> None:
        rng = self.rng
        key = next(self.need_keys)
        level = self.level_for(person.recipient_categories)
        found_by = found_by or weighted(rng, {"home_visit": 40, "phone_call": 30, "video_call": 10, "survey": 20})
        self.add(
            do(
                created,
                do_create_need,
                Ref.login(actor),
                recipient=Ref.member(person.index),
                level=level,
                found_by=found_by,
                item_ids=Ref.item_ids(person.index, self.items_for(person)),
                notes=rng.choice(NEED_NOTES[level]),
                keep=f"need:{key}",
            )
        )
        roll = rng.random() if ending else 1.0
        end = 10**9
        if roll < 0.3:
            end = daytime(created + rng.randint(10, 40) * DAY)
            if end < 0:
                self.add(
                    do(end, do_add_follow_up, Ref.login(actor), Ref.need(key), note=rng.choice(MET_NOTES), status="met")
                )
            else:
                end = 10**9
        elif roll < 0.4:
            end = daytime(created + rng.randint(5, 30) * DAY)
            if end < 0:
                self.add(do(end, do_close_need, Ref.login(actor), Ref.need(key), reason=rng.choice(CLOSE_REASONS)))
            else:
                end = 10**9
        for _ in range(rng.randint(0, 2)):
            at = daytime(created + rng.randint(2, 20) * DAY)
            if at < min(end - 60, 0):
                self.add(do(at, do_add_follow_up, Ref.login(actor), Ref.need(key), note=rng.choice(FOLLOW_UPS)))
        self.needs[key] = (person.index, created, end)

    def needs_register(self, bank: str, share: float, cap: int) -> None:
        rng = self.rng
        recipients = self.active(bank, "recipient")
        for person in rng.sample(recipients, min(cap, round(len(recipients) * share))):
            self.need(person, self.daytime_at(LAUNCH + 5, -3), self.manager(person.org))
        if bank == BANK1:
            self.need(self.recipient, when(-40, 15), "staff", found_by="home_visit", ending=False)

    def census_import(self) -> None:
        rng = self.rng
        people = [p for p in self.people if p.census]
        if not people:
            return
        rows: list[tuple[str, ...]] = []
        needs = ("需要助餐服务，子女在外地", "行动不便，希望有人定期上门打扫", "独居，希望有人常来看看", "")
        for p in people:
            categories = "、".join(CATEGORY_WORDS[c] for c in p.recipient_categories)
            rows.append(
                (
                    p.name,
                    p.id_number,
                    "男" if p.gender == "male" else "女",
                    p.birth_date.isoformat(),
                    p.phone,
                    p.address,
                    p.org,
                    categories,
                    rng.choice(needs),
                )
            )
        known = self.local("recipient", "顺河社区", 1, self.recipient)[0]
        rows.append(
            (
                known.name,
                known.id_number,
                "男" if known.gender == "male" else "女",
                known.birth_date.isoformat(),
                known.phone,
                known.address,
                known.org,
                "空巢",
                "",
            )
        )
        typo = people[0].id_number[:17] + ("0" if people[0].id_number[17] != "0" else "1")
        rows.append(("孙桂兰", typo, "女", "", "", "", "华兴社区", "独居、高龄", "腿脚不便"))
        self.add(
            do(
                self.census_at,
                import_census,
                Ref.login("branch_admin"),
                Ref.org("运河街道"),
                "运河街道2020人口普查老年人名单.csv",
                tuple(rows),
                keep=tuple(Ref.member(p.index) for p in people),  # the first rows are written as these people
            )
        )

    def calls(self, bank: str, count: int) -> None:
        """Calls to the 12349 desk that are not about an order: advice, complaints, questions."""
        rng = self.rng
        members = [p for p in self.people if p.bank == bank and p.approved and not p.census and p.login is None]
        kinds = ["legal_advice", "psychological_advice", "other"]  # each at least once
        kinds += [rng.choice(("legal_advice", "psychological_advice", "other", "complaint")) for _ in range(count - 3)]
        for kind in kinds:
            at = self.daytime_at(-28, -1, 8, 19)
            summary = rng.choice(CALL_SUMMARIES[kind])
            operator = self.operator(bank)
            if kind == "other" and rng.random() < 0.6:
                phone = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(0, 10**8):08d}"
                self.add(
                    self.log_call(at, kind, operator, summary, rng.randint(1, 6), org=bank, phone=phone)
                )  # unknown
            else:
                m = rng.choice(members)
                self.add(self.log_call(at, kind, operator, summary, rng.randint(3, 20), member=m.index))

    def welfare_check(
        self,
        at: int,
        actor: str,
        person: PersonSpec,
        method: str,
        note: str,
        *,
        found_ok: bool = True,
        need: NeedSpec | None = None,
    ) -> Do:
        """定期巡访 of `person`; a concern found (`found_ok` False: health changed) may open a need at once."""
        return do(
            at,
            do_record_welfare_check,
            Ref.login(actor),
            member=Ref.member(person.index),
            method=method,
            found_ok=found_ok,
            health_changed=not found_ok,
            note=note,
            need=need,
        )

    def welfare_checks(self, bank: str, cap: int) -> None:
        """定期巡访: most recently, some overdue (last check over a week ago), some never checked."""
        rng = self.rng
        pool = [p for p in self.people if p.bank == bank and p.approved and p.login is None and "recipient" in p.roles]
        pool = [p for p in pool if WELFARE_CATEGORIES & set(p.recipient_categories)]
        chosen = rng.sample(pool, min(cap, len(pool)))
        if bank == BANK1:
            for at, method, note in (
                (when(-10, 10), "phone", "老人身体状况良好"),
                (when(-3, 15), "visit", "上门看望，屋里收拾得挺干净"),
            ):
                actor = "operator" if method == "phone" else "staff"
                self.add(self.welfare_check(at, actor, self.recipient, method, note))
        for person in chosen:
            roll = rng.random()
            if roll < 0.15:
                continue  # never checked: first on the list
            last = rng.randint(-6, -1) if roll < 0.7 else rng.randint(-27, -8)
            days = [last] + ([last - rng.randint(7, 10)] if last - 10 > -29 and rng.random() < 0.6 else [])
            for day in sorted(days):
                method = weighted(rng, {"phone": 50, "visit": 35, "video": 15})
                actor = self.operator(bank) if method != "visit" else self.manager(person.org)
                at = when(day, rng.randint(9, 17), rng.randrange(0, 60, 5))
                if rng.random() < 0.12:
                    note = rng.choice(WELFARE_CONCERN)
                    level = self.level_for(person.recipient_categories)
                    need = NeedSpec(
                        level=level, notes=note, item_ids=Ref.item_ids(person.index, self.items_for(person))
                    )
                    self.add(self.welfare_check(at, actor, person, method, note, found_ok=False, need=need))
                else:
                    self.add(self.welfare_check(at, actor, person, method, rng.choice(WELFARE_OK)))

    # -- goods, redemptions and money

    def goods(self) -> None:
        rng = self.rng
        for spec in self.specs.values():
            if spec.kind != OrgKind.OUTLET:
                continue
            chosen = [g for g in GOODS if g[0].startswith(("大米", "毛巾", "洗衣液")) or rng.random() < 0.5]
            keys = []
            for name, price in chosen:
                key = f"{spec.name}:{name}"
                assert spec.parent is not None
                self.add(
                    do(
                        when(LAUNCH + 3, 9),
                        do_create_goods,
                        Ref.login(self.manager(spec.parent)),
                        outlet=Ref.org(spec.name),
                        name=name,
                        price_minutes=price,
                        stock=rng.randint(2, 8) * 10,
                        keep=f"goods:{key}",
                    )
                )
                keys.append(key)
            self.outlet_goods[spec.name] = keys

    def redemptions(self, count: int) -> None:
        rng = self.rng
        outlets = sorted(self.outlet_goods)
        shunhe = "顺河社区服务站"
        for at, goods, quantity, handed in (
            (when(-20, 10), "毛巾", 2, True),
            (when(-2, 16), "大米（5公斤）", 1, False),
        ):
            key = next(self.redemption_keys)
            self.add(self.redeem(at, key, self.volunteer, f"{shunhe}:{goods}", quantity, "staff"))
            if handed:
                self.add(do(at + 5, do_hand_over, Ref.login("staff"), Ref.kept(f"redemption:{key}")))
        for _ in range(count):
            outlet = rng.choice(outlets)
            home = self.specs[outlet].parent
            assert home is not None
            near = [
                v
                for v in self.active(self.specs[outlet].bank, "volunteer")
                if self.branch_of(v.org) == self.branch_of(home)
            ]
            if not near:
                continue
            member = rng.choice(near)
            key = next(self.redemption_keys)
            at = self.daytime_at(SETTLED + 2, -1, 9, 17)
            actor = self.manager(home)
            goods = rng.choice(self.outlet_goods[outlet])
            self.add(self.redeem(at, key, member, goods, rng.choice((1, 1, 1, 2)), actor))
            if at < when(-2, 0) or rng.random() < 0.5:
                self.add(do(at + rng.randint(5, 60), do_hand_over, Ref.login(actor), Ref.kept(f"redemption:{key}")))
        rice = f"goods:{shunhe}:大米（5公斤）"
        self.add(
            do(
                when(-10, 9),
                do_restock,
                Ref.login("staff"),
                Ref.kept(rice),
                quantity=30,
                note="街道采购补货",
                keep=rice,
            )
        )
        self.add(StockCountDraft(when(-5, 17), f"{shunhe}:毛巾", 1, "月末盘点，毛巾少 1 条，已登记说明", "staff"))

    def redeem(self, at: int, key: int, member: PersonSpec, goods: str, quantity: int, actor: str) -> Do:
        """兑换: `member` takes `quantity` of `goods` ("outlet:name") at its outlet; the simulation may lower the
        quantity to what the goods bucket and the stock allow, or drop it (and its hand-over)."""
        return do(
            at,
            do_redeem,
            Ref.login(actor),
            member=Ref.member(member.index),
            goods=Ref.kept(f"goods:{goods}"),
            quantity=quantity,
            outlet=Ref.org(goods.split(":")[0]),
            idempotency_key=Ref.idempotency_key(),
            keep=f"redemption:{key}",
        )

    def in_kind(
        self,
        at: int,
        org: str,
        source: str,
        value: str,
        item: str,
        donor: str,
        description: str,
        goods: str,
        quantity: int,
        actor: str,
    ) -> Do:
        """A donation in kind to `org`'s fund book, put on the shelf of `goods` ("outlet:name")."""
        return do(
            at,
            do_record_in_kind,
            Ref.login(actor),
            Ref.org(org),
            source=source,
            estimated_value=value,
            occurred_on=Ref.day(day_of(at)),
            item_description=item,
            donor_name=donor,
            description=description,
            stock=StockInput(outlet=Ref.org(goods.split(":")[0]), quantity=quantity, goods=Ref.kept(f"goods:{goods}")),
            idempotency_key=Ref.idempotency_key(),
        )

    def money(self) -> None:
        c1, c2 = COMPANIES[BANK1], COMPANIES[BANK2]

        def book(at: int, org: str, actor: str, entry: EntryInput) -> Do:
            """An entry in `org`'s fund book."""
            key = Ref.idempotency_key()
            return do(at, do_record_entry, Ref.login(actor), Ref.org(org), entry, idempotency_key=key)

        entries = [
            book(when(LAUNCH + 1, 9), BANK1, "ho_admin", EntryInput("income", "60000.00", Ref.day(LAUNCH - 10), description="区民政局拨付时间银行年度运营经费", source="government")),
            book(when(LAUNCH + 5, 9), BANK1, "ho_admin", EntryInput("income", "20000.00", Ref.day(LAUNCH + 5), description="区民政局拨付专项基金（服务兜底）", source="government", fund="emergency")),
            book(when(-70, 10), BANK1, "ho_admin", EntryInput("income", "15000.00", Ref.day(-70), description="区慈善总会“助老时间银行”项目资助", source="society", donor_name="台儿庄区慈善总会")),
            book(when(-88, 15), BANK1, "ho_admin", EntryInput("income", "8000.00", Ref.day(-88), description="爱心企业捐赠", source="enterprise", donor_name=c1[0])),
            book(when(-52, 11), BANK1, "ho_admin", EntryInput("income", "5000.00", Ref.day(-52), description="重阳节爱心企业捐赠", source="enterprise", donor_name=c1[1])),
            book(when(-50, 16), "顺河社区", "staff", EntryInput("income", "1260.50", Ref.day(-50), description="居民爱心捐款（重阳节募捐）", source="residents")),
            book(when(-40, 10), "泥沟村", "ho_admin", EntryInput("income", "860.00", Ref.day(-41), description="村民自愿捐款", source="residents")),
            book(when(LAUNCH + 2, 14), BANK1, "ho_admin", EntryInput("expense", "8600.00", Ref.day(LAUNCH + 2), description="采购兑换物品：大米、食用油、毛巾等", kind="goods_purchase")),
            book(when(LAUNCH + 3, 15), BANK1, "ho_admin", EntryInput("expense", f"{self.insured_count[BANK1] * 30 or 30}.00", Ref.day(LAUNCH + 2), description=f"志愿者团体意外险保费（{self.insured_count[BANK1]} 人 × 30 元）", kind="insurance")),
            book(when(-74, 10), BANK1, "ho_admin", EntryInput("expense", "1200.00", Ref.day(-75), description="急救技能培训讲师费和教材", kind="training")),
            book(when(-35, 15), BANK1, "ho_admin", EntryInput("expense", "1500.00", Ref.day(-35), description="“最美志愿者”表彰奖品", kind="awards")),
            book(when(-60, 11), BANK1, "ho_admin", EntryInput("expense", "800.00", Ref.day(-60), description="宣传折页和服务站标识制作", kind="operations")),
            book(when(-25, 10), "运河街道", "branch_admin", EntryInput("expense", "600.00", Ref.day(-25), description="为失能老人家庭购买深度保洁服务", kind="market_services", provider="台儿庄区洁康家政服务有限公司")),
            book(when(LAUNCH + 1, 10), BANK2, "nc_admin", EntryInput("income", "20000.00", Ref.day(LAUNCH - 5), description="市民政局拨付“爱心时间银行”试点经费", source="government")),
            book(when(-85, 10), BANK2, "nc_admin", EntryInput("income", "3000.00", Ref.day(-85), description="市志愿服务联合会资助", source="society", donor_name="南充市志愿服务联合会")),
            book(when(-60, 14), BANK2, "nc_admin", EntryInput("income", "5000.00", Ref.day(-60), description="爱心企业捐赠", source="enterprise", donor_name=c2[0])),
            book(when(-45, 19), "驻春路社区", "nc_admin", EntryInput("income", "1830.00", Ref.day(-45), description="“坝坝会”居民自愿募捐", source="residents")),
            book(when(LAUNCH + 4, 15), BANK2, "nc_admin", EntryInput("expense", f"{self.insured_count[BANK2] * 30 or 30}.00", Ref.day(LAUNCH + 4), description=f"志愿者团体意外险保费（{self.insured_count[BANK2]} 人 × 30 元）", kind="insurance")),
            book(when(-70, 10), BANK2, "nc_admin", EntryInput("expense", "1200.00", Ref.day(-70), description="宣传展板和“云端会”直播", kind="operations")),
            book(when(-30, 10), BANK2, "nc_admin", EntryInput("expense", "2000.00", Ref.day(-30), description="采购兑换物品：粮油", kind="goods_purchase")),
        ]  # fmt: skip
        for entry in entries:
            self.add(entry)
        self.add(
            self.in_kind(
                when(-15, 10),
                "顺河社区",
                "enterprise",
                "1250.00",
                "洗衣液 50 瓶",
                c1[2],
                "爱心企业捐赠物品，入顺河社区服务站",
                "顺河社区服务站:洗衣液（2公斤）",
                50,
                "staff",
            )
        )
        if "驻春路社区服务站" in self.outlet_goods:
            self.add(
                self.in_kind(
                    when(-20, 10),
                    "驻春路社区",
                    "enterprise",
                    "900.00",
                    "大米 20 袋",
                    c2[1],
                    "爱心企业捐赠物品",
                    "驻春路社区服务站:大米（5公斤）",
                    20,
                    "nc_admin",
                )
            )

    # -- members who registered lately, the settlement, staff on duty

    def registrations(self) -> None:
        rng = self.rng
        for person in self.people:
            if person.approved:
                continue
            day = -rng.randint(4, 12) if person.approve_later else -rng.randint(1, 10)
            at = when(day, rng.randint(8, 21), rng.randrange(0, 60, 5))
            # a self-registration, waiting for approval
            home, referrer = Ref.org(person.org), Ref.member(person.referrer)
            self.add(do(at, register_person, person, None, home, referrer, keep=Ref.member(person.index)))
            if person.approve_later:
                approved = daytime(at + rng.randint(1, 2) * DAY + 60)
                actor = Ref.login(self.manager(person.org))
                self.add(
                    do(approved, do_approve_member, actor, Ref.member(person.index), keep=Ref.member(person.index))
                )

    def settlement_and_duty(self) -> None:
        self.add(do(when(SETTLED + 1, 7, 30), do_settle, Ref.login("ho_admin"), Ref.org(BANK1), Ref.day(SETTLED)))
        self.add(do(when(SETTLED + 1, 7, 40), do_settle, Ref.login("nc_admin"), Ref.org(BANK2), Ref.day(SETTLED)))
        for login in ("staff", "operator", "nc_admin"):
            self.add(do(when(LAUNCH, 17, 30), do_set_duty, Ref.login(login), on_duty=True))
