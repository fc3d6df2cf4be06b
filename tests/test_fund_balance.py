"""The emergency fund buys a service only with money it has, and the family hears that it did."""

from __future__ import annotations

from typing import Any

from tests.conftest import World, error_code
from tests.test_funds import book, buy, cleaning, expense, income, past_dispatch_time, place_order
from timebank.catalogue.models import ServiceItem
from timebank.funds.actions import fund_balance
from timebank.funds.models import FundEntry
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account
from timebank.notify.models import Notification
from timebank.orders.models import Order

__all__ = ["cleaning"]  # the fixture, shared with test_funds


def test_the_fund_may_not_go_below_zero(world: World, cleaning: ServiceItem) -> None:
    recipient = world.members["recipient"]
    ledger.do_adjustment(None, member=recipient, minutes=600, bucket="reserve", reason="开户")
    oid = place_order(world, cleaning)
    past_dispatch_time(oid)
    empty = buy(world, "staff", oid)
    assert empty.status_code == 409 and error_code(empty) == "insufficient_fund"
    assert "专项基金余额不足" in empty.json()["error"]["message"]
    assert empty.json()["error"]["fields"] == {"available": "0.00", "amount": "150.00"}
    # General money and goods given in kind are not the emergency fund; spent emergency money is gone.
    book(world, "staff", income(world.community, "5000"))
    book(world, "staff", income(world.community, "100", fund="emergency"))
    book(world, "staff", expense(world.community, "20", fund="emergency"))
    assert fund_balance(world.community, "emergency") == 80
    short = buy(world, "staff", oid)
    assert short.status_code == 409 and short.json()["error"]["fields"]["available"] == "80.00"
    assert FundEntry.objects.filter(order__isnull=False).count() == 0
    assert Order.objects.get(pk=oid).state == "requested"
    assert Account.objects.get(member=recipient, kind="reserve").balance_minutes == 600
    # A fund above the order's org is another fund: the head office's is empty too.
    assert error_code(buy(world, "head_office_admin", oid, org_id=world.bank.pk)) == "insufficient_fund"
    book(world, "staff", income(world.community, "70", fund="emergency"))
    assert buy(world, "staff", oid).status_code == 200  # exactly 150 left: it may reach zero
    assert fund_balance(world.community, "emergency") == 0


def test_the_recipient_and_relatives_hear_of_a_bought_service(
    world: World, cleaning: ServiceItem, django_capture_on_commit_callbacks: Any
) -> None:
    recipient, relative = world.members["recipient"], world.members["relative"]
    ledger.do_adjustment(None, member=recipient, minutes=600, bucket="reserve", reason="开户")
    book(world, "staff", income(world.community, "500", fund="emergency"))
    oid = place_order(world, cleaning)
    past_dispatch_time(oid)
    Notification.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        assert buy(world, "staff", oid).status_code == 200
    told = Notification.objects.filter(template="order.bought", channel="outbox")
    assert {n.member_id for n in told} == {recipient.pk, relative.pk}  # the world links them (子女)
    assert all("专项基金" in n.body and "180 分钟" in n.body for n in told)
