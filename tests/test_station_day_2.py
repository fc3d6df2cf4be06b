"""What a walk-through of a station's day found broken (issue 13), second part: times in the answers, the ageing
alert of the risk projection, the rules-change notice's words, and matching by age and occupation."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import World, make_member
from tests.test_goods import redeem_body
from tests.test_goods import shop as shop
from tests.test_matching import new_order
from tests.test_orders import items as items
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.goods.models import Goods
from timebank.members.actions import MemberInput, do_update_member
from timebank.members.models import Member
from timebank.notices.models import Notice, NoticeSource
from timebank.orders import actions, matching
from timebank.orders.models import Order
from timebank.orgs.actions import do_create_org
from timebank.orgs.models import Org
from timebank.reports.risk import compute_risk, years_before

# An ISO 8601 date-time as the API writes it, with its offset.
ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


def times_in(answer: Any, path: str = "") -> list[tuple[str, str]]:
    """Every date-time string of a JSON answer, with where it is."""
    found: list[tuple[str, str]] = []
    if isinstance(answer, dict):
        for key, value in answer.items():
            found += times_in(value, f"{path}.{key}")
    elif isinstance(answer, list):
        for i, value in enumerate(answer):
            found += times_in(value, f"{path}[{i}]")
    elif isinstance(answer, str) and ISO_TIME.match(answer):
        found.append((path, answer))
    return found


def assert_local_times(answer: Any, *, at_least: int = 1) -> None:
    found = times_in(answer)
    assert len(found) >= at_least, answer
    utc = [(where, value) for where, value in found if not value.endswith("+08:00")]
    assert not utc, utc


def test_every_answer_carries_local_times(world: World, shop: Goods) -> None:
    volunteer, staff = world.api("volunteer"), world.api("staff")
    # A goods voucher, handed over: its handed_over_at, checked and listed.
    redemption = volunteer.post("/api/v1/goods/redemptions", redeem_body(world, shop, "t1"))
    assert redemption.status_code == 201, redemption.content
    code = redemption.json()["voucher_code"]
    handed = staff.post(f"/api/v1/vouchers/{code}/hand-over")
    assert handed.status_code == 200, handed.content
    assert handed.json()["handed_over_at"]
    assert_local_times(handed.json(), at_least=2)
    assert_local_times(staff.get(f"/api/v1/vouchers/{code}").json(), at_least=2)
    # Used once: the refusal says when it was handed over.
    used = staff.post(f"/api/v1/vouchers/{code}/hand-over")
    assert used.status_code == 409 and used.json()["error"]["fields"]["handed_over_at"]
    assert_local_times(used.json())
    assert_local_times(volunteer.get(f"/api/v1/goods/redemptions/{redemption.json()['redemption_id']}").json())
    # A consent: given by the member, recorded by staff, and listed.
    given = volunteer.post("/api/v1/me/consents", {"scope": "health_info", "granted": True})
    assert given.status_code == 201, given.content
    assert_local_times(given.json())
    assert_local_times(volunteer.get("/api/v1/me/consents").json())
    url = f"/api/v1/members/{world.members['volunteer'].pk}/consents"
    assert_local_times(staff.post(url, {"scope": "share_with_insurer", "granted": True}).json())
    assert_local_times(staff.get(url).json(), at_least=2)
    # The member's copy of their data, and a few answers of other apps.
    assert_local_times(volunteer.get("/api/v1/me/data").json(), at_least=2)
    assert_local_times(staff.get(f"/api/v1/members/{world.members['volunteer'].pk}").json())
    assert_local_times(volunteer.get(f"/api/v1/members/{world.members['volunteer'].pk}/statement").json())
    # A member who left: when they were anonymised.
    leaver = make_member(world.community, "离开的人", roles=["volunteer"])
    gone = staff.post(f"/api/v1/members/{leaver.pk}/anonymise")
    assert gone.status_code == 200, gone.content
    assert_local_times(gone.json())


def test_a_refused_early_check_in_names_the_local_start(world: World, items: dict[str, ServiceItem]) -> None:
    order = new_order(world, items["cleaning"], start=timezone.now() + dt.timedelta(days=2))
    actions.do_dispatch(None, order, world.members["volunteer"])
    actions.do_accept(None, order)
    early = world.api("volunteer").post(f"/api/v1/orders/{order.pk}/check-in", {})
    assert early.status_code == 409 and early.json()["error"]["code"] == "too_early", early.content
    assert_local_times(early.json())


def test_the_rules_notice_shows_labels_not_codes(world: World) -> None:
    url = f"/api/v1/orgs/{world.bank.pk}/rules"
    body = {
        "settlement_period": "year",
        "multipliers": {"ordinary": 1.5, "technical": 2, "professional": 3},
        "welfare_check_categories": ["living_alone"],
    }
    resp = world.api("head_office_admin").patch(url, body)
    assert resp.status_code == 200, resp.content
    notice = Notice.objects.get(source=NoticeSource.RULES)
    # The choices' labels, the tiers' labels and the categories' labels, as the rules page shows them.
    assert "结算周期：由 每半年 改为 每年" in notice.body
    assert "普通服务倍数 ×1，" in notice.body and "普通服务倍数 ×1.5，" in notice.body
    assert "独居" in notice.body and "空巢" in notice.body
    for code in ("half_year", "year", "ordinary", "technical", "professional", "living_alone", "empty_nest"):
        assert code not in notice.body, notice.body


def _young_bank(world: World, *, newcomers: int) -> Org:
    """A bank on the platform for 100 days: 10 volunteers of 55 to 59 registered when it opened (their paper
    records moved in), none of them at the reserve age yet; `newcomers` younger volunteers joined 20 days ago."""
    bank = do_create_org(None, name="新开的时间银行", kind="head_office", parent=None)
    branch = do_create_org(None, name="新街道", kind="branch", parent=bank)
    community = do_create_org(None, name="新社区", kind="sub_branch", parent=branch)
    today = timezone.localdate()
    founders = [
        make_member(community, f"老志愿者{i}", roles=["volunteer"], born=years_before(today, 55 + i % 5))
        for i in range(10)
    ]
    for i, member in enumerate(founders):
        Member.objects.filter(pk=member.pk).update(created_at=timezone.now() - dt.timedelta(days=100 - i))
    for i in range(newcomers):
        member = make_member(community, f"新志愿者{i}", roles=["volunteer"], born=years_before(today, 35))
        Member.objects.filter(pk=member.pk).update(created_at=timezone.now() - dt.timedelta(days=20))
    return bank


def test_a_young_bank_with_an_ageing_base_raises_the_ageing_alert(world: World) -> None:
    risk = compute_risk(_young_bank(world, newcomers=0))
    assert risk.volunteers == 10 and risk.at_age_now == 0
    five, ten = risk.projections
    assert five.newly_reaching == 10 and ten.newly_reaching == 10
    # The volunteers it opened with are its base, not an inflow: no volunteer has joined since.
    assert risk.joined_in_window == 0 and risk.new_volunteers_per_year == 0
    assert five.new_volunteers == ten.new_volunteers == 0
    assert {"ageing_5", "ageing_10"} <= {a.code for a in risk.alerts}


def test_a_young_bank_with_real_inflow_raises_no_ageing_alert(world: World) -> None:
    risk = compute_risk(_young_bank(world, newcomers=3))
    # 3 joined in the 71 days since its founding days (today included): 3 × 365 / 71 a year, not 3 × 2.
    assert risk.joined_in_window == 3
    assert risk.new_volunteers_per_year == Decimal("15.4")
    five, ten = risk.projections
    assert (five.newly_reaching, five.new_volunteers, five.alert) == (10, 77, False)
    assert (ten.newly_reaching, ten.new_volunteers, ten.alert) == (10, 154, False)
    assert not {"ageing_5", "ageing_10"} & {a.code for a in risk.alerts}


def test_matching_prefers_the_younger_volunteer_other_things_equal(world: World) -> None:
    """The plan (第四份: 根据志愿者年龄、职业、特长、服务意愿…实现有效对接; 第一份: 身体较好、相对年轻的老党员)."""
    today = timezone.localdate()
    older = make_member(world.community, "年长的", roles=["volunteer"], born=years_before(today, 78))
    younger = make_member(world.community, "年轻些的", roles=["volunteer"], born=years_before(today, 58))
    order = new_order(
        world,
        do_create_service_item(None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"),
    )
    ranked = _ranking(world, order)
    assert ranked.index(younger.pk) < ranked.index(older.pk), ranked
    assert "60 岁以下" in _reasons(world, order, younger) and "60 岁以下" not in _reasons(world, order, older)


def test_matching_prefers_a_medical_background_for_a_medical_escort(world: World) -> None:
    """The plan (第一份: 鼓励医护人员成为志愿者…提升护理水平; 第四份: 根据职业对接)."""
    clerk = make_member(world.community, "当会计的", roles=["volunteer"])
    do_update_member(None, clerk, MemberInput(occupation="会计"))
    nurse = make_member(world.community, "当护士的", roles=["volunteer"])  # the later member: ties go to the clerk
    do_update_member(None, nurse, MemberInput(occupation="退休护士"))
    escort = do_create_service_item(
        None, head_office=world.bank, name="陪同就医", category="mutual_care", tier="ordinary"
    )
    order = new_order(world, escort)
    ranked = _ranking(world, order)
    assert ranked.index(nurse.pk) < ranked.index(clerk.pk), ranked
    assert "有医护背景" in _reasons(world, order, nurse) and "有医护背景" not in _reasons(world, order, clerk)
    # For a service that names no occupation, the occupation changes nothing.
    cleaning = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    scores = {c["volunteer_id"]: c["score"] for c in _candidates(world, new_order(world, cleaning))}
    assert scores[nurse.pk] == scores[clerk.pk]


def test_matching_by_age_and_occupation_reads_no_more_queries(world: World) -> None:
    from tests.test_matching import HOME, place_recipient, volunteer

    place_recipient(world)
    for i in range(3):
        volunteer(world, f"批{i}", latitude=HOME[0], longitude=HOME[1], occupation="护士")
    item = do_create_service_item(
        None, head_office=world.bank, name="陪同就医", category="health_care", tier="ordinary"
    )
    order = Order.objects.select_related("service_item", "recipient__home_org").get(pk=new_order(world, item).pk)
    with CaptureQueriesContext(connection) as ctx:
        found = matching.rank_candidates(order, limit=50)
    assert len(found) >= 3
    assert len(ctx.captured_queries) == 5  # as before age and occupation counted: the pool query reads them


def _candidates(world: World, order: Order) -> list[dict[str, Any]]:
    resp = world.api("staff").get(f"/api/v1/orders/{order.pk}/candidates", {"limit": 200})
    assert resp.status_code == 200, resp.content
    return list(resp.json()["items"])


def _ranking(world: World, order: Order) -> list[int]:
    return [c["volunteer_id"] for c in _candidates(world, order)]


def _reasons(world: World, order: Order, member: Member) -> list[str]:
    return next(list(c["reasons"]) for c in _candidates(world, order) if c["volunteer_id"] == member.pk)
