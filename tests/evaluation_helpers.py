"""Builders shared by the evaluation tests: credited time, served and rated orders, all through actions."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from tests.conftest import World
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.members.models import Member
from timebank.orders import actions as order_actions
from timebank.orders import records as order_records
from timebank.orders.models import Order


def cleaning(world: World) -> ServiceItem:
    item = ServiceItem.objects.filter(head_office=world.bank, name="家庭保洁").first()
    if item is None:
        item = do_create_service_item(
            None,
            head_office=world.bank,
            name="家庭保洁",
            category="mutual_care",
            tier="ordinary",
            requires_certificate=None,
        )
    return item


def credit(world: World, member: Member, minutes: int, *, when: dt.datetime | None = None) -> None:
    """Credit `minutes` of ordinary service (×1) through service records of at most a day each."""
    item = cleaning(world)
    served = when or timezone.now() - dt.timedelta(hours=1)
    while minutes > 0:
        chunk = min(minutes, 1440)
        order_records.do_service_record(None, volunteer=member, service_item=item, minutes=chunk, served_at=served)
        minutes -= chunk


def served_order(world: World, volunteer: Member, *, minutes: int = 60, rating: int | None = None) -> Order:
    """A whole order served by `volunteer` for the test world's recipient, confirmed and optionally reviewed."""
    order = order_actions.do_create_order(
        None,
        recipient=Member.objects.get(pk=world.members["recipient"].pk),
        service_item=cleaning(world),
        scheduled_start=timezone.now() - dt.timedelta(hours=2),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )
    order_actions.do_dispatch(None, order, volunteer)
    order_actions.do_accept(None, order)
    order_actions.do_check_in(None, order)
    # Served `minutes`: the check-in is set back rather than the test waiting (credits follow the clock).
    Order.objects.filter(pk=order.pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=minutes))
    order_actions.do_check_out(None, order)
    order_actions.do_confirm(None, order, actual_minutes=minutes, by_staff=True)
    if rating is not None:
        order_actions.do_review(None, order, rating=rating)
    return Order.objects.get(pk=order.pk)


def new_order(world: World) -> Order:
    return order_actions.do_create_order(
        None,
        recipient=Member.objects.get(pk=world.members["recipient"].pk),
        service_item=cleaning(world),
        scheduled_start=timezone.now() + dt.timedelta(days=2),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )
