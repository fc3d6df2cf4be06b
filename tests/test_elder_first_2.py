"""Issue 14 (elder first), part 2: the volunteer's list offers only what can still be done, urgent first."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone

from tests.conftest import World, web_client
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.orders.actions import do_create_order
from timebank.orders.models import Order


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )


def _order(world: World, item: ServiceItem, *, start: dt.timedelta, made: dt.timedelta, urgent: bool = False) -> Order:
    """An open order starting `start` from now, made `made` ago (written on the row, not waited for)."""
    now = timezone.now()
    order = do_create_order(
        world.users["staff"],
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=now + start,
        planned_minutes=60,
        payer="subsidy",
        channel="hotline",
        urgent=urgent,
    )
    Order.objects.filter(pk=order.pk).update(created_at=now - made)
    return order


def _pool(world: World, item: ServiceItem) -> dict[str, Order]:
    return {
        "yesterday": _order(world, item, start=-dt.timedelta(days=1), made=dt.timedelta(days=3)),
        "later": _order(world, item, start=dt.timedelta(hours=3), made=dt.timedelta(days=2)),
        "soon": _order(world, item, start=dt.timedelta(hours=1), made=dt.timedelta(hours=1)),
        "fall": _order(world, item, start=-dt.timedelta(minutes=50), made=dt.timedelta(minutes=50), urgent=True),
        "fresh_urgent": _order(world, item, start=dt.timedelta(0), made=dt.timedelta(minutes=2), urgent=True),
    }


def test_the_volunteers_list_offers_no_past_order_and_puts_urgent_ones_first_by_waiting_time(
    world: World, item: ServiceItem
) -> None:
    orders = _pool(world, item)
    html = web_client(world.users["volunteer"]).get("/volunteer/").content.decode()
    assert f'id="order-{orders["yesterday"].pk}"' not in html
    shown = [name for name in orders if f'id="order-{orders[name].pk}"' in html]
    shown.sort(key=lambda name: html.index(f'id="order-{orders[name].pk}"'))
    assert shown == ["fall", "fresh_urgent", "later", "soon"]
    assert "已等 50 分钟" in html


def test_the_takeable_rule_is_one_queryset_method_used_by_the_apis_pool(world: World, item: ServiceItem) -> None:
    orders = _pool(world, item)
    takeable = set(Order.objects.takeable().values_list("pk", flat=True))
    assert orders["yesterday"].pk not in takeable
    assert {orders[n].pk for n in ("later", "soon", "fall", "fresh_urgent")} <= takeable
    answer = world.api("volunteer").get("/api/v1/orders", {"pool": "true"})
    assert answer.status_code == 200
    ids = {row["id"] for row in answer.json()["items"]}
    assert orders["yesterday"].pk not in ids
    assert {orders[n].pk for n in ("later", "soon", "fall", "fresh_urgent")} <= ids


# The emergency path: 120 and 12349 first, then an urgent order for now -----------------------------------


@pytest.fixture
def rescue(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="紧急救援", category="mutual_care", tier="ordinary"
    )


def test_the_emergency_tile_shows_120_and_12349_first_then_raises_one_urgent_order_for_now(
    world: World, rescue: ServiceItem, django_capture_on_commit_callbacks: Any
) -> None:
    from tests.test_notify import IMMEDIATE, templates

    for persona in ("staff", "operator"):
        assert world.api(persona).post("/api/v1/duty", {"on_duty": True}).status_code == 200
    client = web_client(world.users["recipient"])
    home = client.get("/").content.decode()
    tile = f"/order/{rescue.pk}/"
    assert f'href="{tile}?for=' in home
    page = client.get(tile, {"for": world.members["recipient"].pk})
    assert page.status_code == 200
    html = page.content.decode()
    main = html[html.index("<main") : html.index("</main>")]
    first_control = min(i for i in (main.find(t) for t in ("<a ", "<button", "<form", "<input")) if i >= 0)
    assert 'href="tel:120"' in main[first_control : main.index(">", first_control)]
    assert main.index('href="tel:12349"') < main.index("<form")
    assert 'class="button big' in main[first_control : main.index('href="tel:12349"') + 60]
    assert "明天" not in main and "09:00" not in main
    key = main.split('name="idempotency_key" value="')[1].split('"')[0]
    action = main.split('<form method="post" action="')[1].split('"')[0]
    before = timezone.now()
    with override_settings(TASKS=IMMEDIATE, NOTIFY_CHANNELS=["outbox"]):
        with django_capture_on_commit_callbacks(execute=True):
            first = client.post(action, {"idempotency_key": key, "for": world.members["recipient"].pk})
        with django_capture_on_commit_callbacks(execute=True):
            again = client.post(action, {"idempotency_key": key, "for": world.members["recipient"].pk})
    assert first.status_code == 302 and again.status_code == 302
    orders = list(Order.objects.filter(service_item=rescue))
    assert len(orders) == 1
    order = orders[0]
    assert order.urgent and order.recipient == world.members["recipient"]
    assert before - dt.timedelta(seconds=5) <= order.scheduled_start <= timezone.now()
    # As the hotline's urgent orders do: the on-duty staff and the relatives hear at once.
    for persona in ("staff", "operator", "relative"):
        assert templates(world, persona) == ["order.urgent"], persona


def test_the_emergency_button_refuses_what_it_is_not_for(world: World, rescue: ServiceItem, item: ServiceItem) -> None:
    client = web_client(world.users["recipient"])
    # Only the emergency service raises an order for now; a GET changes nothing; nobody else's elder is chosen.
    assert client.post(f"/order/{item.pk}/emergency/", {"idempotency_key": "k1"}).status_code == 404
    assert client.get(f"/order/{rescue.pk}/emergency/").status_code == 405
    stranger = world.members["stranger"].pk
    answer = client.post(f"/order/{rescue.pk}/emergency/", {"idempotency_key": "k2", "for": stranger})
    assert answer.status_code == 302
    assert list(Order.objects.values_list("recipient_id", flat=True)) == [world.members["recipient"].pk]
    # A volunteer with no elder to order for is refused, and nothing is written.
    refused = web_client(world.users["volunteer"]).post(f"/order/{rescue.pk}/emergency/", {"idempotency_key": "k3"})
    assert refused.status_code == 403
    assert Order.objects.count() == 1


def test_a_past_order_cannot_be_taken_through_the_api_nor_the_page(world: World, item: ServiceItem) -> None:
    orders = _pool(world, item)
    past = orders["yesterday"].pk
    assert world.api("volunteer").post(f"/api/v1/orders/{past}/take").status_code == 403
    page = web_client(world.users["volunteer"]).post(f"/volunteer/orders/{past}/take/")
    assert page.status_code == 403
    assert Order.objects.get(pk=past).state == "requested"
    assert world.api("volunteer").post(f"/api/v1/orders/{orders['fall'].pk}/take").status_code == 200
