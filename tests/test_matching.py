"""Matching: GET /orders/{id}/candidates ranks dispatchable volunteers, each criterion in turn."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import World, error_code, make_member
from timebank.api.types import encode_cursor
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.members.actions import MemberInput, do_update_member
from timebank.members.models import Certificate, InsurancePolicy, Member
from timebank.orders import actions, matching, records
from timebank.orders.matching import Facts, Need, score_volunteer
from timebank.orders.models import Order
from timebank.orgs.actions import do_update_rules
from timebank.orgs.models import Org, Rules

# 顺河社区, roughly: the recipient lives here; 0.01° of latitude is about 1.1 km.
HOME = (Decimal("34.560000"), Decimal("117.730000"))


@pytest.fixture
def items(world: World) -> dict[str, ServiceItem]:
    def make(name: str, category: str, tier: str, cert: str | None = None) -> ServiceItem:
        return do_create_service_item(
            None, head_office=world.bank, name=name, category=category, tier=tier, requires_certificate=cert
        )

    return {
        "cleaning": make("家庭保洁", "mutual_care", "ordinary"),
        "counselling": make("心理咨询", "mutual_care", "professional", "counselling"),
    }


def next_tuesday_morning() -> dt.datetime:
    today = timezone.localdate()
    days = (1 - today.weekday()) % 7 or 7
    day = today + dt.timedelta(days=days)
    return timezone.make_aware(dt.datetime.combine(day, dt.time(9, 30)))


def volunteer(world: World, name: str, org: Org | None = None, **data: Any) -> Member:
    """A volunteer with everything but the tested criterion the same."""
    member = make_member(org or world.community, name, roles=["volunteer"])
    return do_update_member(None, member, MemberInput(**data)) if data else member


def place_recipient(world: World, lat: Decimal | None = HOME[0], lon: Decimal | None = HOME[1]) -> None:
    do_update_member(None, world.members["recipient"], MemberInput(latitude=lat, longitude=lon))


def new_order(world: World, item: ServiceItem, start: dt.datetime | None = None, planned: int = 60) -> Order:
    return actions.do_create_order(
        None,
        recipient=Member.objects.get(pk=world.members["recipient"].pk),
        service_item=item,
        scheduled_start=start or next_tuesday_morning(),
        planned_minutes=planned,
        payer="subsidy",
        channel="staff",
    )


def serve(world: World, item: ServiceItem, who: Member, *, minutes: int = 60, rating: int | None = None) -> None:
    """A whole past order, through the actions: served now, so it counts as recent hours."""
    order = new_order(world, item, timezone.now() - dt.timedelta(hours=2), planned=minutes)
    actions.do_dispatch(None, order, who)
    actions.do_accept(None, order)
    actions.do_check_in(None, order)
    # Served `minutes`: the check-in is set back rather than the test waiting (credits follow the clock).
    Order.objects.filter(pk=order.pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=minutes))
    actions.do_check_out(None, order)
    actions.do_confirm(None, order, actual_minutes=minutes, by_staff=True)
    if rating is not None:
        actions.do_review(None, order, rating=rating)


def candidates(world: World, order: Order, persona: str = "staff", **params: Any) -> Any:
    resp = world.api(persona).get(f"/api/v1/orders/{order.pk}/candidates", params or None)
    assert resp.status_code == 200, resp.content
    return resp.json()


def ranking(world: World, order: Order) -> list[int]:
    return [c["volunteer_id"] for c in candidates(world, order, limit=200)["items"]]


def reasons_of(world: World, order: Order, member: Member) -> list[str]:
    found = [c for c in candidates(world, order, limit=200)["items"] if c["volunteer_id"] == member.pk]
    assert found, f"{member} is not a candidate"
    return list(found[0]["reasons"])


def ranks_before(world: World, order: Order, better: Member, worse: Member) -> None:
    ids = ranking(world, order)
    assert ids.index(better.pk) < ids.index(worse.pk), ids


# ------------------------------------------------------------------------------------------------ hard filters


def test_certificate_is_a_hard_filter(world: World, items: dict[str, ServiceItem]) -> None:
    today = timezone.localdate()
    certified = volunteer(world, "持证")
    expired = volunteer(world, "过期")
    other_kind = volunteer(world, "别的证")
    Certificate.objects.create(member=certified, kind="counselling", valid_until=today + dt.timedelta(days=30))
    Certificate.objects.create(member=expired, kind="counselling", valid_until=today - dt.timedelta(days=1))
    Certificate.objects.create(member=other_kind, kind="nursing")
    order = new_order(world, items["counselling"])

    ids = ranking(world, order)
    assert ids == [certified.pk]
    assert "有心理咨询资质" in reasons_of(world, order, certified)
    # Without a certificate requirement, all of them (and the world's volunteers) are candidates.
    assert {certified.pk, expired.pk, other_kind.pk} <= set(ranking(world, new_order(world, items["cleaning"])))


def test_everyone_listed_can_be_dispatched(world: World, items: dict[str, ServiceItem]) -> None:
    volunteer(world, "甲")
    Member.objects.filter(pk=world.members["neighbour"].pk).update(status="suspended")
    order = new_order(world, items["cleaning"])
    ids = ranking(world, order)
    assert world.members["recipient"].pk not in ids
    assert world.members["stranger"].pk not in ids  # another bank
    assert world.members["neighbour"].pk not in ids  # suspended
    for member in Member.objects.filter(pk__in=ids):
        actions.check_volunteer_for(order, member)  # raises if not dispatchable
    resp = world.api("staff").post(f"/api/v1/orders/{order.pk}/dispatch", {"volunteer_id": ids[0]})
    assert resp.status_code == 200, resp.content


def test_insurance_is_required_only_where_the_rules_say_so(world: World, items: dict[str, ServiceItem]) -> None:
    today = timezone.localdate()
    insured = volunteer(world, "有保险")
    lapsed = volunteer(world, "保险过期")
    InsurancePolicy.objects.create(
        member=insured, insurer="人保", policy_number="P1", starts_on=today, ends_on=today + dt.timedelta(days=365)
    )
    InsurancePolicy.objects.create(
        member=lapsed,
        insurer="人保",
        policy_number="P2",
        starts_on=today - dt.timedelta(days=400),
        ends_on=today - dt.timedelta(days=1),
    )
    order = new_order(world, items["cleaning"])
    uninsured = volunteer(world, "没保险")
    # Not required: everyone is listed, and insurance counts for a little.
    ids = ranking(world, order)
    assert {insured.pk, lapsed.pk, uninsured.pk} <= set(ids)
    ranks_before(world, order, insured, uninsured)
    assert "意外险有效" in reasons_of(world, order, insured)
    assert "没有有效的意外险" in reasons_of(world, order, uninsured)

    do_update_rules(None, Rules.objects.get(head_office=world.bank), {"require_insurance_to_dispatch": True})
    ids = ranking(world, order)
    assert insured.pk in ids
    assert lapsed.pk not in ids and uninsured.pk not in ids and world.members["volunteer"].pk not in ids


# --------------------------------------------------------------------------------------------- soft criteria


def test_closer_ranks_higher(world: World, items: dict[str, ServiceItem]) -> None:
    place_recipient(world)
    near = volunteer(world, "近", latitude=HOME[0] + Decimal("0.005"), longitude=HOME[1])
    far = volunteer(world, "远", latitude=HOME[0] + Decimal("0.05"), longitude=HOME[1])
    order = new_order(world, items["cleaning"])
    ranks_before(world, order, near, far)
    assert "距离约 0.6 公里" in reasons_of(world, order, near)
    assert "距离约 5.6 公里" in reasons_of(world, order, far)
    by_id = {c["volunteer_id"]: c for c in candidates(world, order)["items"]}
    assert by_id[near.pk]["score"] > by_id[far.pk]["score"]
    assert by_id[near.pk]["distance_km"] == pytest.approx(0.56, abs=0.01)


def test_without_coordinates_the_same_community_ranks_higher(world: World, items: dict[str, ServiceItem]) -> None:
    same = volunteer(world, "本社区")
    elsewhere = volunteer(world, "外镇", world.community2)
    order = new_order(world, items["cleaning"])
    ranks_before(world, order, same, elsewhere)
    assert "同一社区" in reasons_of(world, order, same)
    assert "距离不详" in reasons_of(world, order, elsewhere)


def test_an_unlocated_recipient_is_matched_around_their_community(world: World, items: dict[str, ServiceItem]) -> None:
    """The pool is found around the community's members; scores then go by community, not by guessed km."""
    near = volunteer(world, "本社区有定位", latitude=HOME[0], longitude=HOME[1])
    far = volunteer(world, "外镇有定位", world.community2, latitude=HOME[0] + 1, longitude=HOME[1])
    order = new_order(world, items["cleaning"])
    ranks_before(world, order, near, far)
    assert "同一社区" in reasons_of(world, order, near)
    assert all(c["distance_km"] is None for c in candidates(world, order)["items"])


