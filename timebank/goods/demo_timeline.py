"""The goods' part of the demo timeline: the outlets' shelves, redemptions (兑换) and hand-overs, a restock and a
stock count (盘点)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from timebank.goods.actions import do_create_goods, do_hand_over, do_redeem, do_restock
from timebank.goods.demo import GOODS
from timebank.lib.demo_plan import LAUNCH, SETTLED, Do, Ref, Step, do, when
from timebank.members.demo import PersonSpec
from timebank.members.demo_timeline import TimelineBase
from timebank.orgs.models import OrgKind


@dataclass(frozen=True)
class StockCountDraft(Step):
    """A stock count (盘点) of `goods` ("outlet:name") that finds `shortfall` fewer than the books."""

    goods: str
    shortfall: int
    note: str
    actor: str


class GoodsTimeline(TimelineBase):
    """The outlets' goods, redemptions with their hand-overs, a restock and a stock count."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outlet_goods: dict[str, list[str]] = {}  # outlet → goods keys
        self.redemption_keys = itertools.count(1)

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
