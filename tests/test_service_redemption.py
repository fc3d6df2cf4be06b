"""Getting value back: stored time pays for care, gifts between relatives, and the donation pool."""

from __future__ import annotations

from tests.conftest import World, error_code
from tests.test_orders import items as items
from tests.test_orders import order_body, run_loop
from timebank.ledger import actions as ledger


def statement(world: World, persona: str, member_id: int) -> list[dict]:
    return world.api(persona).get(f"/api/v1/members/{member_id}/statement").json()["items"]


def test_a_relatives_gift_is_used_for_care_and_shows_on_both_statements(world: World, items: dict) -> None:
    """李小明 gives time to his father 李大爷, who spends it on home cleaning."""
    son, father = world.members["relative"], world.members["recipient"]
    ledger.do_adjustment(None, member=son, minutes=300, bucket="reserve", reason="开户")
    gift = world.api("relative").post(
        "/api/v1/transfers",
        {
            "from_member_id": son.pk,
            "to_member_id": father.pk,
            "minutes": 120,
            "kind": "relative",
            "idempotency_key": "gift-1",
        },
    )
    assert gift.status_code == 201
    run_loop(world, items["cleaning"], 90)
    son_lines = statement(world, "relative", son.pk)
    father_lines = statement(world, "relative", father.pk)
    assert [(e["kind"], e["minutes"]) for e in son_lines][:1] == [("transfer", -120)]
    # The father's statement shows the gift arriving and the care it paid for (newest first).
    assert [(e["kind"], e["minutes"]) for e in father_lines[:2]] == [("service_redemption", -90), ("transfer", 120)]
    assert father_lines[0]["balance_after_minutes"] == 30
    # The son, as a relative, may read his father's statement; a neighbour may not.
    assert world.api("neighbour").get(f"/api/v1/members/{father.pk}/statement").status_code == 403


def test_reserve_min_age_still_allows_gifts_to_relatives(world: World, items: dict) -> None:
    son, father = world.members["relative"], world.members["recipient"]
    world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", {"reserve_min_age": 60})
    ledger.do_adjustment(None, member=son, minutes=300, bucket="reserve", reason="开户")
    # 李小明 (born 1975) cannot spend his reserve on himself ...
    own = world.api("relative").post(
        "/api/v1/orders", {**order_body(world, items["cleaning"], 60), "recipient_id": son.pk}
    )
    assert own.status_code == 409 and error_code(own) == "below_reserve_age"
    # ... but may give it to his father (born 1940), who may spend it.
    assert (
        world.api("relative")
        .post(
            "/api/v1/transfers",
            {
                "from_member_id": son.pk,
                "to_member_id": father.pk,
                "minutes": 60,
                "kind": "relative",
                "idempotency_key": "g",
            },
        )
        .status_code
        == 201
    )
    assert world.api("relative").post("/api/v1/orders", order_body(world, items["cleaning"], 60)).status_code == 201


def test_pool_paid_orders_serve_people_in_need(world: World, items: dict) -> None:
    donor = world.members["neighbour"]
    ledger.do_adjustment(None, member=donor, minutes=100, bucket="reserve", reason="开户")
    world.api("neighbour").post(
        "/api/v1/transfers", {"from_member_id": donor.pk, "minutes": 100, "kind": "donation", "idempotency_key": "d1"}
    )
    before = world.api("staff").get(f"/api/v1/orgs/{world.bank.pk}/pool").json()["balance_minutes"]
    assert before == 100
    final = run_loop(world, items["cleaning"], 60, payer="pool")
    assert final["payer"] == "pool" and final["credited_minutes"] == 60
    pool = world.api("staff").get(f"/api/v1/orgs/{world.bank.pk}/pool").json()
    assert pool["balance_minutes"] == 40 and pool["items"][0]["minutes"] == -60
    # The recipient's own time is untouched.
    assert (
        world.api("recipient").get(f"/api/v1/members/{world.members['recipient'].pk}/balance").json()["total_minutes"]
        == 0
    )