def test_a_located_recipient_still_gets_unlocated_neighbours(world: World, items: dict[str, ServiceItem]) -> None:
    place_recipient(world)
    located = volunteer(world, "有定位", latitude=HOME[0], longitude=HOME[1])
    unlocated = volunteer(world, "没定位")
    order = new_order(world, items["cleaning"])
    ids = ranking(world, order)
    assert located.pk in ids and unlocated.pk in ids
    assert "同一社区" in reasons_of(world, order, unlocated)
    assert "就在附近（不到 100 米）" in reasons_of(world, order, located)


def test_availability_at_the_scheduled_time_ranks_higher(world: World, items: dict[str, ServiceItem]) -> None:
    free = volunteer(world, "周二上午", availability={"tue": ["morning"]})
    afternoon = volunteer(world, "周二下午", availability={"tue": ["afternoon"]})
    busy_day = volunteer(world, "只有周五", availability={"fri": ["morning", "afternoon"]})
    order = new_order(world, items["cleaning"])  # a Tuesday, 9:30
    ranks_before(world, order, free, afternoon)
    ranks_before(world, order, afternoon, busy_day)
    assert "周二上午有空" in reasons_of(world, order, free)
    assert "周二上午不一定有空" in reasons_of(world, order, busy_day)


def test_willingness_and_skills_rank_higher(world: World, items: dict[str, ServiceItem]) -> None:
    willing = volunteer(world, "愿意", willing_services=["家庭保洁"])
    category = volunteer(world, "愿意这类", willing_services=["mutual_care"])
    skilled = volunteer(world, "会做", skills=["保洁"])
    neither = volunteer(world, "都不", willing_services=["tutoring"], skills=["书法"])
    order = new_order(world, items["cleaning"])
    ranks_before(world, order, willing, category)
    ranks_before(world, order, category, neither)
    ranks_before(world, order, skilled, neither)
    assert "愿意做家庭保洁" in reasons_of(world, order, willing)
    assert "愿意做互助养老类服务" in reasons_of(world, order, category)
    assert "有相关技能：保洁" in reasons_of(world, order, skilled)


