"""供不应求: the risk projection on a population built with a known answer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from tests.conftest import World, error_code, make_member
from tests.test_orders import items as items
from timebank.catalogue.models import ServiceItem
from timebank.ledger import actions as ledger
from timebank.ledger.models import MEMBER_BUCKETS, Account
from timebank.members.models import Member
from timebank.orders.actions import do_cancel, do_create_order, do_dispatch
from timebank.orders.models import Order
from timebank.orders.records import do_service_record
from timebank.orgs.actions import do_create_org, do_update_rules
from timebank.orgs.models import Org, Rules
from timebank.reports.actions import do_update_risk_rules
from timebank.reports.risk import compute_risk, months_before, years_before


def _born(today: dt.date, years: int, plus_days: int = 0) -> dt.date:
    return years_before(today, years) + dt.timedelta(days=plus_days)


def _backdate(member: Member, days: int) -> None:
    Member.objects.filter(pk=member.pk).update(created_at=timezone.now() - dt.timedelta(days=days))


def _order(recipient: Member, item: ServiceItem) -> Order:
    return do_create_order(
        None,
        recipient=recipient,
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )


@pytest.fixture
def village(world: World, items: dict[str, ServiceItem]) -> tuple[Org, dict[str, Member]]:
    """A new sub-branch with six volunteers of known ages, one old recipient, credits and orders."""
    org = do_create_org(None, name="运河村", kind="sub_branch", parent=world.branch)
    today = timezone.localdate()
    people = {
        "a70": _born(today, 70),
        "b58": _born(today, 58),
        "g55": _born(today, 55),  # turns 60 exactly five years from today
        "h55": _born(today, 55, plus_days=1),  # one day short of 60 in five years
        "c52": _born(today, 52),
        "d40": _born(today, 40),
    }
    members = {k: make_member(org, k, roles=["volunteer"], born=b) for k, b in people.items()}
    members["f80"] = make_member(org, "f80", roles=["recipient"], born=_born(today, 80))
    # Everyone joined a year ago except d40, who joined in the window.
    for k, m in members.items():
        if k != "d40":
            _backdate(m, 365)
    # Credited service in the window: 120 × 1 + 60 × 2 = 240 minutes.
    now = timezone.now()
    do_service_record(None, volunteer=members["a70"], service_item=items["cleaning"], minutes=120, served_at=now)
    do_service_record(None, volunteer=members["b58"], service_item=items["repair"], minutes=60, served_at=now)
    # Owed besides the 240 earned: 600 reserve and 240 goods of the recipient.
    ledger.do_adjustment(None, member=members["f80"], minutes=600, bucket="reserve", reason="开户")
    ledger.do_adjustment(None, member=members["f80"], minutes=240, bucket="goods", reason="开户")
    # Orders: this month a cancelled-before-dispatch one (unfilled), one waiting past the dispatch time
    # (unfilled), one just made and one dispatched (both filled or not yet due); four months ago one cancelled.
    cancelled = _order(members["f80"], items["cleaning"])
    do_cancel(None, cancelled, reason="没人接", by_staff=True)
    late = _order(members["f80"], items["cleaning"])
    Order.objects.filter(pk=late.pk).update(created_at=now - dt.timedelta(hours=25))
    _order(members["f80"], items["cleaning"])
    do_dispatch(None, _order(members["f80"], items["cleaning"]), members["d40"])
    old = _order(members["f80"], items["cleaning"])
    do_cancel(None, old, reason="没人接", by_staff=True)
    four_months_ago = dt.datetime.combine(months_before(today, 4), dt.time(12), tzinfo=timezone.get_current_timezone())
    Order.objects.filter(pk=old.pk).update(created_at=four_months_ago)
    return org, members


def test_months_to_honour_and_age_projection_have_the_known_answer(world: World, village: tuple) -> None:
    org, _members = village
    risk = compute_risk(org)
    assert risk.window_months == 6 and risk.reserve_age == 60
    assert (risk.earned_minutes, risk.goods_minutes, risk.reserve_minutes) == (240, 240, 600)
    assert risk.outstanding_minutes == 1080
    assert risk.window_credited_minutes == 240
    assert risk.capacity_minutes_per_month == Decimal("40.0")
    assert risk.months_to_honour == Decimal("27.0")  # 1080 / (240 / 6)
    assert risk.volunteers == 6 and risk.volunteers_unknown_age == 0
    assert risk.at_age_now == 1  # a70
    assert risk.joined_in_window == 1 and risk.new_volunteers_per_year == Decimal("2.0")
    five, ten = risk.projections
    assert (five.years, five.reaching_age, five.newly_reaching, five.new_volunteers) == (5, 3, 2, 10)
    assert (ten.years, ten.reaching_age, ten.newly_reaching, ten.new_volunteers) == (10, 5, 4, 20)
    assert not five.alert and not ten.alert
    bands = {(b["low"], b["high"]): (b["in_0"], b["in_5"], b["in_10"]) for b in risk.age_bands}
    assert bands == {
        (0, 40): (0, 0, 0),
        (40, 50): (1, 1, 0),
        (50, 60): (4, 2, 1),
        (60, 70): (0, 2, 4),
        (70, 80): (1, 1, 0),
        (80, None): (0, 0, 1),
    }
    # Unfilled: lately 2 of 4, four months ago 1 of 1; the later half of the window is better by 50 points.
    assert risk.window_orders == 5 and risk.window_unfilled == 3
    assert risk.unfilled_percent == Decimal("60.0")
    orders = [m.orders for m in risk.months]
    assert len(orders) == 6 and orders[1] == 1 and orders[0] == orders[2] == orders[3] == 0
    assert orders[4] + orders[5] == 4
    assert risk.unfilled_trend_points == Decimal("-50.0")
    assert {a.code for a in risk.alerts} == {"months_to_honour", "unfilled"}


def test_the_rules_reserve_age_and_thresholds_change_the_answer(world: World, village: tuple) -> None:
    org, members = village
    do_update_rules(None, Rules.objects.get(head_office=world.bank), {"reserve_min_age": 65})
    _backdate(members["d40"], 365)  # no inflow any more
    do_update_risk_rules(None, world.bank, {"max_months_to_honour": 30, "max_unfilled_percent": 61, "window_months": 3})
    risk = compute_risk(org)
    assert risk.reserve_age == 65 and risk.at_age_now == 1
    # Three months of capacity now: 240 / 3 = 80 a month; 1080 / 80 = 13.5 months.
    assert risk.months_to_honour == Decimal("13.5")
    five, ten = risk.projections
    assert (five.reaching_age, five.newly_reaching, five.new_volunteers, five.alert) == (1, 0, 0, False)
    # In ten years b58 is 68 and g55 65 (exactly); h55 is a day short.
    assert (ten.reaching_age, ten.newly_reaching, ten.new_volunteers, ten.alert) == (3, 2, 0, True)
    # The order of four months ago has left the window: 2 of 4.
    assert risk.window_orders == 4 and risk.unfilled_percent == Decimal("50.0")
    assert {a.code for a in risk.alerts} == {"ageing_10"}


def test_no_capacity_is_an_alert_and_the_bank_figures_are_the_ledger_sums(world: World, village: tuple) -> None:
    bank = compute_risk(world.bank)
    owed = Account.objects.filter(member__bank=world.bank, kind__in=MEMBER_BUCKETS).aggregate(s=Sum("balance_minutes"))
    assert bank.outstanding_minutes == owed["s"]
    stats = world.api("head_office_admin").get("/api/v1/stats", {"org_id": world.bank.pk}).json()
    assert bank.outstanding_minutes == stats["outstanding_minutes"]
    # A community with credits owed and no service at all.
    empty = do_create_org(None, name="空村", kind="sub_branch", parent=world.branch)
    m = make_member(empty, "孤老", roles=["recipient"])
    ledger.do_adjustment(None, member=m, minutes=60, bucket="reserve", reason="开户")
    risk = compute_risk(empty)
    assert risk.months_to_honour is None and [a.code for a in risk.alerts] == ["no_capacity"]


def test_risk_api_is_for_staff_of_the_subtree(world: World, village: tuple) -> None:
    org, _ = village
    body = world.api("branch_admin").get("/api/v1/risk", {"org_id": org.pk}).json()
    assert body["months_to_honour"] == "27.0" or body["months_to_honour"] == 27.0
    assert body["projections"][0]["newly_reaching"] == 2
    assert world.api("staff").get("/api/v1/risk", {"org_id": org.pk}).status_code == 403
    assert world.api("other_bank_admin").get("/api/v1/risk", {"org_id": org.pk}).status_code == 403
    assert world.api("volunteer").get("/api/v1/risk", {"org_id": world.bank.pk}).status_code == 403
    assert error_code(world.api("head_office_admin").get("/api/v1/risk", {"org_id": 99999999})) == "org_not_found"


def test_risk_thresholds_are_checked(world: World) -> None:
    from timebank.lib.errors import Invalid

    for changes in ({"window_months": 0}, {"max_unfilled_percent": 101}, {"nope": 1}, {"window_months": "6"}):
        with pytest.raises(Invalid):
            do_update_risk_rules(None, world.bank, changes)
    with pytest.raises(Invalid):
        do_update_risk_rules(None, world.community, {"window_months": 3})
