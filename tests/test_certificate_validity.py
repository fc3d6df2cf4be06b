"""A certificate counts for dispatch only while it is valid: from `valid_from` (not before) to `valid_until`."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import World, error_code
from tests.test_matching import items, new_order, ranking, volunteer
from timebank.catalogue.models import ServiceItem
from timebank.lib.errors import Conflict
from timebank.members.models import Certificate
from timebank.orders import actions

__all__ = ["items"]  # the fixture, shared with test_matching


def test_a_certificate_not_yet_valid_does_not_count_in_matching(world: World, items: dict[str, ServiceItem]) -> None:
    today = timezone.localdate()
    valid = volunteer(world, "已生效")
    starts_today = volunteer(world, "今天生效")
    not_yet = volunteer(world, "下月生效")
    Certificate.objects.create(member=valid, kind="counselling", valid_from=today - dt.timedelta(days=300))
    Certificate.objects.create(member=starts_today, kind="counselling", valid_from=today)
    Certificate.objects.create(
        member=not_yet,
        kind="counselling",
        valid_from=today + dt.timedelta(days=30),
        valid_until=today + dt.timedelta(days=400),
    )
    order = new_order(world, items["counselling"])
    assert sorted(ranking(world, order)) == sorted([valid.pk, starts_today.pk])


def test_a_certificate_not_yet_valid_does_not_allow_dispatch(world: World, items: dict[str, ServiceItem]) -> None:
    today = timezone.localdate()
    member = volunteer(world, "下月生效")
    cert = Certificate.objects.create(member=member, kind="counselling", valid_from=today + dt.timedelta(days=1))
    order = new_order(world, items["counselling"])
    with pytest.raises(Conflict) as refused:
        actions.check_volunteer_for(order, member)
    assert refused.value.code == "certificate_required"
    resp = world.api("staff").post(f"/api/v1/orders/{order.pk}/dispatch", {"volunteer_id": member.pk})
    assert resp.status_code == 409 and error_code(resp) == "certificate_required"
    # Once its day has come, it counts.
    Certificate.objects.filter(pk=cert.pk).update(valid_from=today)
    actions.check_volunteer_for(order, member)