def test_higher_rating_ranks_higher(world: World, items: dict[str, ServiceItem]) -> None:
    good = volunteer(world, "好评")
    poor = volunteer(world, "差评")
    serve(world, items["cleaning"], good, rating=5)
    serve(world, items["cleaning"], poor, rating=2)
    order = new_order(world, items["cleaning"])
    ranks_before(world, order, good, poor)
    assert "平均评分 5（1 次评价）" in reasons_of(world, order, good)


def test_fewer_recent_hours_rank_higher(world: World, items: dict[str, ServiceItem]) -> None:
    rested = volunteer(world, "少")
    busy = volunteer(world, "多")
    serve(world, items["cleaning"], busy, minutes=120)
    records.do_service_record(
        None, volunteer=busy, service_item=items["cleaning"], minutes=60, served_at=timezone.now(), idempotency_key="m1"
    )
    order = new_order(world, items["cleaning"])
    ranks_before(world, order, rested, busy)
    assert "近 30 天还没有服务（优先照顾服务少的）" in reasons_of(world, order, rested)
    assert "近 30 天服务 3 小时（优先照顾服务少的）" in reasons_of(world, order, busy)


def test_a_volunteer_who_declined_or_is_booked_drops(world: World, items: dict[str, ServiceItem]) -> None:
    decliner = volunteer(world, "拒绝过")
    booked = volunteer(world, "有安排")
    other = volunteer(world, "其他")
    order = new_order(world, items["cleaning"])
    actions.do_dispatch(None, order, decliner)
    actions.do_decline(None, order, "没空")
    clash = new_order(world, items["cleaning"], order.scheduled_start + dt.timedelta(minutes=30))
    actions.do_dispatch(None, clash, booked)
    ranks_before(world, order, other, decliner)
    ranks_before(world, order, other, booked)
    assert "曾拒绝过这个订单" in reasons_of(world, order, decliner)
    assert "该时段已有其他订单" in reasons_of(world, order, booked)


