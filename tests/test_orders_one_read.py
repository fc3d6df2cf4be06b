"""Issue 17: an order action through the API reads the order once, locked, checks the caller's roles on that row and
acts on it (orders.api._acting, orders.actions.lock_order). What must not change with it: refusals roll back, a
wrong confirmation code is still counted (with and without an Idempotency-Key), and a forbidden caller writes nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import World, error_code
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.lib.prepared import OneByKey
from timebank.orders import actions
from timebank.orders.models import Order, OrderEvent, OrderState
from timebank.orgs import actions as orgs_actions
from timebank.orgs.actions import user_for_token


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )


def new_order(world: World, item: ServiceItem) -> int:
    resp = world.api("staff").post(
        "/api/v1/orders",
        {
            "recipient_id": world.members["recipient"].pk,
            "service_item_id": item.pk,
            "scheduled_start": (timezone.now() + dt.timedelta(minutes=30)).isoformat(),
            "planned_minutes": 60,
            "payer": "subsidy",
            "channel": "app",
        },
    )
    assert resp.status_code == 201, resp.content
    return int(resp.json()["id"])


def served(world: World, item: ServiceItem) -> int:
    oid = new_order(world, item)
    assert world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    for action in ("accept", "check-in", "check-out"):
        assert world.api("volunteer").post(f"/api/v1/orders/{oid}/{action}").status_code == 200, action
    return oid


def order_reads(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith("SELECT") and 'FROM "orders_order"' in s]


def test_an_action_reads_the_order_once(world: World, item: ServiceItem) -> None:
    oid = new_order(world, item)
    volunteer = world.members["volunteer"].pk
    with CaptureQueriesContext(connection) as ctx:
        resp = world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": volunteer})
    assert resp.status_code == 200, resp.content
    reads = order_reads([q["sql"] for q in ctx.captured_queries])
    assert len(reads) == 1, reads
    if connection.vendor == "postgresql":
        assert 'FOR UPDATE OF "orders_order"' in reads[0]
    assert resp.json()["state"] == "dispatched" and resp.json()["volunteer_id"] == volunteer
    with CaptureQueriesContext(connection) as ctx:
        resp = world.api("volunteer").post(f"/api/v1/orders/{oid}/accept", headers={"Idempotency-Key": "one-read"})
    assert resp.status_code == 200 and resp.json()["state"] == "accepted"
    assert len(order_reads([q["sql"] for q in ctx.captured_queries])) == 1


def test_a_refused_caller_writes_nothing_and_the_answers_stay(world: World, item: ServiceItem) -> None:
    oid = new_order(world, item)
    events = OrderEvent.objects.filter(order_id=oid).count()
    # Not the order's volunteer (none yet): 403; no such order: 404; a state that does not allow it: 409.
    refused = world.api("volunteer").post(f"/api/v1/orders/{oid}/accept")
    assert refused.status_code == 403, refused.content
    assert world.api("staff").post("/api/v1/orders/999999/accept").status_code == 404
    early = world.api("staff").post(f"/api/v1/orders/{oid}/check-out", {"source": "paper_sheet"})
    assert early.status_code == 409 and error_code(early) == "invalid_transition"
    assert OrderEvent.objects.filter(order_id=oid).count() == events
    assert Order.objects.get(pk=oid).state == OrderState.REQUESTED


@pytest.mark.parametrize("keyed", [False, True])
def test_wrong_codes_are_counted_through_the_api(world: World, item: ServiceItem, keyed: bool) -> None:
    oid = served(world, item)
    code = Order.objects.get(pk=oid).code
    wrong = "000000" if code != "000000" else "111111"
    for n in range(1, actions.MAX_CODE_FAILURES + 1):
        headers = {"Idempotency-Key": f"wrong-{n}"} if keyed else {}
        resp = world.api("volunteer").post(f"/api/v1/orders/{oid}/confirm", {"code": wrong}, headers=headers)
        assert resp.status_code == 422 and error_code(resp) == "wrong_code", resp.content
        assert Order.objects.get(pk=oid).code_failures == n
    locked = world.api("volunteer").post(f"/api/v1/orders/{oid}/confirm", {"code": code})
    assert locked.status_code == 409 and error_code(locked) == "code_locked"
    ok = world.api("recipient").post(f"/api/v1/orders/{oid}/confirm")
    assert ok.status_code == 200 and ok.json()["state"] == "confirmed"


@pytest.mark.django_db(transaction=True)  # outside any transaction, as a request without a key runs
def test_lock_order_holds_only_inside_its_block(world: World, item: ServiceItem) -> None:
    oid = new_order(world, item)
    with pytest.raises(RuntimeError):
        actions.lock_order(oid)  # outside any transaction there is no lock to hold
    with transaction.atomic():
        order = actions.lock_order(oid)
        assert order is not None
        assert actions._lock(order) is order  # read once
    # Its block is over: an action given the same object locks and reads it again.
    Order.objects.filter(pk=oid).update(notes="changed since")
    with transaction.atomic():
        again = actions._lock(order)
    assert again is not order and again.notes == "changed since"
    with transaction.atomic():
        assert actions.lock_order(999999) is None


def _fields(obj: object) -> dict[str, object]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields}  # type: ignore[attr-defined]


def test_the_compiled_read_builds_what_the_queryset_builds(
    world: World, item: ServiceItem, django_assert_num_queries: Any
) -> None:
    unassigned, served_id = new_order(world, item), served(world, item)
    for oid in (unassigned, served_id, unassigned):  # the second time on the compiled SQL
        with transaction.atomic():
            fast = actions._LOCKED.get(oid)
            slow = actions._locking(oid).get()
        assert fast is not None and fast is not slow
        assert _fields(fast) == _fields(slow) and fast._state.db == slow._state.db and not fast._state.adding
        with django_assert_num_queries(0):  # the related objects came with the row, as select_related brings them
            for name in ("org", "service_item", "recipient", "volunteer"):
                mine, theirs = getattr(fast, name), getattr(slow, name)
                assert (mine is None) == (theirs is None) and (mine is None or _fields(mine) == _fields(theirs))
            for member, other in ((fast.recipient, slow.recipient), (fast.volunteer, slow.volunteer)):
                if member is not None and other is not None:
                    assert (member.user is None) == (other.user is None)
                    assert member.user is None or _fields(member.user) == _fields(other.user)
    with transaction.atomic():
        assert actions._LOCKED.get(999999) is None
    assert list(actions._LOCKED._compiled.values()) == [actions._LOCKED._compiled[("default", connection.vendor)]]
    assert actions._LOCKED._compiled[("default", connection.vendor)] is not None  # the compiled SQL, not the ORM
    if connection.vendor == "postgresql":  # SQLite adapts the token's datetime: the ORM as usual there
        assert user_for_token("no such token") is None
        assert orgs_actions._LIVE_TOKEN._compiled[("default", "postgresql")] is not None


def test_a_query_with_more_parameters_than_the_key_runs_as_usual(world: World, item: ServiceItem) -> None:
    oid = new_order(world, item)
    requested = OneByKey(lambda key: Order.objects.filter(pk=key, state=OrderState.REQUESTED))
    for _ in range(2):
        found = requested.get(oid)
        assert found is not None and found.pk == oid
    Order.objects.filter(pk=oid).update(state=OrderState.CANCELLED)
    assert requested.get(oid) is None


def test_keys_in_any_order_of_the_filters(world: World, item: ServiceItem) -> None:
    oid = new_order(world, item)
    # Django sorts a filter's keywords: the SQL's parameters come as (id, state), the keys as (state, id).
    by_state = OneByKey(lambda state, pk: Order.objects.filter(state=state, id=pk))
    for _ in range(2):
        found = by_state.get(OrderState.REQUESTED.value, oid)
        assert found is not None and found.pk == oid
        assert by_state.get(OrderState.CANCELLED.value, oid) is None
    assert by_state._compiled[("default", connection.vendor)] is not None
