"""Statistics reconcile with the ledger and the orders, on a scenario built for it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db.models import Sum
from django.utils import timezone

from tests.conftest import World
from tests.test_orders import items as items
from tests.test_orders import run_loop
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction
from timebank.members.models import Certificate
from timebank.orders.records import do_service_record
from timebank.reports.stats import credited_minutes, member_leg_transactions


def test_stats_match_hand_computed_numbers_and_the_ledger(world: World, items: dict) -> None:
    Certificate.objects.create(member=world.members["volunteer"], kind="counselling", issuer="协会")
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    run_loop(world, items["cleaning"], 120)  # 120 × 1
    run_loop(world, items["counselling"], 60)  # 60 × 3
    do_service_record(
        None,
        volunteer=world.members["neighbour"],
        service_item=items["repair"],
        minutes=30,
        served_at=timezone.now(),
        idempotency_key="sr1",
    )  # 30 × 2, in 泥沟村
    api = world.api("head_office_admin")
    bank = api.get("/api/v1/stats", {"org_id": world.bank.pk}).json()
    # Members: the five personas of bank A are active; the relative has no role, so 2 volunteers + 1 recipient.
    assert bank["members"] == 4
    assert bank["volunteers"] == 2 and bank["recipients"] == 1
    assert bank["orders_completed"] == 2
    assert bank["service_minutes"] == 120 + 60 + 30
    assert bank["credited_minutes"] == 120 + 180 + 60
    assert bank["service_records"] == 1
    # Reconciliation: credited minutes = the volunteers' earned legs from orders and service records.
    earned = Account.objects.filter(member__bank=world.bank, kind="earned").aggregate(s=Sum("balance_minutes"))["s"]
    assert bank["credited_minutes"] == earned
    assert bank["outstanding_minutes"] == sum(
        Account.objects.filter(member__bank=world.bank).values_list("balance_minutes", flat=True)
    )
    assert bank["ledger_transactions"] == Transaction.objects.filter(bank=world.bank).count()
    # A head office counts its bank's transactions; that is the same as those with a leg on one of its members.
    assert bank["ledger_transactions"] == member_leg_transactions(world.bank, None, None) == 4
    # The risk's capacity reads the service records' credits from their transactions: the same figure.
    assert credited_minutes(world.bank, None, None) == bank["credited_minutes"]
    assert credited_minutes(world.branch2, None, None) == 60
    # The community's own figures: the service record belongs to 泥沟村, not 顺河社区.
    community = world.api("staff").get("/api/v1/stats", {"org_id": world.community.pk}).json()
    assert community["credited_minutes"] == 300 and community["service_records"] == 0
    other = world.api("staff_next").get("/api/v1/stats", {"org_id": world.community2.pk}).json()
    assert other["credited_minutes"] == 60 and other["orders_completed"] == 0
    # A period before today counts nothing that happened today.
    yesterday = (timezone.localdate() - dt.timedelta(days=1)).isoformat()
    empty = api.get("/api/v1/stats", {"org_id": world.bank.pk, "to": yesterday}).json()
    assert empty["orders_completed"] == 0 and empty["credited_minutes"] == 0 and empty["ledger_transactions"] == 0
    assert empty["members"] == bank["members"]  # "now" figures do not depend on the period


@pytest.mark.parametrize("persona", ["staff_next", "operator", "volunteer", "other_bank_admin", "assessor"])
def test_stats_are_for_staff_of_the_subtree(world: World, persona: str) -> None:
    assert world.api(persona).get("/api/v1/stats", {"org_id": world.community.pk}).status_code == 403


def test_bad_periods_are_refused(world: World) -> None:
    api = world.api("head_office_admin")
    assert api.get("/api/v1/stats", {"org_id": world.bank.pk, "from": "2026-13-01"}).status_code == 422
    assert (
        api.get("/api/v1/stats", {"org_id": world.bank.pk, "from": "2026-02-01", "to": "2026-01-01"}).status_code == 422
    )
    assert api.get("/api/v1/stats", {"org_id": 10**30}).status_code == 422
    assert world.api("anonymous").get("/api/v1/stats").status_code == 401


def test_new_and_referred_volunteers_and_services_completed(world: World, items: dict) -> None:
    from tests.conftest import new_id_number
    from timebank.members.actions import MemberInput, do_register_member
    from timebank.members.models import Member

    def join(name: str, org: Any, roles: list[str], referrer: Member | None) -> Member:
        return do_register_member(
            None,
            home_org=org,
            data=MemberInput(
                name=name,
                id_number=new_id_number(),
                roles=roles,
                phone="13900000000",
                referred_by_id=referrer.pk if referrer else None,
            ),
            approved=True,
        )

    # Personas joined long ago; today 王秀英 brings in two volunteers and one recipient, one joins by herself.
    Member.objects.update(created_at=timezone.now() - dt.timedelta(days=400))
    volunteer = world.members["volunteer"]
    join("新志愿者一", world.community, ["volunteer"], volunteer)
    join("新志愿者二", world.community2, ["volunteer", "recipient"], volunteer)
    join("新老人", world.community, ["recipient"], volunteer)
    join("自己来的", world.community, ["volunteer"], None)
    run_loop(world, items["cleaning"], 30, payer="subsidy")
    do_service_record(
        None, volunteer=world.members["neighbour"], service_item=items["cleaning"], minutes=15, served_at=timezone.now()
    )
    api = world.api("head_office_admin")
    today = timezone.localdate().isoformat()
    bank = api.get("/api/v1/stats", {"org_id": world.bank.pk, "from": today, "to": today}).json()
    assert bank["new_members"] == 4 and bank["referred_volunteers"] == 2 and bank["referred_members"] == 3
    assert bank["services_completed"] == 2 == bank["orders_completed"] + bank["service_records"]
    community = world.api("staff").get("/api/v1/stats", {"org_id": world.community.pk, "from": today}).json()
    assert community["new_members"] == 3 and community["referred_volunteers"] == 1
    assert community["services_completed"] == 1
    last_year = api.get("/api/v1/stats", {"org_id": world.bank.pk, "to": "2020-01-01"}).json()
    assert last_year["new_members"] == 0 and last_year["services_completed"] == 0