def test_reasons_follow_the_language(world: World, items: dict[str, ServiceItem]) -> None:
    volunteer(world, "甲", availability={"tue": ["morning"]})
    order = new_order(world, items["cleaning"])
    resp = world.api("staff").get(f"/api/v1/orders/{order.pk}/candidates", HTTP_ACCEPT_LANGUAGE="en")
    text = " ".join(r for c in resp.json()["items"] for r in c["reasons"])
    assert "Tuesday" in text and "有空" not in text


# ------------------------------------------------------------------------------------- access and pagination


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("staff", 200),
        ("branch_admin", 200),
        ("head_office_admin", 200),
        ("operator", 200),
        ("superuser", 200),
        ("staff_next", 403),
        ("other_bank_staff", 403),
        ("other_bank_admin", 403),
        ("assessor", 403),
        ("volunteer", 403),
        ("recipient", 403),
        ("relative", 403),
        ("anonymous", 401),
    ],
)
def test_who_may_see_candidates(world: World, items: dict[str, ServiceItem], persona: str, status: int) -> None:
    order = new_order(world, items["cleaning"])
    resp = world.api(persona).get(f"/api/v1/orders/{order.pk}/candidates")
    assert resp.status_code == status, resp.content


def test_unknown_order_is_404(world: World) -> None:
    resp = world.api("staff").get("/api/v1/orders/999999/candidates")
    assert resp.status_code == 404
    assert error_code(resp) == "order_not_found"


def test_pages_cover_the_ranking_once(world: World, items: dict[str, ServiceItem]) -> None:
    for i in range(6):
        volunteer(world, f"志愿者{i}")
    order = new_order(world, items["cleaning"])
    everyone = ranking(world, order)
    eligible = Member.objects.filter(bank=world.bank, is_volunteer=True, status="active").exclude(
        pk=world.members["recipient"].pk
    )
    assert sorted(everyone) == sorted(eligible.values_list("pk", flat=True))
    assert len(everyone) > 6  # the six, and the world's volunteers of this bank (also from another town)
    seen: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = candidates(world, order, **params)
        assert len(page["items"]) <= 3
        seen += [c["volunteer_id"] for c in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == everyone
    scores = [c["score"] for c in candidates(world, order, limit=200)["items"]]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": -1},
        {"limit": 10**30},
        {"limit": "x"},
        {"cursor": "!!"},
        {"cursor": "a" * 101},
    ],
)
def test_bad_paging_is_422(world: World, items: dict[str, ServiceItem], params: dict[str, Any]) -> None:
    order = new_order(world, items["cleaning"])
    resp = world.api("staff").get(f"/api/v1/orders/{order.pk}/candidates", params)
    assert resp.status_code in (400, 422), resp.content
    assert "error" in resp.json()


