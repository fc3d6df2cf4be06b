"""The volunteer's check-in page may send the phone's location, with consent, kept to about 100 metres."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from tests.conftest import World, web_client
from tests.evaluation_helpers import cleaning
from timebank.members.models import Member
from timebank.orders import actions
from timebank.orders.models import Order, OrderState


def accepted_order(world: World) -> Order:
    order = actions.do_create_order(
        None,
        recipient=Member.objects.get(pk=world.members["recipient"].pk),
        service_item=cleaning(world),
        scheduled_start=timezone.now() + dt.timedelta(hours=1),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )
    actions.do_dispatch(None, order, world.members["volunteer"])
    return actions.do_accept(None, order)


def test_the_card_offers_the_location_and_loads_its_script(world: World) -> None:
    order = accepted_order(world)
    html = web_client(world.users["volunteer"]).get("/volunteer/").content.decode()
    assert f'id="geo-{order.pk}"' in html and 'name="share_location"' in html
    assert "data-geo hidden" in html  # shown by the script only where the phone can tell its location
    assert "web/volunteer.js" in html


def test_a_shared_location_is_stored_rounded_to_about_100_m(world: World) -> None:
    order = accepted_order(world)
    resp = web_client(world.users["volunteer"]).post(
        f"/volunteer/orders/{order.pk}/check-in/",
        {"share_location": "1", "latitude": "34.5612345", "longitude": "117.7349876"},
    )
    assert resp.status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.IN_SERVICE
    assert (order.check_in_latitude, order.check_in_longitude) == (Decimal("34.561"), Decimal("117.735"))


def test_without_consent_or_a_location_nothing_is_stored(world: World) -> None:
    unticked = accepted_order(world)
    client = web_client(world.users["volunteer"])
    client.post(f"/volunteer/orders/{unticked.pk}/check-in/", {"latitude": "34.56", "longitude": "117.73"})
    unticked.refresh_from_db()
    assert unticked.state == OrderState.IN_SERVICE and unticked.check_in_latitude is None
    no_fix = accepted_order(world)
    client.post(f"/volunteer/orders/{no_fix.pk}/check-in/", {"share_location": "1", "latitude": "", "longitude": ""})
    no_fix.refresh_from_db()
    assert no_fix.state == OrderState.IN_SERVICE and no_fix.check_in_latitude is None


def test_a_nonsense_location_is_refused_and_nothing_changes(world: World) -> None:
    client = web_client(world.users["volunteer"])
    for lat, lng in (("abc", "117"), ("NaN", "117"), ("Infinity", "1"), ("91", "117"), ("34", "1e999999")):
        order = accepted_order(world)
        resp = client.post(
            f"/volunteer/orders/{order.pk}/check-in/",
            {"share_location": "1", "latitude": lat, "longitude": lng},
            HTTP_HX_REQUEST="true",
        )
        assert resp.status_code == 422, (lat, lng)
        order.refresh_from_db()
        assert order.state == OrderState.ACCEPTED and order.check_in_latitude is None, (lat, lng)
