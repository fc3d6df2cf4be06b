"""What a walk-through of a station's day found broken (issue 13), third part: the public About page shows the
rules of the bank the visitor looks at, and the workbench's counters open lists with exactly that many orders."""

from __future__ import annotations

import datetime as dt
import re

from django.utils import timezone

from tests.conftest import World, make_member, web_client
from timebank.catalogue.actions import do_create_service_item
from timebank.ledger.actions import do_adjustment
from timebank.members.models import Member, MemberStatus
from timebank.orders import actions as order_actions
from timebank.orders.models import Order
from timebank.orgs.actions import do_update_rules
from timebank.orgs.models import Rules

# ---------------------------------------------------------------------------------------------
# The About page: the bank's own rules
# ---------------------------------------------------------------------------------------------


def _about(client: object, query: str = "") -> str:
    response = client.get(f"/about/{query}")  # type: ignore[attr-defined]
    assert response.status_code == 200
    return str(response.content.decode())


def test_the_about_page_shows_the_rules_of_the_bank_looked_at(world: World) -> None:
    root = world.users["superuser"]
    do_update_rules(root, Rules.objects.get(head_office=world.bank), {"goods_share_percent": 70})
    do_update_rules(
        root,
        Rules.objects.get(head_office=world.other_bank),
        {
            "goods_share_percent": 30,
            "settlement_period": "year",
            "multipliers": {"ordinary": 1, "technical": 4, "professional": 3},
        },
    )
    visitor = web_client(None)
    # Several banks: a visitor chooses one (a link to each bank's About page), and then sees its rules.
    chooser = _about(visitor)
    for bank in (world.bank, world.other_bank):
        assert f'href="/about/?bank={bank.pk}"' in chooser and bank.name in chooser
    mine = _about(visitor, f"?bank={world.bank.pk}")
    assert "70%" in mine and "30%" in mine and "每半年结算一次" in mine and world.bank.name in mine
    theirs = _about(visitor, f"?bank={world.other_bank.pk}")
    assert "存 4 小时" in theirs and "每年结算一次" in theirs and world.other_bank.name in theirs
    assert "30%" in theirs and "70%" in theirs  # 30% for goods, 70% kept in reserve
    assert theirs.index("30%") < theirs.index("70%") and mine.index("70%") < mine.index("30%")
    # Any org of a bank names its bank; a logged-in person sees their own bank's rules without choosing.
    assert "存 4 小时" in _about(visitor, f"?bank={world.other_community.pk}")
    assert "存 4 小时" in _about(web_client(world.users["other_bank_staff"]))
    assert "存 4 小时" in _about(web_client(world.users["stranger"]))
    own = _about(web_client(world.users["volunteer"]))
    assert "存 4 小时" not in own and own.index("70%") < own.index("30%")
    # A bank that does not exist, or a word: the chooser, not an error.
    for junk in ("?bank=999999", "?bank=abc", "?bank=-1", "?bank=99999999999999999999"):
        assert f'href="/about/?bank={world.bank.pk}"' in _about(visitor, junk)


# ---------------------------------------------------------------------------------------------
# The workbench: each counter opens a list of exactly that many
# ---------------------------------------------------------------------------------------------

COUNTER = re.compile(r'<a href="([^"]+)"><span class="big-number">(\d+)</span>([^<]+)</a>')


def _orders(world: World) -> dict[str, Order]:
    """Orders whose counters all differ: 1 overdue, 2 urgent and open, 3 requested, 1 to confirm, 1 disputed."""
    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    do_adjustment(None, member=world.members["recipient"], minutes=6000, bucket="reserve", reason="开户")
    staff, volunteer, vmember = world.users["staff"], world.users["volunteer"], world.members["volunteer"]

    def order(days: float, **kw: object) -> Order:
        return order_actions.do_create_order(
            staff,
            recipient=world.members["recipient"],
            service_item=item,
            scheduled_start=timezone.now() + dt.timedelta(days=days),
            planned_minutes=60,
            payer="subsidy",
            channel="staff",
            **kw,  # type: ignore[arg-type]
        )

    made = {"overdue": order(5), "urgent_requested": order(0.02, urgent=True), "requested": order(2)}
    Order.objects.filter(pk=made["overdue"].pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    made["urgent_dispatched"] = order(3, urgent=True)
    order_actions.do_dispatch(staff, made["urgent_dispatched"], vmember)
    for name in ("completed", "disputed", "urgent_cancelled"):
        made[name] = order(0.02, urgent=name == "urgent_cancelled")
    order_actions.do_cancel(staff, made["urgent_cancelled"], reason="老人住院了", by_staff=True)
    for name in ("completed", "disputed"):
        order_actions.do_dispatch(staff, made[name], vmember)
        order_actions.do_accept(volunteer, made[name])
        order_actions.do_check_in(volunteer, made[name])
        Order.objects.filter(pk=made[name].pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=60))
        order_actions.do_check_out(volunteer, made[name])
    order_actions.do_dispute(world.users["recipient"], made["disputed"], reason="时间不对")
    return made


def _rows(page: str) -> int:
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    return main.count('<li class="card')


def test_each_workbench_counter_opens_a_list_of_exactly_that_many(world: World) -> None:
    _orders(world)
    make_member(world.community, "孙奶奶", roles=["recipient"])
    Member.objects.filter(name="孙奶奶").update(status=MemberStatus.PENDING)
    staff = web_client(world.users["staff"])
    home = staff.get("/staff/").content.decode()
    stats = home.split('<ul class="stats">', 1)[1].split("</ul>", 1)[0]
    counters = COUNTER.findall(stats)
    assert len(counters) >= 6, stats
    shown = {label.strip(): int(n) for _, n, label in counters}
    assert shown["超时未派的订单"] == 1 and shown["紧急订单"] == 2 and shown["等待派单"] == 3
    assert shown["等待确认"] == 1 and shown["有争议"] == 1 and shown["待审核会员"] == 1
    hrefs = [href.replace("&amp;", "&") for href, _, _ in counters]
    assert len(set(hrefs)) == len(hrefs), hrefs  # no two counters open the same list
    for href, (_, n, label) in zip(hrefs, counters, strict=True):
        listed = staff.get(href)
        assert listed.status_code == 200, href
        assert _rows(listed.content.decode()) == int(n), (label, href)
