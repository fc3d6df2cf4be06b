"""The Idempotency-Key header: any API write can be retried after a lost answer and happens once."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import World, error_code
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger.models import Transaction
from timebank.ops.models import IdempotentRequest
from timebank.orders.models import Order


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None,
        head_office=world.bank,
        name="家庭保洁",
        category="mutual_care",
        tier="ordinary",
        requires_certificate=None,
    )


def order_body(world: World, item: ServiceItem, notes: str = "") -> dict[str, Any]:
    return {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        # Soon enough to check in at once (the rules' checkin_early_minutes is 60).
        "scheduled_start": (timezone.now() + dt.timedelta(minutes=30)).isoformat(),
        "planned_minutes": 60,
        "payer": "subsidy",
        "channel": "staff",
        "notes": notes,
    }


def key(value: str) -> dict[str, str]:
    return {"HTTP_IDEMPOTENCY_KEY": value}


def test_a_retried_order_is_created_once_and_answered_the_same(world: World, item: ServiceItem) -> None:
    staff = world.api("staff")
    body = order_body(world, item)
    first = staff.post("/api/v1/orders", body, **key("o-1"))
    assert first.status_code == 201, first.content
    again = staff.post("/api/v1/orders", body, **key("o-1"))
    assert again.status_code == 201 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1
    # Without the header a second POST is a second order, as before.
    assert staff.post("/api/v1/orders", body).status_code == 201
    assert Order.objects.count() == 2


def test_a_reused_key_with_another_body_is_a_conflict(world: World, item: ServiceItem) -> None:
    staff = world.api("staff")
    assert staff.post("/api/v1/orders", order_body(world, item, "a"), **key("k")).status_code == 201
    other = staff.post("/api/v1/orders", order_body(world, item, "b"), **key("k"))
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_keys_are_per_caller(world: World, item: ServiceItem) -> None:
    body = order_body(world, item)
    assert world.api("staff").post("/api/v1/orders", body, **key("same")).status_code == 201
    assert world.api("operator").post("/api/v1/orders", body, **key("same")).status_code == 201
    assert Order.objects.count() == 2


def test_a_refused_request_does_not_consume_its_key(world: World, item: ServiceItem) -> None:
    staff = world.api("staff")
    oid = staff.post("/api/v1/orders", order_body(world, item)).json()["id"]
    early = staff.post(f"/api/v1/orders/{oid}/confirm", {}, **key("c-1"))
    assert early.status_code == 409
    assert not IdempotentRequest.objects.filter(key="c-1").exists()
    volunteer = world.members["volunteer"].pk
    assert staff.post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": volunteer}, **key("d-1")).status_code == 200
    # A retried transition answers as the first time instead of 409 "already dispatched".
    retried = staff.post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": volunteer}, **key("d-1"))
    assert retried.status_code == 200 and retried.json()["state"] == "dispatched"
    for action in ("accept", "check-in", "check-out"):
        if action == "check-out":  # served half an hour: set back rather than the test waiting
            Order.objects.filter(pk=oid).update(check_in_at=timezone.now() - dt.timedelta(minutes=30))
        assert world.api("volunteer").post(f"/api/v1/orders/{oid}/{action}", **key(f"{action}-1")).status_code == 200
    txs = Transaction.objects.count()
    done = staff.post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 30}, **key("c-1"))
    assert done.status_code == 200 and done.json()["state"] == "confirmed"
    replay = staff.post(f"/api/v1/orders/{oid}/confirm", {"actual_minutes": 30}, **key("c-1"))
    assert replay.json() == done.json()
    assert Transaction.objects.count() == txs + 1


def test_a_bad_key_is_refused(world: World, item: ServiceItem) -> None:
    resp = world.api("staff").post("/api/v1/orders", order_body(world, item), **key("x" * 65))
    assert resp.status_code == 422 and error_code(resp) == "invalid_idempotency_key"
    assert Order.objects.count() == 0
