"""Issue 14, "Forms that help": a custom time at night (NIGHT_START to NIGHT_END, local time) is refused at step 2 of
ordering, with the reason beside the time field and what was typed kept; step 3 refuses it too."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import World, web_client
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.orders.forms import NIGHT_END, NIGHT_START, is_night
from timebank.orders.models import Order
from timebank.orders.views_care import slots

NIGHT_WORDS = "晚上 21:00 到第二天早上 07:00 不安排上门服务，请选白天的时间。"


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )


def _at(hour: int, minute: int = 0, days: int = 2) -> str:
    local = timezone.localtime() + dt.timedelta(days=days)
    return local.replace(hour=hour, minute=minute).strftime("%Y-%m-%dT%H:%M")


def test_the_night_window_is_declared_once() -> None:
    assert (dt.time(21, 0), dt.time(7, 0)) == (NIGHT_START, NIGHT_END)
    day = timezone.localtime() + dt.timedelta(days=2)
    assert [is_night(day.replace(hour=h, minute=m)) for h, m in ((6, 59), (7, 0), (20, 59), (21, 0), (0, 0))] == [
        True,
        False,
        False,
        True,
        True,
    ]
    assert not any(is_night(s) for s in slots())  # the one-tap usual times are all in the day


@pytest.mark.parametrize("hour, minute", [(22, 30), (5, 0), (21, 0), (6, 59)])
def test_a_night_custom_time_is_refused_at_step_2_with_the_reason(
    world: World, item: ServiceItem, hour: int, minute: int
) -> None:
    recipient = world.members["recipient"]
    client = web_client(world.users["relative"])
    night = _at(hour, minute)
    step2 = client.get(f"/order/{item.pk}/?for={recipient.pk}&start={night}")
    assert step2.status_code == 422
    html = step2.content.decode()
    assert 'id="id_start_error_1"' in html and NIGHT_WORDS in html  # beside the time field, in Chinese
    assert f'value="{night}"' in html  # what was typed is kept
    assert f'name="for" value="{recipient.pk}"' in html  # and for whom
    assert not Order.objects.exists()


@pytest.mark.parametrize("hour, minute", [(7, 0), (20, 59)])
def test_a_day_custom_time_at_the_edges_goes_on_to_step_3(
    world: World, item: ServiceItem, hour: int, minute: int
) -> None:
    recipient = world.members["recipient"]
    client = web_client(world.users["relative"])
    step2 = client.get(f"/order/{item.pk}/?for={recipient.pk}&start={_at(hour, minute)}")
    assert step2.status_code == 302 and f"/order/{item.pk}/confirm/" in step2["Location"]


def test_step_3_refuses_a_night_time_too_and_keeps_every_field(world: World, item: ServiceItem) -> None:
    recipient = world.members["recipient"]
    client = web_client(world.users["recipient"])
    night = _at(23, 15)
    # A night time carried to step 3 in the address goes back to step 2, which says why.
    step3 = client.get(f"/order/{item.pk}/confirm/?for={recipient.pk}&start={night}")
    assert step3.status_code == 302
    back = client.get(step3["Location"])
    assert back.status_code == 422 and NIGHT_WORDS in back.content.decode()
    # Posted at step 3: refused beside the field, nothing written, the other fields as typed.
    form = {"recipient": recipient.pk, "start": night, "planned_minutes": 90, "notes": "楼下门铃坏了"}
    refused = client.post(f"/order/{item.pk}/confirm/", form)
    assert refused.status_code == 422
    html = refused.content.decode()
    assert NIGHT_WORDS in html  # step 3 keeps the time hidden and says why under it
    assert "楼下门铃坏了" in html and f'value="{night}"' in html
    assert '<option value="90" selected>' in html
    assert not Order.objects.exists()
