"""The funds' part of the demo timeline: the fund books' income and expenses, donations in kind put on the
shelves, and a service the emergency fund bought when no volunteer could come."""

from __future__ import annotations

from timebank.funds.actions import EntryInput, StockInput, do_buy_market_service, do_record_entry, do_record_in_kind
from timebank.funds.demo import COMPANIES, MARKET_PROVIDER
from timebank.goods.demo_timeline import GoodsTimeline
from timebank.lib.demo_plan import LAUNCH, Do, Ref, day_of, do, when
from timebank.orgs.demo import BANK1, BANK2
from timebank.safety.demo_timeline import SafetyTimeline


class FundsTimeline(GoodsTimeline, SafetyTimeline):
    """Built on the goods (donations in kind go on a shelf) and safety (the insurance premiums paid); draws
    `buy_market_service` for `OrderStories`."""

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

    def buy_market_service(self, at: int, order: int, amount: str, note: str) -> Do:
        return do(
            at,
            do_buy_market_service,
            Ref.login("ho_admin"),
            Ref.order(order),
            fund_org=Ref.org(BANK1),
            provider=MARKET_PROVIDER,
            amount=amount,
            note=note,
            unfillable=True,
            keep=Ref.order(order),
        )
