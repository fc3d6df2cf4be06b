"""Core services first (issue 14): where an old person or a relative picks a service, the emergency tile comes
first, then what this person ordered most, then what their community ordered most, at most six tiles; the rest
wait behind 更多. The rule is timebank.orders.core_services; the home page shows it."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from tests.conftest import World, make_member, web_client
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.demo import HOME_SERVICES
from timebank.catalogue.models import ServiceItem
from timebank.members.models import Member
from timebank.orders import actions as order_actions
from timebank.orders.core_services import CORE_TILES, EMERGENCY_ITEM, core_services_first, order_counts
from timebank.orders.views_member import service_items


def home_services(world: World) -> dict[str, ServiceItem]:
    """The demo's services to a recipient's home (eighteen, the emergency tile among them), in world's bank."""
    return {
        s.name: do_create_service_item(None, head_office=world.bank, name=s.name, category=s.category, tier=s.tier)
        for s in HOME_SERVICES
    }


def order(world: World, recipient: Member, item: ServiceItem, times: int = 1, *, cancel: bool = False) -> None:
    for _ in range(times):
        made = order_actions.do_create_order(
            world.users["staff"],
            recipient=recipient,
            service_item=item,
            scheduled_start=timezone.now() + dt.timedelta(days=1),
            planned_minutes=60,
            payer="subsidy",
            channel="hotline",
        )
        if cancel:
            order_actions.do_cancel(world.users["staff"], made, reason="老人住院了", by_staff=True)


def order_history(world: World, items: dict[str, ServiceItem]) -> None:
    """李大爷 had 理发 twice and 家电维修 once; his community (顺河社区) ordered 陪同就医 three times, 餐饮配送
    twice and 理发 once; the next community ordered 法律咨询 five times; 心理咨询 was ordered and cancelled."""
    me = world.members["recipient"]
    neighbour = make_member(world.community, "张奶奶", roles=["recipient"], born=dt.date(1938, 2, 3))
    far = make_member(world.community2, "刘爷爷", roles=["recipient"], born=dt.date(1939, 4, 5))
    order(world, me, items["理发"], 2)
    order(world, me, items["家电维修"])
    order(world, neighbour, items["陪同就医"], 3)
    order(world, neighbour, items["餐饮配送"], 2)
    order(world, neighbour, items["理发"])
    order(world, far, items["法律咨询"], 5)
    order(world, me, items["心理咨询"], 3, cancel=True)


@pytest.fixture
def items(world: World) -> dict[str, ServiceItem]:
    made = home_services(world)
    order_history(world, made)
    return made


def test_the_persons_own_most_ordered_come_first_then_the_communitys_with_the_emergency_tile_before_all(
    world: World, items: dict[str, ServiceItem]
) -> None:
    me = world.members["recipient"]
    catalogue = service_items(world.bank.pk, me.home_org_id)
    choice = core_services_first(catalogue, me)
    names = [item.name for item in choice.first]
    untouched = [
        i.name for i in catalogue if i.name not in {EMERGENCY_ITEM, "理发", "家电维修", "陪同就医", "餐饮配送"}
    ]
    assert names == [EMERGENCY_ITEM, "理发", "家电维修", "陪同就医", "餐饮配送", untouched[0]]
    assert len(choice.first) == CORE_TILES == 6
    # The rest, behind 更多, keep the catalogue's order: another community's favourite and a cancelled one too.
    assert [item.name for item in choice.more] == untouched[1:]
    assert {"法律咨询", "心理咨询"} <= {item.name for item in choice.more}
    assert len(choice.first) + len(choice.more) == len(catalogue) == len(HOME_SERVICES)
    counts = order_counts(me)
    assert counts[items["理发"].pk] == (2, 3)  # his two and his neighbour's one, all in 顺河社区
    assert items["法律咨询"].pk not in counts and items["心理咨询"].pk not in counts


