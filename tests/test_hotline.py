"""The 12349 desk: finding a caller, the call log, return visits (满意度回访) and welfare checks (定期巡访)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import World, error_code, new_id_number
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.hotline.models import CallLog, ReturnVisit, WelfareCheck
from timebank.ledger.actions import do_adjustment
from timebank.members.actions import MemberInput, do_register_member
from timebank.members.models import Member
from timebank.needs.models import Need
from timebank.orders import actions as orders
from timebank.orders.models import Order
from timebank.orgs.models import Org, Rules


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="餐饮配送", category="mutual_care", tier="ordinary"
    )


def served(world: World, item: ServiceItem, recipient: Member | None = None, *, days_ago: float = 0) -> Order:
    """An order through the whole loop to `confirmed`, confirmed `days_ago` days ago."""
    staff = world.users["staff"]
    order = orders.do_create_order(
        world.users["operator"],
        recipient=recipient or world.members["recipient"],
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(hours=1),
        planned_minutes=60,
        payer="subsidy",
        channel="hotline",
    )
    volunteer = world.members["volunteer"]
    orders.do_dispatch(staff, order, volunteer)
    orders.do_accept(volunteer.user, order)
    orders.do_check_in(volunteer.user, order)
    # Served the full hour: the check-in is set back rather than the test waiting (credits follow the clock).
    Order.objects.filter(pk=order.pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=60))
    orders.do_check_out(volunteer.user, order)
    orders.do_confirm(staff, order, actual_minutes=60, by_staff=True)
    Order.objects.filter(pk=order.pk).update(confirmed_at=timezone.now() - dt.timedelta(days=days_ago))
    return Order.objects.get(pk=order.pk)


def recipient(org: Org, name: str, categories: list[str], phone: str = "13700001234") -> Member:
    return do_register_member(
        None,
        home_org=org,
        data=MemberInput(
            name=name,
            id_number=new_id_number(dt.date(1945, 1, 1)),
            roles=["recipient"],
            recipient_categories=categories,
            phone=phone,
        ),
        approved=True,
    )


# ---- finding a caller ---------------------------------------------------------------------------------


def test_lookup_finds_the_caller_with_what_the_desk_needs(world: World, item: ServiceItem) -> None:
    grandpa = world.members["recipient"]
    do_adjustment(None, member=grandpa, minutes=90, bucket="reserve", reason="开户")
    need = world.api("operator").post("/api/v1/needs", {"recipient_id": grandpa.pk, "found_by": "phone_call"})
    closed = world.api("staff").post("/api/v1/needs", {"recipient_id": grandpa.pk, "found_by": "survey"}).json()
    world.api("staff").post(f"/api/v1/needs/{closed['id']}/close", {"reason": "不需要了"})
    made = [served(world, item) for _ in range(6)]
    resp = world.api("operator").get("/api/v1/hotline/lookup", {"q": "李大爷"})
    assert resp.status_code == 200, resp.content
    [found] = resp.json()["items"]
    assert found["id"] == grandpa.pk and found["phone"] == "138****0000"
    assert [n["id"] for n in found["open_needs"]] == [need.json()["id"]]
    assert [o["id"] for o in found["recent_orders"]] == [o.pk for o in reversed(made)][:5]
    assert found["recent_orders"][0]["state"] == "confirmed"
    assert found["balance"] == {"total_minutes": 90, "buckets": {"earned": 0, "goods": 0, "reserve": 90}}
    assert found["priority"]["rank"] == 2  # 85 years old


def test_lookup_by_phone_and_id_number_stays_in_the_subtree(world: World) -> None:
    caller = recipient(world.community, "孙奶奶", ["living_alone"], phone="13511112222")
    twin = recipient(world.other_community, "孙奶奶", ["living_alone"], phone="13511112222")
    operator = world.api("operator")
    assert [m["id"] for m in operator.get("/api/v1/hotline/lookup", {"q": "135 1111 2222"}).json()["items"]] == [
        caller.pk
    ]
    assert [m["id"] for m in operator.get("/api/v1/hotline/lookup", {"q": caller.id_number()}).json()["items"]] == [
        caller.pk
    ]
    assert [
        m["id"] for m in world.api("other_bank_staff").get("/api/v1/hotline/lookup", {"q": "孙"}).json()["items"]
    ] == [twin.pk]
    assert world.api("staff_next").get("/api/v1/hotline/lookup", {"q": "孙奶奶"}).json()["items"] == []
    for persona in ("recipient", "volunteer", "assessor"):
        assert world.api(persona).get("/api/v1/hotline/lookup", {"q": "孙"}).status_code == 403, persona
    for params in ({}, {"q": ""}, {"q": " "}, {"q": "x" * 51}):
        assert operator.get("/api/v1/hotline/lookup", params).status_code == 422, params
    assert operator.get("/api/v1/hotline/lookup", {"q": "\x00"}).status_code in (400, 422)


# ---- the call log -------------------------------------------------------------------------------------


def test_every_call_is_logged_and_links_to_the_order_it_produced(world: World, item: ServiceItem) -> None:
    grandpa = world.members["recipient"]
    operator = world.api("operator")
    need = operator.post("/api/v1/needs", {"recipient_id": grandpa.pk, "found_by": "phone_call"}).json()
    started = timezone.now() - dt.timedelta(minutes=6)
    call = operator.post(
        "/api/v1/hotline/calls",
        {"kind": "order", "summary": "想订明天的午饭", "member_id": grandpa.pk, "started_at": started.isoformat()},
    )
    assert call.status_code == 201, call.content
    assert call.json()["phone"] == "138****0000" and call.json()["org_id"] == world.community.pk
    order = operator.post(
        "/api/v1/orders",
        {
            "recipient_id": grandpa.pk,
            "service_item_id": item.pk,
            "scheduled_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
            "planned_minutes": 60,
            "payer": "subsidy",
            "channel": "hotline",
        },
    ).json()
    dispatched = operator.post(
        f"/api/v1/orders/{order['id']}/dispatch", {"volunteer_id": world.members["volunteer"].pk}
    )
    assert dispatched.status_code == 200
    linked = operator.patch(
        f"/api/v1/hotline/calls/{call.json()['id']}",
        {"order_id": order["id"], "need_id": need["id"], "ended_at": timezone.now().isoformat()},
    )
    assert linked.status_code == 200, linked.content
    assert linked.json()["order_id"] == order["id"] and linked.json()["ended_at"]
    # The call that produced an order for a need puts the need in progress.
    assert Need.objects.get(pk=need["id"]).status == "in_progress"
    assert list(Need.objects.get(pk=need["id"]).orders.values_list("pk", flat=True)) == [order["id"]]
    # An unknown caller is logged too, against the operator's org.
    unknown = operator.post(
        "/api/v1/hotline/calls", {"kind": "legal_advice", "summary": "问遗产继承", "phone": "0632-1234567"}
    )
    assert unknown.status_code == 201 and unknown.json()["member_id"] is None
    assert unknown.json()["org_id"] == world.bank.pk
    listed = world.api("staff").get("/api/v1/hotline/calls").json()["items"]
    assert [c["id"] for c in listed] == [call.json()["id"]]  # the unknown caller's call is the head office's
    assert len(operator.get("/api/v1/hotline/calls", {"mine": "true"}).json()["items"]) == 2
    assert operator.get("/api/v1/hotline/calls", {"kind": "order"}).json()["items"][0]["order_id"] == order["id"]
    # A second, different order cannot replace the linked one.
    other = served(world, item)
    again = operator.patch(f"/api/v1/hotline/calls/{call.json()['id']}", {"order_id": other.pk})
    assert again.status_code == 409


def test_calls_refuse_bad_input_and_other_orgs(world: World, item: ServiceItem) -> None:
    operator = world.api("operator")
    grandpa = world.members["recipient"]
    someone_elses = served(world, item, world.members["neighbour"])
    now = timezone.now()
    base = {"kind": "other", "summary": "问候", "member_id": grandpa.pk}
    cases: list[tuple[dict[str, Any], int]] = [
        ({**base, "kind": "gossip"}, 422),
        ({**base, "summary": ""}, 422),
        ({**base, "summary": "x\x00"}, 422),
        ({**base, "started_at": "2025-01-01T08:00:00"}, 422),  # naive
        ({**base, "started_at": (now + dt.timedelta(hours=1)).isoformat()}, 422),
        ({**base, "started_at": (now - dt.timedelta(days=400)).isoformat()}, 422),
        (
            {
                **base,
                "started_at": (now - dt.timedelta(minutes=5)).isoformat(),
                "ended_at": (now - dt.timedelta(minutes=10)).isoformat(),
            },
            422,
        ),
        ({**base, "phone": "not a phone"}, 422),
        ({**base, "order_id": someone_elses.pk}, 422),
        ({**base, "member_id": world.members["stranger"].pk}, 403),
        ({**base, "member_id": 2**63}, 422),
        ({**base, "member_id": 10**12}, 404),
        ({"kind": "other", "summary": "x", "org_id": world.other_community.pk}, 403),
    ]
    for body, status in cases:
        resp = operator.post("/api/v1/hotline/calls", body)
        assert resp.status_code == status, (body, resp.content)
    assert world.api("volunteer").post("/api/v1/hotline/calls", base).status_code == 403
    assert world.api("other_bank_staff").post("/api/v1/hotline/calls", base).status_code == 403
    assert CallLog.objects.count() == 0
    mine = operator.post("/api/v1/hotline/calls", base).json()
    assert world.api("other_bank_staff").get(f"/api/v1/hotline/calls/{mine['id']}").status_code == 403
    assert world.api("staff_next").patch(f"/api/v1/hotline/calls/{mine['id']}", {"summary": "改"}).status_code == 403
    assert operator.patch(f"/api/v1/hotline/calls/{mine['id']}", {"summary": None}).status_code == 422
    assert CallLog.objects.get().summary == "问候"


# ---- 满意度回访 ---------------------------------------------------------------------------------------


def due_orders(world: World, persona: str = "operator") -> list[int]:
    resp = world.api(persona).get("/api/v1/hotline/return-visits/due")
    assert resp.status_code == 200, resp.content
    return [o["order_id"] for o in resp.json()["items"]]


def test_the_return_visit_queue(world: World, item: ServiceItem) -> None:
    Rules.objects.filter(head_office=world.bank).update(return_visit_after_days=3)
    old = served(world, item, days_ago=4)
    older = served(world, item, days_ago=10)
    fresh = served(world, item, days_ago=1)
    neighbours = served(world, item, world.members["neighbour"], days_ago=5)
    reviewed = served(world, item, days_ago=5)
    orders.do_review(world.users["recipient"], reviewed, rating=4)
    assert due_orders(world) == [old.pk, older.pk, neighbours.pk, reviewed.pk]
    assert due_orders(world, "staff") == [old.pk, older.pk, reviewed.pk]
    assert due_orders(world, "staff_next") == [neighbours.pk]
    assert world.api("other_bank_staff").get("/api/v1/hotline/return-visits/due").json()["items"] == []
    assert world.api("recipient").get("/api/v1/hotline/return-visits/due").status_code == 403
    first = world.api("operator").get("/api/v1/hotline/return-visits/due").json()["items"][0]
    assert first["recipient_phone"] == "138****0000" and first["attempts"] == 0  # a list: masked, for every role

    api = world.api("operator")
    # Not reached: stays in the queue and may be tried again.
    for _ in range(2):
        resp = api.post("/api/v1/hotline/return-visits", {"order_id": old.pk, "outcome": "not_reached"})
        assert resp.status_code == 201, resp.content
    waiting = next(o for o in api.get("/api/v1/hotline/return-visits/due").json()["items"] if o["order_id"] == old.pk)
    assert waiting["attempts"] == 2 and waiting["last_attempt_at"]
    reached = api.post(
        "/api/v1/hotline/return-visits", {"order_id": old.pk, "outcome": "reached", "satisfaction": 5, "note": "很满意"}
    )
    assert reached.status_code == 201 and reached.json()["call_id"]
    assert CallLog.objects.get(pk=reached.json()["call_id"]).kind == "return_visit"
    refused = api.post("/api/v1/hotline/return-visits", {"order_id": older.pk, "outcome": "refused"})
    assert refused.status_code == 201
    assert due_orders(world) == [neighbours.pk, reviewed.pk]
    # One return visit per order.
    for body in (
        {"order_id": old.pk, "outcome": "reached", "satisfaction": 3},
        {"order_id": old.pk, "outcome": "not_reached"},
        {"order_id": older.pk, "outcome": "refused"},
    ):
        resp = api.post("/api/v1/hotline/return-visits", body)
        assert resp.status_code == 409 and error_code(resp) == "already_visited", body
    assert ReturnVisit.objects.count() == 4
    history = api.get("/api/v1/hotline/return-visits", {"order_id": old.pk}).json()["items"]
    assert [v["outcome"] for v in history] == ["reached", "not_reached", "not_reached"]
    # The fresh order is not due yet, but an early visit is allowed.
    assert api.post("/api/v1/hotline/return-visits", {"order_id": fresh.pk, "outcome": "refused"}).status_code == 201


def test_return_visits_refuse_bad_input_and_other_orgs(world: World, item: ServiceItem) -> None:
    done = served(world, item, days_ago=5)
    open_order = orders.do_create_order(
        world.users["staff"],
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=30,
        payer="subsidy",
        channel="staff",
    )
    api = world.api("operator")
    cases: list[tuple[dict[str, Any], int]] = [
        ({"order_id": done.pk, "outcome": "reached"}, 422),  # satisfaction required
        ({"order_id": done.pk, "outcome": "reached", "satisfaction": 6}, 422),
        ({"order_id": done.pk, "outcome": "reached", "satisfaction": "5"}, 422),
        ({"order_id": done.pk, "outcome": "not_reached", "satisfaction": 3}, 422),
        ({"order_id": done.pk, "outcome": "maybe"}, 422),
        ({"order_id": done.pk, "outcome": "refused", "note": "x" * 501}, 422),
        ({"order_id": 10**12, "outcome": "refused"}, 404),
        ({"order_id": open_order.pk, "outcome": "refused"}, 409),
    ]
    for body, status in cases:
        resp = api.post("/api/v1/hotline/return-visits", body)
        assert resp.status_code == status, (body, resp.content)
    for persona in ("other_bank_staff", "other_bank_admin", "staff_next", "recipient", "volunteer"):
        resp = world.api(persona).post("/api/v1/hotline/return-visits", {"order_id": done.pk, "outcome": "refused"})
        assert resp.status_code == 403, persona
    assert ReturnVisit.objects.count() == 0 and CallLog.objects.count() == 0


# ---- 定期巡访 -----------------------------------------------------------------------------------------


def due_members(world: World, persona: str = "operator", **params: Any) -> list[int]:
    resp = world.api(persona).get("/api/v1/hotline/welfare-checks/due", params)
    assert resp.status_code == 200, resp.content
    return [m["member_id"] for m in resp.json()["items"]]


def test_welfare_checks_fall_due_by_the_rules(world: World) -> None:
    Rules.objects.filter(head_office=world.bank).update(
        welfare_check_every_days=7, welfare_check_categories=["living_alone", "disabled"]
    )
    never = recipient(world.community, "从未巡访", ["living_alone"])
    recent = recipient(world.community, "刚巡访过", ["living_alone"])
    overdue = recipient(world.community, "很久没去", ["disabled", "extreme_poverty"])
    not_listed = recipient(world.community, "空巢不在名单", ["empty_nest"])
    next_door = recipient(world.community2, "隔壁村", ["disabled"])
    api = world.api("operator")
    for member, days in ((recent, 2), (overdue, 10)):
        made = api.post("/api/v1/hotline/welfare-checks", {"member_id": member.pk, "method": "visit", "found_ok": True})
        assert made.status_code == 201, made.content
        WelfareCheck.objects.filter(pk=made.json()["id"]).update(checked_at=timezone.now() - dt.timedelta(days=days))
    # Never checked first (the seed's five groups before the rest), then the longest waiting.
    assert due_members(world) == [next_door.pk, never.pk, overdue.pk]
    assert due_members(world, "staff") == [never.pk, overdue.pk]
    assert due_members(world, "staff", category="disabled") == [overdue.pk]
    assert not_listed.pk not in due_members(world, "head_office_admin")
    item = world.api("staff").get("/api/v1/hotline/welfare-checks/due").json()["items"][1]
    assert item["last_checked_at"] and item["due_since"] and item["every_days"] == 7
    assert item["phone"] == "137****1234"  # a list: masked; in full on GET /members/{id}, audited
    page = api.get("/api/v1/hotline/welfare-checks/due", {"limit": 2}).json()
    rest = api.get("/api/v1/hotline/welfare-checks/due", {"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [m["member_id"] for m in page["items"] + rest["items"]] == [next_door.pk, never.pk, overdue.pk]
    assert rest["next_cursor"] is None
    assert world.api("other_bank_staff").get("/api/v1/hotline/welfare-checks/due").json()["items"] == []
    assert world.api("volunteer").get("/api/v1/hotline/welfare-checks/due").status_code == 403
    # A check by phone that finds health changed opens a need in the same action and logs the call.
    resp = api.post(
        "/api/v1/hotline/welfare-checks",
        {
            "member_id": never.pk,
            "method": "phone",
            "found_ok": False,
            "health_changed": True,
            "note": "摔了一跤，行动不便",
            "need": {"level": "essential", "notes": "需要上门护理"},
        },
    )
    assert resp.status_code == 201, resp.content
    need = Need.objects.get(pk=resp.json()["need_id"])
    assert (need.recipient, need.level, need.found_by, need.notes) == (never, "essential", "phone_call", "需要上门护理")
    call = CallLog.objects.get(pk=resp.json()["call_id"])
    assert (call.kind, call.member, call.need) == ("welfare_check", never, need)
    assert due_members(world) == [next_door.pk, overdue.pk]
    history = api.get("/api/v1/hotline/welfare-checks", {"member_id": never.pk}).json()["items"]
    assert [h["id"] for h in history] == [resp.json()["id"]]


def test_welfare_checks_refuse_bad_input_and_other_orgs(world: World) -> None:
    grandpa = world.members["recipient"]
    api = world.api("staff")
    base = {"member_id": grandpa.pk, "method": "visit", "found_ok": True}
    cases: list[tuple[dict[str, Any], int]] = [
        ({**base, "method": "pigeon"}, 422),
        ({**base, "found_ok": "yes"}, 422),
        ({**base, "checked_at": "2025-01-01T09:00:00"}, 422),
        ({**base, "checked_at": (timezone.now() + dt.timedelta(days=1)).isoformat()}, 422),
        ({**base, "checked_at": (timezone.now() - dt.timedelta(days=31)).isoformat()}, 422),
        ({**base, "note": "\x00"}, 422),
        ({**base, "need": {"level": "extreme"}}, 422),
        ({**base, "need": {"item_ids": [10**15]}}, 422),  # unknown item: the need and the check are refused
        ({**base, "member_id": world.members["volunteer"].pk}, 422),  # not a recipient
        ({**base, "member_id": world.members["stranger"].pk}, 403),
        ({**base, "member_id": world.members["neighbour"].pk}, 403),  # the next community's
        ({**base, "member_id": 10**12}, 404),
    ]
    for body, status in cases:
        resp = api.post("/api/v1/hotline/welfare-checks", body)
        assert resp.status_code == status, (body, resp.content)
    assert world.api("recipient").post("/api/v1/hotline/welfare-checks", base).status_code == 403
    assert WelfareCheck.objects.count() == 0 and Need.objects.count() == 0 and CallLog.objects.count() == 0
    backdated = api.post(
        "/api/v1/hotline/welfare-checks",
        {**base, "checked_at": (timezone.now() - dt.timedelta(days=3)).isoformat()},
    )
    assert backdated.status_code == 201 and backdated.json()["call_id"] is None  # a visit is not a call


def test_lookup_costs_the_same_for_two_callers_or_twenty(world: World, item: ServiceItem) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            resp = world.api("operator").get("/api/v1/hotline/lookup", {"q": "周"})
        assert resp.status_code == 200
        return len(ctx.captured_queries)

    def add(n: int) -> None:
        for i in range(n):
            member = recipient(world.community, f"周{i}", ["living_alone"])
            world.api("staff").post("/api/v1/needs", {"recipient_id": member.pk, "found_by": "survey"})
            served(world, item, member)

    add(2)
    queries()  # warm up: the first request of a login costs a few lookups of its own
    few = queries()
    add(18)
    assert queries() == few
