"""The service loop through the API: 点单 → 派单 → 接单 → 签到/签退 → 确认 → 评单."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import World, error_code
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger import actions as ledger
from timebank.ledger.models import Transaction
from timebank.ledger.verify import verify
from timebank.members.models import Certificate
from timebank.orders.models import Order


@pytest.fixture
def items(world: World) -> dict[str, ServiceItem]:
    make = lambda name, cat, tier, cert=None: do_create_service_item(  # noqa: E731
        None, head_office=world.bank, name=name, category=cat, tier=tier, requires_certificate=cert
    )
    return {
        "cleaning": make("家庭保洁", "mutual_care", "ordinary"),
        "repair": make("家电维修", "mutual_care", "technical"),
        "counselling": make("心理咨询", "health_care", "professional", "counselling"),
    }


def order_body(world: World, item: ServiceItem, minutes: int, payer: str = "recipient", **extra: Any) -> dict:
    return {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        # Soon enough to check in at once (the rules' checkin_early_minutes is 60).
        "scheduled_start": (timezone.now() + dt.timedelta(minutes=30)).isoformat(),
        "planned_minutes": minutes,
        "payer": payer,
        "channel": "app",
        "notes": "",
        **extra,
    }


def set_back_check_in(oid: int, minutes: float) -> None:
    """The volunteer checked in `minutes` ago: written on the row rather than the test waiting."""
    Order.objects.filter(pk=oid).update(check_in_at=timezone.now() - dt.timedelta(minutes=minutes))


def serve(world: World, oid: int, minutes: float) -> None:
    """Accept, check in, serve `minutes` (set back), check out."""
    for action in ("accept", "check-in", "check-out"):
        if action == "check-out":
            set_back_check_in(oid, minutes)
        assert world.api("volunteer").post(f"/api/v1/orders/{oid}/{action}").status_code == 200, action


def run_loop(world: World, item: ServiceItem, minutes: int, payer: str = "recipient") -> dict:
    """One order from request to review; the volunteer serves exactly `minutes` (staff confirm that amount)."""
    created = world.api("relative").post("/api/v1/orders", order_body(world, item, minutes, payer))
    if payer != "recipient":
        created = world.api("staff").post("/api/v1/orders", order_body(world, item, minutes, payer))
    assert created.status_code == 201, created.content
    oid = created.json()["id"]
    volunteer = world.members["volunteer"]
    steps = [
        ("staff", "dispatch", {"volunteer_id": volunteer.pk}),
        ("volunteer", "accept", None),
        ("volunteer", "check-in", {"latitude": 34.56, "longitude": 117.73}),
        ("volunteer", "check-out", None),
        ("staff", "confirm", {"actual_minutes": minutes}),
        ("relative", "review", {"rating": 5, "comment": "很好"}),
    ]
    for persona, action, body in steps:
        resp = world.api(persona).post(f"/api/v1/orders/{oid}/{action}", body)
        assert resp.status_code == 200, (action, resp.content)
        if action == "check-in":
            set_back_check_in(oid, minutes)
    final = world.api("recipient").get(f"/api/v1/orders/{oid}").json()
    assert final["state"] == "reviewed"
    return final


def test_the_worked_example_of_the_second_seed(world: World, items: dict[str, ServiceItem]) -> None:
    """120 min cleaning ×1 + 60 min repair ×2 + 60 min counselling ×3 = 420 minutes, paid by the recipient."""
    Certificate.objects.create(member=world.members["volunteer"], kind="counselling", issuer="市心理协会")
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    volunteer, recipient = world.members["volunteer"], world.members["recipient"]
    v_before = world.api("volunteer").get(f"/api/v1/members/{volunteer.pk}/balance").json()["total_minutes"]
    r_before = world.api("recipient").get(f"/api/v1/members/{recipient.pk}/balance").json()["total_minutes"]
    credited = [
        run_loop(world, items[k], m)["credited_minutes"]
        for k, m in (("cleaning", 120), ("repair", 60), ("counselling", 60))
    ]
    assert credited == [120, 120, 180]
    v_after = world.api("volunteer").get(f"/api/v1/members/{volunteer.pk}/balance").json()
    r_after = world.api("recipient").get(f"/api/v1/members/{recipient.pk}/balance").json()["total_minutes"]
    assert v_after["total_minutes"] - v_before == 420
    assert v_after["buckets"]["earned"] == 420
    assert r_before - r_after == 420
    assert verify().ok


def test_confirm_by_code_defaults_to_the_plan_within_the_clock_and_credits_once(world: World, items: dict) -> None:
    resp = world.api("staff").post("/api/v1/orders", order_body(world, items["repair"], 60, payer="subsidy"))
    oid = resp.json()["id"]
    assert resp.json()["code"] and len(resp.json()["code"]) == 6
    world.api("operator").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    # The volunteer never sees the code.
    assert world.api("volunteer").get(f"/api/v1/orders/{oid}").json()["code"] is None
    for action in ("accept", "check-in", "check-out"):
        assert world.api("volunteer").post(f"/api/v1/orders/{oid}/{action}").status_code == 200
    code = world.api("recipient").get(f"/api/v1/orders/{oid}").json()["code"]
    wrong = world.api("volunteer").post(
        f"/api/v1/orders/{oid}/confirm", {"code": "000000" if code != "000000" else "111111"}
    )
    assert wrong.status_code == 422 and error_code(wrong) == "wrong_code"
    ok = world.api("volunteer").post(f"/api/v1/orders/{oid}/confirm", {"code": code})
    assert ok.status_code == 200, ok.content
    # Checked time is a minute or so here: the plan (60) is capped at that plus the 10-minute checkout grace;
    # ×2 for a technical service.
    assert ok.json()["actual_minutes"] == 11 and ok.json()["credited_minutes"] == 22
    txs = Transaction.objects.count()
    again = world.api("relative").post(f"/api/v1/orders/{oid}/confirm")
    assert again.status_code == 409 and error_code(again) == "invalid_transition"
    assert Transaction.objects.count() == txs


def test_parties_cannot_confirm_more_than_planned_plus_grace(world: World, items: dict) -> None:
    oid = (
        world.api("staff")
        .post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
        .json()["id"]
    )
    world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    serve(world, oid, 120)
    resp = world.api("recipient").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 500})
    assert resp.status_code == 409 and error_code(resp) == "exceeds_measured_time"
    assert resp.json()["error"]["fields"]["max_minutes"] == 90
    resp = world.api("recipient").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 90})
    assert resp.status_code == 200 and resp.json()["actual_minutes"] == 90


def test_an_unpaid_confirmation_moves_nothing(world: World, items: dict) -> None:
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=60, bucket="reserve", reason="开户")
    oid = world.api("recipient").post("/api/v1/orders", order_body(world, items["cleaning"], 60)).json()["id"]
    world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    serve(world, oid, 60)
    # Meanwhile the recipient gave their time away.
    ledger.do_transfer(
        None, from_member=world.members["recipient"], to_member=world.members["relative"], minutes=30, kind="relative"
    )
    before = Transaction.objects.count()
    resp = world.api("relative").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 60})
    assert resp.status_code == 409 and error_code(resp) == "insufficient_balance"
    assert Transaction.objects.count() == before
    assert Order.objects.get(pk=oid).state == "completed"


def test_volunteers_see_contact_details_only_while_the_order_is_theirs(world: World, items: dict) -> None:
    oid = (
        world.api("staff")
        .post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
        .json()["id"]
    )
    pool = world.api("volunteer").get("/api/v1/orders", {"pool": "true"}).json()["items"]
    listed = next(o for o in pool if o["id"] == oid)
    assert listed["recipient"]["address"] is None and "*" in listed["recipient"]["phone"]
    world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    mine = world.api("volunteer").get(f"/api/v1/orders/{oid}").json()
    assert mine["recipient"]["address"] and "*" not in mine["recipient"]["phone"]
    # Once cancelled, the volunteer no longer sees them.
    world.api("staff").post(f"/api/v1/orders/{oid}/cancel", {"reason": "老人住院"})
    after = world.api("volunteer").get(f"/api/v1/orders/{oid}").json()
    assert after["recipient"]["address"] is None


def test_a_volunteer_takes_an_order_from_the_pool_of_their_area(world: World, items: dict) -> None:
    oid = (
        world.api("staff")
        .post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
        .json()["id"]
    )
    # 赵阿姨 lives under another branch: not her area.
    assert world.api("neighbour").post(f"/api/v1/orders/{oid}/take").status_code == 403
    taken = world.api("volunteer").post(f"/api/v1/orders/{oid}/take")
    assert taken.status_code == 200 and taken.json()["state"] == "accepted"
    assert world.api("volunteer").post(f"/api/v1/orders/{oid}/take").status_code == 403


def test_dispute_then_staff_resolve_with_a_changed_amount(world: World, items: dict) -> None:
    oid = (
        world.api("staff")
        .post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
        .json()["id"]
    )
    world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    serve(world, oid, 30)
    assert (
        world.api("recipient").post(f"/api/v1/orders/{oid}/dispute", {"reason": "只干了半小时"}).json()["state"]
        == "disputed"
    )
    assert world.api("recipient").post(f"/api/v1/orders/{oid}/confirm").status_code == 409
    resolved = world.api("staff").post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 30})
    assert resolved.status_code == 200 and resolved.json()["credited_minutes"] == 30
    events = [e["action"] for e in world.api("staff").get(f"/api/v1/orders/{oid}/events").json()]
    assert events == ["create", "dispatch", "accept", "check-in", "check-out", "dispute", "confirm"]


def test_decline_and_no_show_return_the_order_to_dispatch(world: World, items: dict) -> None:
    oid = (
        world.api("staff")
        .post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
        .json()["id"]
    )
    vol = world.members["volunteer"].pk
    world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": vol})
    declined = world.api("volunteer").post(f"/api/v1/orders/{oid}/decline", {"reason": "那天有事"})
    assert declined.json()["state"] == "requested" and declined.json()["volunteer_id"] is None
    world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": vol})
    world.api("volunteer").post(f"/api/v1/orders/{oid}/accept")
    gone = world.api("recipient").post(f"/api/v1/orders/{oid}/no-show", {"reason": "没来"})
    assert gone.json()["state"] == "requested"
    events = world.api("staff").get(f"/api/v1/orders/{oid}/events").json()
    assert [e["volunteer_id"] for e in events if e["action"] in ("decline", "no-show")] == [vol, vol]


TRANSITIONS = {
    # action: states in which it is allowed (for the right persona)
    "accept": {"dispatched"},
    "check-in": {"accepted"},
    "check-out": {"in_service"},
    "review": {"confirmed"},
    "dispute": {"completed"},
}


def advance(world: World, oid: int, to: str) -> None:
    path = ["requested", "dispatched", "accepted", "in_service", "completed", "confirmed", "reviewed"]
    moves = {
        "dispatched": ("staff", "dispatch", {"volunteer_id": world.members["volunteer"].pk}),
        "accepted": ("volunteer", "accept", None),
        "in_service": ("volunteer", "check-in", None),
        "completed": ("volunteer", "check-out", None),
        "confirmed": ("staff", "confirm", None),
        "reviewed": ("recipient", "review", {"rating": 4}),
    }
    for state in path[1 : path.index(to) + 1]:
        persona, action, body = moves[state]
        assert world.api(persona).post(f"/api/v1/orders/{oid}/{action}", body).status_code == 200


@pytest.mark.parametrize(
    "state", ["requested", "dispatched", "accepted", "in_service", "completed", "confirmed", "reviewed"]
)
def test_every_transition_is_refused_in_the_wrong_state(world: World, items: dict, state: str) -> None:
    oid = (
        world.api("staff")
        .post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
        .json()["id"]
    )
    advance(world, oid, state)
    persona_for = {
        "accept": "volunteer",
        "check-in": "volunteer",
        "check-out": "volunteer",
        "review": "recipient",
        "dispute": "recipient",
    }
    bodies = {"review": {"rating": 3}, "dispute": {"reason": "x"}}
    for action, allowed in TRANSITIONS.items():
        if state in allowed:
            continue
        resp = world.api(persona_for[action]).post(f"/api/v1/orders/{oid}/{action}", bodies.get(action))
        # The volunteer is no party to a requested order (403); otherwise the state refuses it (409).
        assert resp.status_code in (403, 409), (state, action, resp.status_code)
        if state != "requested":
            assert resp.status_code == 409, (state, action)
    assert Order.objects.get(pk=oid).state == state


def test_other_orgs_cannot_touch_an_order(world: World, items: dict) -> None:
    oid = (
        world.api("staff")
        .post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
        .json()["id"]
    )
    for persona in ("staff_next", "other_bank_admin", "other_bank_staff", "stranger", "assessor"):
        assert world.api(persona).get(f"/api/v1/orders/{oid}").status_code == 403, persona
        resp = world.api(persona).post(
            f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk}
        )
        assert resp.status_code == 403, persona
    assert Order.objects.get(pk=oid).state == "requested"


def test_members_cannot_choose_subsidy_or_pool(world: World, items: dict) -> None:
    resp = world.api("recipient").post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy"))
    assert resp.status_code == 403 and error_code(resp) == "payer_not_allowed"


def test_reserve_min_age_refuses_ordering_for_oneself(world: World, items: dict) -> None:
    world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", {"reserve_min_age": 90})
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    resp = world.api("recipient").post("/api/v1/orders", order_body(world, items["cleaning"], 60))
    assert resp.status_code == 409 and error_code(resp) == "below_reserve_age"


def test_service_records_credit_weighted_minutes_once(world: World, items: dict) -> None:
    body = {
        "volunteer_id": world.members["volunteer"].pk,
        "service_item_id": items["repair"].pk,
        "minutes": 45,
        "served_at": timezone.now().isoformat(),
        "memo": "社区义务维修日",
        "idempotency_key": "sr-1",
    }
    first = world.api("staff").post("/api/v1/service-records", body)
    assert first.status_code == 201, first.content
    assert first.json()["minutes"] == 90 and first.json()["kind"] == "service_record"
    again = world.api("staff").post("/api/v1/service-records", body)
    assert again.json() == first.json()
    changed = world.api("staff").post("/api/v1/service-records", {**body, "minutes": 46})
    assert changed.status_code == 409
    assert world.api("staff_next").post("/api/v1/service-records", {**body, "idempotency_key": "x"}).status_code == 403


def test_overdue_orders_are_flagged_and_listed(world: World, items: dict) -> None:
    old = world.api("staff").post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy")).json()
    fresh = world.api("staff").post("/api/v1/orders", order_body(world, items["cleaning"], 60, payer="subsidy")).json()
    Order.objects.filter(pk=old["id"]).update(created_at=timezone.now() - dt.timedelta(hours=25))
    listed = world.api("staff").get("/api/v1/orders", {"overdue": "true"}).json()["items"]
    assert [o["id"] for o in listed] == [old["id"]] and listed[0]["overdue"] is True
    assert world.api("staff").get(f"/api/v1/orders/{fresh['id']}").json()["overdue"] is False
    # A bank that allows 48 hours does not flag it yet.
    world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", {"dispatch_within_hours": 48})
    assert world.api("staff").get("/api/v1/orders", {"overdue": "true"}).json()["items"] == []
