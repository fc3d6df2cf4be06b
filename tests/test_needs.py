"""The recipient register (对象清单) and the needs register (需求清单)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import World, error_code, new_id_number
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.members.actions import MemberInput, do_register_member
from timebank.members.models import Member
from timebank.needs.models import Need, NeedFollowUp
from timebank.needs.priority import ALONE_OR_OLD, GENERAL, KEY_GROUP, OTHER_CATEGORY, priority
from timebank.orders.actions import do_cancel, do_create_order
from timebank.orders.models import Order
from timebank.orgs.models import Org

TODAY = dt.date(2025, 6, 1)


def born(age: int) -> dt.date:
    return dt.date(TODAY.year - age, 1, 15)


@pytest.mark.parametrize(
    ("age", "categories", "rank", "reasons"),
    [
        (72, ["subsistence_allowance"], KEY_GROUP, ("allowance_70",)),
        (68, ["subsistence_allowance"], OTHER_CATEGORY, ("other_category",)),  # under 70: not the seed's group
        (71, ["registered_poor"], KEY_GROUP, ("registered_poor_70",)),
        (61, ["partly_disabled"], KEY_GROUP, ("disabled_60",)),
        (59, ["severe_disability"], OTHER_CATEGORY, ("other_category",)),
        (65, ["extreme_poverty", "left_behind"], KEY_GROUP, ("extreme_poverty_60", "left_behind_60")),
        (66, ["living_alone"], ALONE_OR_OLD, ("living_alone",)),
        (82, [], ALONE_OR_OLD, ("advanced_age",)),  # 80 and over counts as advanced age without the category
        (75, ["advanced_age", "empty_nest"], ALONE_OR_OLD, ("advanced_age",)),
        (75, ["empty_nest"], OTHER_CATEGORY, ("other_category",)),
        (70, [], GENERAL, ()),
        (None, ["disabled"], OTHER_CATEGORY, ("other_category",)),  # unknown age meets no age condition
    ],
)
def test_priority_follows_the_seeds(age: int | None, categories: list[str], rank: int, reasons: tuple) -> None:
    p = priority(born(age) if age is not None else None, categories, TODAY)
    assert (p.rank, p.reasons) == (rank, reasons)
    assert p.label and len(p.reason_labels) == len(reasons)


def test_priority_counts_birthdays_exactly() -> None:
    assert priority(dt.date(1955, 6, 2), ["subsistence_allowance"], TODAY).rank == OTHER_CATEGORY  # 69 until tomorrow
    assert priority(dt.date(1955, 6, 1), ["subsistence_allowance"], TODAY).rank == KEY_GROUP  # 70 today


def recipient(org: Org, name: str, categories: list[str], age: int, phone: str = "13912345678") -> Member:
    today = timezone.localdate()
    birth = dt.date(today.year - age, 1, 1)
    return do_register_member(
        None,
        home_org=org,
        data=MemberInput(
            name=name,
            id_number=new_id_number(birth),
            birth_date=birth,
            roles=["recipient"],
            recipient_categories=categories,
            phone=phone,
        ),
        approved=True,
    )


@pytest.fixture
def register(world: World) -> dict[str, Member]:
    return {
        "alone": recipient(world.community, "独居张", ["living_alone"], 66),
        "plain": recipient(world.community, "普通刘", [], 65),
        "allowance": recipient(world.community, "低保王", ["subsistence_allowance"], 75),
        "empty_nest": recipient(world.community, "空巢赵", ["empty_nest"], 62),
        "disabled_next": recipient(world.community2, "失能钱", ["disabled"], 64),
        "other_bank": recipient(world.other_community, "南充孙", ["extreme_poverty"], 80),
    }


def names(resp: object) -> list[str]:
    return [r["name"] for r in resp.json()["items"]]  # type: ignore[attr-defined]


def test_recipients_are_listed_served_first_with_masked_phones(world: World, register: dict[str, Member]) -> None:
    resp = world.api("staff").get("/api/v1/recipients")
    assert resp.status_code == 200, resp.content
    # 低保 at 75 is in the seed's five groups; 李大爷 (85) and 独居张 come next (older first); then the rest.
    assert names(resp) == ["低保王", "李大爷", "独居张", "空巢赵", "普通刘"]
    first = resp.json()["items"][0]
    assert first["priority"]["rank"] == 1 and first["priority"]["reasons"] == ["allowance_70"]
    assert first["phone"] == "139****5678"
    assert first["open_needs"] == 0


def test_recipients_filter_by_category_priority_and_page(world: World, register: dict[str, Member]) -> None:
    api = world.api("head_office_admin")
    assert names(api.get("/api/v1/recipients", {"category": "disabled"})) == ["失能钱"]
    assert names(api.get("/api/v1/recipients", {"priority": 2})) == ["李大爷", "独居张"]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api.get("/api/v1/recipients", params).json()
        seen += [r["name"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["低保王", "失能钱", "李大爷", "独居张", "空巢赵", "普通刘"]
    for params in ({"priority": 0}, {"priority": 5}, {"category": "alien"}, {"cursor": "!!"}, {"limit": 0}):
        bad = api.get("/api/v1/recipients", params)
        assert bad.status_code == 422, (params, bad.content)


def test_recipients_stay_inside_the_subtree(world: World, register: dict[str, Member]) -> None:
    assert names(world.api("staff_next").get("/api/v1/recipients")) == ["失能钱"]
    assert names(world.api("other_bank_staff").get("/api/v1/recipients")) == ["南充孙"]
    assert len(names(world.api("operator").get("/api/v1/recipients"))) == 6
    other = world.api("staff").get("/api/v1/recipients", {"org_id": world.other_community.pk})
    assert other.status_code == 403
    for persona in ("recipient", "volunteer", "assessor"):
        assert world.api(persona).get("/api/v1/recipients").status_code == 403, persona
    assert world.api("anonymous").get("/api/v1/recipients").status_code == 401


@pytest.fixture
def items(world: World) -> dict[str, ServiceItem]:
    return {
        "meals": do_create_service_item(
            None, head_office=world.bank, name="餐饮配送", category="mutual_care", tier="ordinary"
        ),
        "other_bank": do_create_service_item(
            None, head_office=world.other_bank, name="家庭保洁", category="mutual_care", tier="ordinary"
        ),
    }


def test_a_need_is_followed_up_until_met(world: World, items: dict[str, ServiceItem]) -> None:
    grandpa = world.members["recipient"]
    created = world.api("operator").post(
        "/api/v1/needs",
        {
            "recipient_id": grandpa.pk,
            "level": "essential",
            "found_by": "phone_call",
            "item_ids": [items["meals"].pk],
            "notes": "腿脚不便，午饭没人做",
        },
    )
    assert created.status_code == 201, created.content
    need = created.json()
    assert need["status"] == "open" and need["level"] == "essential" and need["item_ids"] == [items["meals"].pk]
    assert need["recipient_phone"] == "138****0000" and need["follow_ups"] == []
    nid = need["id"]
    # Operators open and read needs; following up and closing is the community's work.
    assert world.api("operator").get(f"/api/v1/needs/{nid}").status_code == 200
    refused = world.api("operator").post(f"/api/v1/needs/{nid}/follow-ups", {"note": "已联系"})
    assert refused.status_code == 403
    staff = world.api("staff")
    step = staff.post(f"/api/v1/needs/{nid}/follow-ups", {"note": "上门看过，联系了助餐点", "status": "in_progress"})
    assert step.status_code == 201, step.content
    assert step.json()["status"] == "in_progress"
    note = staff.post(f"/api/v1/needs/{nid}/follow-ups", {"note": "每周一三五送餐"})
    assert note.status_code == 201 and note.json()["status"] == "in_progress"
    met = staff.patch(f"/api/v1/needs/{nid}", {"status": "met", "level": "special"})
    assert met.status_code == 200, met.content
    body = met.json()
    assert body["status"] == "met" and body["met_at"] and body["level"] == "special"
    assert [(f["from_status"], f["to_status"]) for f in body["follow_ups"]] == [
        ("open", "in_progress"),
        ("in_progress", "in_progress"),
        ("in_progress", "met"),
    ]
    # A met need is final.
    writes = NeedFollowUp.objects.count()
    for call in (
        lambda: staff.post(f"/api/v1/needs/{nid}/close", {"reason": "重复"}),
        lambda: staff.post(f"/api/v1/needs/{nid}/follow-ups", {"note": "又来了"}),
        lambda: staff.patch(f"/api/v1/needs/{nid}", {"notes": "改一下"}),
    ):
        resp = call()
        assert resp.status_code == 409 and error_code(resp) == "need_closed"
    assert NeedFollowUp.objects.count() == writes


def test_closing_needs_a_reason_and_happens_once(world: World) -> None:
    need = world.api("staff").post(
        "/api/v1/needs", {"recipient_id": world.members["recipient"].pk, "found_by": "home_visit"}
    )
    nid = need.json()["id"]
    assert world.api("staff").post(f"/api/v1/needs/{nid}/close", {"reason": ""}).status_code == 422
    assert world.api("staff").post(f"/api/v1/needs/{nid}/close", {}).status_code == 422
    closed = world.api("staff").post(f"/api/v1/needs/{nid}/close", {"reason": "老人已搬去女儿家"})
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed" and closed.json()["close_reason"] == "老人已搬去女儿家"
    again = world.api("staff").post(f"/api/v1/needs/{nid}/close", {"reason": "再关一次"})
    assert again.status_code == 409
    assert AuditEntry.objects.filter(action="need.close").count() == 1
    # Closing is not a PATCH status.
    other = world.api("staff").post(
        "/api/v1/needs", {"recipient_id": world.members["recipient"].pk, "found_by": "survey"}
    )
    assert world.api("staff").patch(f"/api/v1/needs/{other.json()['id']}", {"status": "closed"}).status_code == 422


def test_needs_without_orders_and_linking_an_order(world: World, items: dict[str, ServiceItem]) -> None:
    grandpa = world.members["recipient"]
    first = world.api("staff").post("/api/v1/needs", {"recipient_id": grandpa.pk, "found_by": "survey"}).json()
    second = world.api("staff").post("/api/v1/needs", {"recipient_id": grandpa.pk, "found_by": "survey"}).json()
    order = do_create_order(
        world.users["operator"],
        recipient=grandpa,
        service_item=items["meals"],
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="subsidy",
        channel="hotline",
    )
    linked = world.api("operator").post(f"/api/v1/needs/{first['id']}/orders", {"order_id": order.pk})
    assert linked.status_code == 200, linked.content
    assert linked.json()["order_ids"] == [order.pk] and linked.json()["status"] == "in_progress"
    again = world.api("operator").post(f"/api/v1/needs/{first['id']}/orders", {"order_id": order.pk})
    assert again.status_code == 200 and len(again.json()["follow_ups"]) == 1
    waiting = world.api("staff").get("/api/v1/needs", {"without_orders": "true"}).json()["items"]
    assert [n["id"] for n in waiting] == [second["id"]]
    assert [n["id"] for n in world.api("staff").get("/api/v1/needs", {"open": "true"}).json()["items"]] == [
        second["id"],
        first["id"],
    ]
    # A cancelled order meets nothing: its need waits for an order again, and it cannot be linked anew.
    do_cancel(world.users["staff"], order, reason="老人住院了", by_staff=True)
    waiting = world.api("staff").get("/api/v1/needs", {"without_orders": "true"}).json()["items"]
    assert [n["id"] for n in waiting] == [second["id"], first["id"]]
    cancelled = world.api("staff").post(f"/api/v1/needs/{second['id']}/orders", {"order_id": order.pk})
    assert cancelled.status_code == 409 and error_code(cancelled) == "order_cancelled"
    # An order of someone else cannot meet this need.
    volunteer_order = Order.objects.create(
        bank=world.bank,
        org=world.community,
        recipient=world.members["volunteer"],
        service_item=items["meals"],
        payer="subsidy",
        channel="staff",
        scheduled_start=timezone.now(),
        planned_minutes=30,
        multiplier=1,
        code="123456",
    )
    wrong = world.api("staff").post(f"/api/v1/needs/{second['id']}/orders", {"order_id": volunteer_order.pk})
    assert wrong.status_code == 422


def test_needs_refuse_bad_input_and_write_nothing(world: World, items: dict[str, ServiceItem]) -> None:
    grandpa = world.members["recipient"]
    api = world.api("staff")
    base = {"recipient_id": grandpa.pk, "found_by": "home_visit"}
    cases = [
        ({**base, "found_by": "telepathy"}, 422),
        ({**base, "level": "urgent"}, 422),
        ({**base, "item_ids": [items["other_bank"].pk]}, 422),
        ({**base, "item_ids": [10**17]}, 422),
        ({**base, "item_ids": list(range(1, 30))}, 422),
        ({**base, "notes": "半夜\x00"}, 422),
        ({**base, "notes": "长" * 501}, 422),
        ({**base, "recipient_id": 2**63}, 422),
        ({**base, "recipient_id": 10**12}, 404),
        ({**base, "recipient_id": world.members["volunteer"].pk}, 422),  # not a recipient
        ({**base, "recipient_id": world.members["stranger"].pk}, 403),
        ({"found_by": "survey"}, 422),
    ]
    for body, status in cases:
        resp = api.post("/api/v1/needs", body)
        assert resp.status_code == status, (body, resp.content)
        assert "error" in resp.json()
    assert api.post("/api/v1/needs", raw="[1]").status_code == 400
    assert Need.objects.count() == 0
    assert api.get("/api/v1/needs/99999999999").status_code == 404
    assert api.get("/api/v1/needs/abc").status_code == 422


def test_needs_of_other_communities_are_out_of_reach(world: World, register: dict[str, Member]) -> None:
    mine = (
        world.api("staff")
        .post("/api/v1/needs", {"recipient_id": register["alone"].pk, "found_by": "home_visit"})
        .json()
    )
    theirs = world.api("staff_next").post(
        "/api/v1/needs", {"recipient_id": register["disabled_next"].pk, "found_by": "home_visit"}
    )
    assert theirs.status_code == 201
    refused = world.api("staff").post(
        "/api/v1/needs", {"recipient_id": register["disabled_next"].pk, "found_by": "home_visit"}
    )
    assert refused.status_code == 403
    for persona in ("staff_next", "other_bank_staff", "other_bank_admin"):
        api = world.api(persona)
        assert api.get(f"/api/v1/needs/{mine['id']}").status_code == 403, persona
        assert api.patch(f"/api/v1/needs/{mine['id']}", {"notes": "x"}).status_code == 403, persona
        assert api.post(f"/api/v1/needs/{mine['id']}/close", {"reason": "x"}).status_code == 403, persona
    for persona in ("recipient", "relative", "volunteer", "assessor"):
        assert world.api(persona).get("/api/v1/needs").status_code == 403, persona
        assert world.api(persona).get(f"/api/v1/needs/{mine['id']}").status_code == 403, persona
    assert [n["id"] for n in world.api("staff_next").get("/api/v1/needs").json()["items"]] == [theirs.json()["id"]]
    assert Need.objects.get(pk=mine["id"]).notes == ""
    # The register shows the open need against the recipient.
    alone = next(r for r in world.api("staff").get("/api/v1/recipients").json()["items"] if r["name"] == "独居张")
    assert alone["open_needs"] == 1


def test_lists_cost_the_same_for_few_rows_or_many(world: World, items: dict[str, ServiceItem]) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            resp = world.api("staff").get(url)
        assert resp.status_code == 200
        return len(ctx.captured_queries)

    def add(n: int) -> None:
        for i in range(n):
            member = recipient(world.community, f"吴{i}", ["empty_nest"], 70 + i)
            world.api("staff").post(
                "/api/v1/needs", {"recipient_id": member.pk, "found_by": "survey", "item_ids": [items["meals"].pk]}
            )

    add(2)
    queries("/api/v1/needs")  # warm up: the first request of a login costs a few lookups of its own
    few = (queries("/api/v1/needs"), queries("/api/v1/recipients"))
    add(10)
    assert (queries("/api/v1/needs"), queries("/api/v1/recipients")) == few