def test_the_emergency_tile_stays_first_whatever_is_ordered_and_however_few_tiles(
    world: World, items: dict[str, ServiceItem]
) -> None:
    me = world.members["recipient"]
    order(world, me, items["聊天陪伴"], 6)
    catalogue = service_items(world.bank.pk, me.home_org_id)
    assert [i.name for i in core_services_first(catalogue, me, shown=2).first] == [EMERGENCY_ITEM, "聊天陪伴"]
    # Nonsense sizes still show the emergency tile, and nothing is lost.
    for shown in (0, -5):
        choice = core_services_first(catalogue, me, shown=shown)
        assert [i.name for i in choice.first] == [EMERGENCY_ITEM]
        assert len(choice.more) == len(catalogue) - 1
    huge = core_services_first(catalogue, me, shown=10**9)
    assert huge.more == [] and len(huge.first) == len(catalogue)
    # A menu without the emergency service simply starts with the most ordered.
    without = [i for i in catalogue if i.name != EMERGENCY_ITEM]
    assert core_services_first(without, me).first[0].name == "聊天陪伴"


def test_a_newcomer_with_no_orders_anywhere_sees_the_catalogues_order(world: World) -> None:
    items = home_services(world)
    newcomer = make_member(world.community2, "孙奶奶", roles=["recipient"], born=dt.date(1941, 6, 7))
    catalogue = service_items(world.bank.pk, newcomer.home_org_id)
    choice = core_services_first(catalogue, newcomer)
    rest = [i for i in catalogue if i.pk != items[EMERGENCY_ITEM].pk]
    assert choice.first == [items[EMERGENCY_ITEM], *rest[:5]]
    assert choice.more == rest[5:]


TILE = re.compile(r'<a class="tile(?: emergency)?" href="/order/(\d+)/\?for=(\d+)">([^<]+)<small>')


def test_the_home_page_shows_six_tiles_and_the_rest_behind_more_for_the_recipient_and_the_relative(
    world: World, items: dict[str, ServiceItem]
) -> None:
    me = world.members["recipient"]
    expected = core_services_first(service_items(world.bank.pk, me.home_org_id), me)
    for persona in ("recipient", "relative"):
        page = web_client(world.users[persona]).get("/").content.decode()
        head, _, tail = page.partition('<details class="more services-more">')
        assert tail, persona  # 更多 is there
        assert "更多服务（12 项）" in tail
        shown = [(int(i), int(f), n) for i, f, n in TILE.findall(head)]
        hidden = [(int(i), int(f), n) for i, f, n in TILE.findall(tail)]
        assert [n for _, _, n in shown] == [i.name for i in expected.first], persona
        assert [n for _, _, n in hidden][: len(expected.more)] == [i.name for i in expected.more], persona
        assert {f for _, f, _ in shown + hidden} == {me.pk}, persona  # ordered for 李大爷
        assert f'<a class="tile emergency" href="/order/{items[EMERGENCY_ITEM].pk}/' in head


def test_a_relative_with_two_elders_sees_the_chosen_elders_favourites(
    world: World, items: dict[str, ServiceItem]
) -> None:
    from timebank.members.actions import do_link_relative

    aunt = make_member(world.community2, "刘奶奶", roles=["recipient"], born=dt.date(1936, 8, 9))
    do_link_relative(world.users["superuser"], aunt, world.members["relative"], "外甥")
    order(world, aunt, items["测量血压"], 2)
    client = web_client(world.users["relative"])
    first_elder = client.get("/").content.decode()
    chosen = client.get(f"/?for={aunt.pk}").content.decode()
    names = lambda html: [n for _, _, n in TILE.findall(html.partition("services-more")[0])]  # noqa: E731
    assert names(chosen)[:2] == [EMERGENCY_ITEM, "测量血压"]
    assert "测量血压" not in names(first_elder)[:2]
    # Another person's id (not one of theirs) falls back to their first elder; a word is no id either.
    stranger = world.members["stranger"].pk
    for bad in (str(stranger), "abc", "-1", "9" * 30):
        assert names(client.get("/", {"for": bad}).content.decode()) == names(first_elder), bad