def test_a_cursor_past_the_end_is_an_empty_page(world: World, items: dict[str, ServiceItem]) -> None:
    order = new_order(world, items["cleaning"])
    page = candidates(world, order, cursor=encode_cursor(2**40))
    assert page == {"items": [], "next_cursor": None}


def test_query_count_does_not_grow_with_volunteers(world: World, items: dict[str, ServiceItem]) -> None:
    place_recipient(world)
    order = Order.objects.select_related("service_item", "recipient__home_org").get(
        pk=new_order(world, items["counselling"]).pk
    )

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            matching.rank_candidates(order, limit=50)
        return len(ctx.captured_queries)

    def add(n: int) -> None:
        for i in range(n):
            v = volunteer(world, f"批{i}", latitude=HOME[0] + Decimal(i) / 1000, longitude=HOME[1])
            Certificate.objects.create(member=v, kind="counselling")
            serve(world, items["cleaning"], v, rating=4)

    add(2)
    few = count()
    add(8)
    assert count() == few
    assert len(matching.rank_candidates(order, limit=50)) == 10


# ------------------------------------------------------------------------------------- the pure scoring helper


NEED = Need(
    item_name="家庭保洁",
    category="mutual_care",
    certificate="",
    day="tue",
    slot="morning",
    latitude=34.56,
    longitude=117.73,
    community_path="/1/2/4/",
    area_path="/1/2/",
    insurance_required=False,
)


def test_score_is_monotonic_in_each_criterion_without_a_database() -> None:
    base = Facts(volunteer_id=1, name="甲", latitude=34.57, longitude=117.73, home_path="/1/2/4/")

    def score(**changes: Any) -> float:
        return score_volunteer(NEED, dataclasses.replace(base, **changes)).score

    assert score(latitude=34.561) > score() > score(latitude=34.7)
    assert score(availability={"tue": ["morning"]}) > score(availability={"tue": ["evening"]})
    assert score(availability={"tue": ["evening"]}) > score(availability={"wed": ["morning"]})
    assert score(rating_sum=10, rating_count=2) > score(rating_sum=6, rating_count=2)
    assert score(recent_minutes=0) > score(recent_minutes=120) > score(recent_minutes=1200)
    assert score(willing_services=["家庭保洁"]) > score(willing_services=["mutual_care"]) > score()
    assert score(skills=["家庭保洁"]) > score()
    assert score(insured=True) > score()
    assert score() > score(declined=True) > score(no_show=True)
    assert score(busy=True) < score()
    best = score(
        latitude=34.56,
        availability={"tue": ["morning"]},
        willing_services=["家庭保洁"],
        skills=["家庭保洁"],
        insured=True,
    )
    assert 95 <= best <= 100
    assert score(no_show=True, busy=True, latitude=None, longitude=None, home_path="/9/") >= 0


def test_rank_breaks_ties_by_distance_then_id() -> None:
    pool = [
        Facts(volunteer_id=3, name="丙"),
        Facts(volunteer_id=2, name="乙"),
        Facts(volunteer_id=1, name="甲"),
    ]
    assert [s.volunteer_id for s in matching.rank(NEED, pool)] == [1, 2, 3]


def test_staff_see_full_names_only_of_their_own_subtree(world: World, items: dict[str, ServiceItem]) -> None:
    place_recipient(world)
    mine = volunteer(world, "王秀兰", latitude=HOME[0], longitude=HOME[1])
    theirs = volunteer(world, "赵桂芳", org=world.community2, latitude=HOME[0], longitude=HOME[1])
    order = new_order(world, items["cleaning"])
    names = {c["volunteer_id"]: c["name"] for c in candidates(world, order, limit=200)["items"]}
    assert names[mine.pk] == "王秀兰"
    assert names[theirs.pk] == "赵**"  # dispatchable, but another community's person
    head_office = {
        c["volunteer_id"]: c["name"] for c in candidates(world, order, "head_office_admin", limit=200)["items"]
    }
    assert head_office[theirs.pk] == "赵桂芳"
