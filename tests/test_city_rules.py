"""Issue 16: rules other cities use, each a head-office rule, off by default, each tested at its boundaries.

- a storage cap (储存上限, Nanjing and Guangzhou: 1,500 hours): credits above it go to the donation pool, with a
  notice to the member (timebank.ledger.actions.credit_legs, in every crediting action);
- a minimum star level before stored time can be spent (Guangzhou: one star; ledger.actions.check_star_gate,
  answered by evaluation);
- yearly grants of time to recipients of chosen categories (Nanjing: over 80 living alone; ledger.grants, run by
  `manage.py yearly_grants` and the django-tasks task), once per member and year;
- 刚性兑付: an order paid from stored time that waited N days for a volunteer is bought from the emergency fund by
  the `buy-service` action (funds.guarantee, run by `manage.py guarantee_orders` and its task).
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import close_old_connections
from django.utils import timezone

from tests.conftest import World, error_code, is_postgres, make_member, web_client
from tests.evaluation_helpers import credit
from tests.ledger_checks import ledger_problems
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.funds.actions import EntryInput, do_record_entry
from timebank.funds.guarantee import run_guarantee
from timebank.funds.models import FundEntry
from timebank.funds.tasks import guarantee_orders
from timebank.ledger import actions as ledger
from timebank.ledger.grants import grant_key, run_yearly_grants
from timebank.ledger.models import Account, AccountKind, Transaction
from timebank.ledger.tasks import yearly_grants
from timebank.lib.errors import Conflict
from timebank.members.models import Member
from timebank.notify.hooks import OVER_CAP_TEMPLATE
from timebank.notify.models import Notification
from timebank.orders import actions as order_actions
from timebank.orders.models import Order
from timebank.orgs.actions import do_update_rules
from timebank.orgs.forms import RulesForm
from timebank.orgs.models import Org, Rules

CITY_RULES = (
    "storage_cap_hours",
    "spend_min_star_level",
    "yearly_grant_minutes",
    "yearly_grant_categories",
    "yearly_grant_min_age",
    "guarantee_after_days",
    "guarantee_yuan_per_hour",
    "guarantee_provider",
)
NANJING_CAP_MINUTES = 1500 * 60


def set_rules(world: World, **changes: Any) -> Rules:
    rules = Rules.objects.get(head_office=world.bank)
    return do_update_rules(world.users["head_office_admin"], rules, changes)


def held(member: Member) -> int:
    return sum(Account.objects.filter(member=member).values_list("balance_minutes", flat=True))


def bucket(member: Member, kind: str) -> int:
    return Account.objects.get(member=member, kind=kind).balance_minutes


def pool(bank: Org) -> int:
    return Account.objects.get(bank=bank, member__isnull=True, kind=AccountKind.DONATION_POOL).balance_minutes


def over_cap_notices(member: Member) -> list[Notification]:
    return list(Notification.objects.filter(member=member, template=OVER_CAP_TEMPLATE))


def fresh(member: Member) -> Member:
    return Member.objects.get(pk=member.pk)


@pytest.fixture
def cleaning(world: World) -> ServiceItem:
    return do_create_service_item(
        None,
        head_office=world.bank,
        name="家庭保洁",
        category="mutual_care",
        tier="ordinary",
        requires_certificate=None,
    )


# --- defaults and the rules API/page ----------------------------------------------------------------------------


def test_every_city_rule_is_off_by_default_and_shown_by_the_api(world: World) -> None:
    body = world.api("head_office_admin").get(f"/api/v1/orgs/{world.bank.pk}/rules").json()
    assert {k: body[k] for k in CITY_RULES} == {
        "storage_cap_hours": None,
        "spend_min_star_level": None,
        "yearly_grant_minutes": None,
        "yearly_grant_categories": [],
        "yearly_grant_min_age": None,
        "guarantee_after_days": None,
        "guarantee_yuan_per_hour": None,
        "guarantee_provider": "",
    }
    # The existing fields are untouched.
    assert body["overdraft_minutes"] == 0 and body["star_thresholds_hours"] == [100, 300, 600, 1000, 1500]


def test_the_head_office_admin_sets_them_through_the_api_and_the_change_is_audited(world: World) -> None:
    nanjing = {
        "storage_cap_hours": 1500,
        "spend_min_star_level": 1,
        "yearly_grant_minutes": 600,
        "yearly_grant_categories": ["living_alone"],
        "yearly_grant_min_age": 80,
        "guarantee_after_days": 3,
        "guarantee_yuan_per_hour": 60,
        "guarantee_provider": "  鲁南家政服务有限公司 ",
    }
    resp = world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", nanjing)
    assert resp.status_code == 200, resp.content
    assert {k: resp.json()[k] for k in CITY_RULES} == {**nanjing, "guarantee_provider": "鲁南家政服务有限公司"}
    entry = AuditEntry.objects.filter(action="rules.update").latest("pk")
    assert entry.data["after"]["storage_cap_hours"] == 1500
    # Null turns each back off.
    off = {k: None for k in CITY_RULES if k not in ("yearly_grant_categories", "guarantee_provider")}
    assert world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", off).status_code == 200
    assert Rules.objects.get(head_office=world.bank).storage_cap_hours is None
    # Staff of the bank read them.
    assert world.api("staff").get(f"/api/v1/orgs/{world.bank.pk}/rules").json()["yearly_grant_min_age"] is None


BAD_VALUES: list[dict[str, Any]] = [
    {"storage_cap_hours": 0},
    {"storage_cap_hours": -1},
    {"storage_cap_hours": 100_001},
    {"storage_cap_hours": 10**30},
    {"storage_cap_hours": "1500"},
    {"storage_cap_hours": 1500.5},
    {"storage_cap_hours": True},
    {"spend_min_star_level": 0},
    {"spend_min_star_level": 11},
    {"spend_min_star_level": "one"},
    {"yearly_grant_minutes": -600},
    {"yearly_grant_minutes": 100_001},
    {"yearly_grant_minutes": [600]},
    {"yearly_grant_categories": ["over_80"]},
    {"yearly_grant_categories": "living_alone"},
    {"yearly_grant_categories": ["living_alone"] * 11},
    {"yearly_grant_min_age": 121},
    {"yearly_grant_min_age": -80},
    {"guarantee_after_days": 0},
    {"guarantee_after_days": 366},
    {"guarantee_yuan_per_hour": 0},
    {"guarantee_yuan_per_hour": 10_001},
    {"guarantee_provider": 12345},
    {"guarantee_provider": "家" * 101},
    {"guarantee_provider": None},
    {"guarantee_provider": "鲁南家政 13912345678"},  # it goes on the public fund disclosure
    # The guarantee works only with its price and provider.
    {"guarantee_after_days": 3},
    {"guarantee_after_days": 3, "guarantee_yuan_per_hour": 60},
    {"guarantee_after_days": 3, "guarantee_provider": "鲁南家政"},
    # One bad field refuses the whole change.
    {"storage_cap_hours": 1500, "spend_min_star_level": -1},
]


@pytest.mark.parametrize("body", BAD_VALUES, ids=[f"{i}-{'-'.join(sorted(b))}" for i, b in enumerate(BAD_VALUES)])
def test_bad_rule_values_are_4xx_and_save_nothing(world: World, body: dict[str, Any]) -> None:
    before = Rules.objects.get(head_office=world.bank)
    updates = AuditEntry.objects.filter(action="rules.update").count()
    resp = world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", body)
    assert resp.status_code == 422, resp.content
    after = Rules.objects.get(head_office=world.bank)
    assert {k: getattr(after, k) for k in CITY_RULES} == {k: getattr(before, k) for k in CITY_RULES}
    assert after.updated_at == before.updated_at
    assert AuditEntry.objects.filter(action="rules.update").count() == updates


def test_the_action_refuses_the_same_bad_values(world: World) -> None:
    from timebank.lib.errors import Invalid

    for body in ({"storage_cap_hours": -1}, {"guarantee_provider": 7}, {"guarantee_after_days": 2}):
        with pytest.raises(Invalid):
            set_rules(world, **body)
    assert Rules.objects.get(head_office=world.bank).guarantee_after_days is None


@pytest.mark.parametrize("persona", ["branch_admin", "staff", "operator", "other_bank_admin", "volunteer"])
def test_only_the_banks_head_office_admins_change_them(world: World, persona: str) -> None:
    resp = world.api(persona).patch(f"/api/v1/orgs/{world.bank.pk}/rules", {"storage_cap_hours": 1500})
    assert resp.status_code == 403, resp.content
    assert Rules.objects.get(head_office=world.bank).storage_cap_hours is None
    # And the head office admin of the other bank cannot reach into this one from their own rules either.
    assert world.api("head_office_admin").patch(
        f"/api/v1/orgs/{world.other_bank.pk}/rules", {"storage_cap_hours": 1}
    ).status_code in (403, 404)
    assert Rules.objects.get(head_office=world.other_bank).storage_cap_hours is None


def _page_form(rules: Rules, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in RulesForm.initial_for(rules).items():
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is None:
            data[name] = ""
        elif isinstance(value, list):
            data[name] = value
        else:
            data[name] = str(value)
    data.update(changes)
    return data


def test_the_rules_page_edits_them_and_refuses_bad_values_beside_the_field(world: World) -> None:
    url = f"/bank/{world.bank.pk}/rules/"
    admin = web_client(world.users["head_office_admin"])
    page = admin.get(url).content.decode()
    for name in CITY_RULES:
        assert f'name="{name}"' in page, name
    rules = Rules.objects.get(head_office=world.bank)
    refused = admin.post(url, _page_form(rules, storage_cap_hours="-5"))
    assert refused.status_code == 422 and 'name="storage_cap_hours"' in refused.content.decode()
    incomplete = admin.post(url, _page_form(rules, guarantee_after_days="3"))
    assert incomplete.status_code == 422 and "刚性兑付" in incomplete.content.decode()
    assert Rules.objects.get(head_office=world.bank).guarantee_after_days is None
    done = admin.post(
        url,
        _page_form(
            rules,
            storage_cap_hours="1500",
            yearly_grant_minutes="600",
            yearly_grant_categories=["living_alone"],
            yearly_grant_min_age="80",
            guarantee_after_days="3",
            guarantee_yuan_per_hour="60",
            guarantee_provider="鲁南家政服务有限公司",
        ),
    )
    assert done.status_code == 302, done.content.decode()[:2000]
    rules = Rules.objects.get(head_office=world.bank)
    assert (rules.storage_cap_hours, rules.yearly_grant_categories, rules.guarantee_provider) == (
        1500,
        ["living_alone"],
        "鲁南家政服务有限公司",
    )
    # Staff read them; they and a branch admin cannot change them.
    read_only = web_client(world.users["staff"]).get(url).content.decode()
    assert "1500 小时" in read_only and 'name="storage_cap_hours"' not in read_only
    for persona in ("staff", "branch_admin", "other_bank_admin"):
        resp = web_client(world.users[persona]).post(url, _page_form(rules, storage_cap_hours="1"))
        assert resp.status_code == 403, persona
    assert Rules.objects.get(head_office=world.bank).storage_cap_hours == 1500


# --- the storage cap --------------------------------------------------------------------------------------------


def test_without_a_cap_credits_are_kept_whatever_the_balance(world: World) -> None:
    volunteer = world.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=NANJING_CAP_MINUTES, bucket="reserve", reason="开户")
    ledger.do_deposit(None, volunteer=volunteer, minutes=600, payer="subsidy")
    assert held(volunteer) == NANJING_CAP_MINUTES + 600 and pool(world.bank) == 0
    assert over_cap_notices(volunteer) == []


def test_a_credit_exactly_to_the_cap_is_kept_one_minute_over_goes_to_the_pool_with_a_notice(world: World) -> None:
    set_rules(world, storage_cap_hours=1500)
    volunteer = world.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=NANJING_CAP_MINUTES - 60, bucket="reserve", reason="开户")
    # Exactly to the cap: all kept.
    ledger.do_deposit(None, volunteer=volunteer, minutes=60, payer="subsidy")
    assert held(volunteer) == NANJING_CAP_MINUTES and pool(world.bank) == 0
    assert over_cap_notices(volunteer) == []
    # One minute over: that minute goes to the pool, in the same transaction, and the member is told.
    tx, _replayed = ledger.do_deposit(None, volunteer=volunteer, minutes=1, payer="subsidy", memo="订单")
    assert held(volunteer) == NANJING_CAP_MINUTES and pool(world.bank) == 1
    assert sorted(tx.legs.values_list("minutes", flat=True)) == [-1, 1]
    notices = over_cap_notices(volunteer)
    assert notices and notices[0].payload["minutes"] == 1 and "1500" in notices[0].body
    audit = AuditEntry.objects.filter(action="ledger.deposit").latest("pk")
    assert audit.data["over_cap"] == 1
    # The member reads it among their own notifications.
    inbox = world.api("volunteer").get("/api/v1/notifications").json()["items"]
    assert any(n["title"] == "储存时间已达上限" for n in inbox)
    assert ledger_problems(world.bank.pk) == []


def test_a_credit_across_the_cap_is_split(world: World) -> None:
    set_rules(world, storage_cap_hours=1)  # 60 minutes
    volunteer = world.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=50, bucket="goods", reason="开户")  # every bucket counts
    ledger.do_deposit(None, volunteer=volunteer, minutes=25, payer="subsidy")
    assert (bucket(volunteer, "earned"), held(volunteer), pool(world.bank)) == (10, 60, 15)
    # Below the cap after spending, credits are kept again up to it.
    ledger.do_withdrawal(None, member=volunteer, minutes=10)
    ledger.do_deposit(None, volunteer=volunteer, minutes=11, payer="subsidy")
    assert (held(volunteer), pool(world.bank)) == (60, 16)
    assert len(over_cap_notices(volunteer)) == 2
    assert ledger_problems(world.bank.pk) == []


def test_the_cap_applies_to_service_credits_gifts_adjustments_and_not_to_debits(world: World, cleaning: Any) -> None:
    set_rules(world, storage_cap_hours=1)
    volunteer, recipient, son = world.members["volunteer"], world.members["recipient"], world.members["relative"]
    # A service confirmed through the API: 90 minutes credited, 60 kept, 30 to the pool.
    order = order_actions.do_create_order(
        world.users["staff"],
        recipient=recipient,
        service_item=cleaning,
        scheduled_start=timezone.now() - dt.timedelta(hours=2),
        planned_minutes=90,
        payer="subsidy",
        channel="staff",
    )
    api = world.api("staff")
    assert api.post(f"/api/v1/orders/{order.pk}/dispatch", {"volunteer_id": volunteer.pk}).status_code == 200
    for action in ("accept", "check-in"):
        assert world.api("volunteer").post(f"/api/v1/orders/{order.pk}/{action}").status_code == 200
    Order.objects.filter(pk=order.pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=90))
    assert world.api("volunteer").post(f"/api/v1/orders/{order.pk}/check-out").status_code == 200
    resp = api.post(f"/api/v1/orders/{order.pk}/confirm", {"actual_minutes": 90})
    assert resp.status_code == 200, resp.content
    assert resp.json()["credited_minutes"] == 90  # the order says what was credited; the ledger says where it went
    assert (held(volunteer), pool(world.bank)) == (60, 30)
    # A gift to a relative at the cap: the relative keeps up to the cap, the rest goes to the pool.
    ledger.do_adjustment(None, member=son, minutes=100, bucket="reserve", reason="开户")
    ledger.do_adjustment(None, member=recipient, minutes=40, bucket="reserve", reason="开户")
    assert (held(son), pool(world.bank)) == (60, 70)  # the adjustment itself was capped
    ledger.do_transfer(
        world.users["relative"], from_member=son, to_member=recipient, minutes=30, kind="relative", memo="给爸爸"
    )
    assert (held(son), held(recipient), pool(world.bank)) == (30, 60, 80)
    assert len(over_cap_notices(recipient)) == 1 and len(over_cap_notices(son)) == 1
    # Debits are never capped, and a negative adjustment moves nothing to the pool.
    ledger.do_adjustment(None, member=son, minutes=-10, bucket="reserve", reason="更正")
    assert (held(son), pool(world.bank)) == (20, 80)
    assert ledger_problems(world.bank.pk) == []


def test_a_pool_paid_credit_to_a_member_at_the_cap_is_refused(world: World) -> None:
    set_rules(world, storage_cap_hours=1)
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    ledger.do_adjustment(None, member=volunteer, minutes=60, bucket="earned", reason="开户")
    ledger.do_adjustment(None, member=neighbour, minutes=30, bucket="reserve", reason="开户")
    ledger.do_transfer(None, from_member=neighbour, to_member=None, minutes=30, kind="donation")
    with pytest.raises(Conflict) as refused:
        ledger.do_deposit(None, volunteer=volunteer, minutes=10, payer="pool")
    assert refused.value.code == "storage_cap_reached"
    assert (held(volunteer), pool(world.bank)) == (60, 30)


# --- the minimum star level before stored time can be spent ----------------------------------------------------


def _self_order(world: World, member: Member, item: ServiceItem) -> Any:
    return world.api("staff").post(
        "/api/v1/orders",
        {
            "recipient_id": member.pk,
            "service_item_id": item.pk,
            "scheduled_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
            "planned_minutes": 30,
            "payer": "recipient",
            "channel": "staff",
        },
    )


def test_without_a_minimum_star_level_anyone_may_spend(world: World, cleaning: ServiceItem) -> None:
    volunteer = world.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=120, bucket="reserve", reason="开户")
    assert _self_order(world, volunteer, cleaning).status_code == 201
    ledger.do_withdrawal(None, member=volunteer, minutes=10)
    assert bucket(volunteer, "reserve") == 110


def test_one_minute_short_of_one_star_cannot_spend_at_one_star_may(world: World, cleaning: ServiceItem) -> None:
    set_rules(world, star_thresholds_hours=[1, 2], spend_min_star_level=1)
    volunteer = world.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=300, bucket="reserve", reason="开户")
    credit(world, volunteer, 59)  # 59 minutes served: no star yet
    refused = _self_order(world, volunteer, cleaning)
    assert refused.status_code == 409 and error_code(refused) == "below_star_level"
    assert refused.json()["error"]["fields"] == {"spend_min_star_level": 1, "star_level": 0}
    with pytest.raises(Conflict) as withdrawal:
        ledger.do_withdrawal(None, member=fresh(volunteer), minutes=10)
    assert withdrawal.value.code == "below_star_level"
    assert not Order.objects.filter(recipient=volunteer).exists()
    assert bucket(volunteer, "reserve") == 300
    # Gifts to relatives are not spending on oneself.
    son = world.members["relative"]
    ledger.do_adjustment(None, member=son, minutes=60, bucket="reserve", reason="开户")
    ledger.do_transfer(None, from_member=son, to_member=world.members["recipient"], minutes=10, kind="relative")
    # Subsidy-paid orders are not affected.
    subsidy = world.api("staff").post(
        "/api/v1/orders",
        {
            "recipient_id": volunteer.pk,
            "service_item_id": cleaning.pk,
            "scheduled_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
            "planned_minutes": 30,
            "payer": "subsidy",
            "channel": "staff",
        },
    )
    assert subsidy.status_code == 201
    credit(world, volunteer, 1)  # exactly 60 minutes: one star
    assert _self_order(world, volunteer, cleaning).status_code == 201
    ledger.do_withdrawal(None, member=fresh(volunteer), minutes=10)
    assert bucket(volunteer, "reserve") == 290


def test_the_star_level_is_checked_again_when_the_spend_is_confirmed(world: World, cleaning: ServiceItem) -> None:
    """An order made at one star whose star was lost (a credit reversed) is not paid from stored time."""
    set_rules(world, star_thresholds_hours=[1], spend_min_star_level=1)
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    ledger.do_adjustment(None, member=volunteer, minutes=300, bucket="reserve", reason="开户")
    credit(world, volunteer, 60)
    order = order_actions.do_create_order(
        None,
        recipient=fresh(volunteer),
        service_item=cleaning,
        scheduled_start=timezone.now() - dt.timedelta(hours=1),
        planned_minutes=30,
        payer="recipient",
        channel="staff",
    )
    ledger.do_reversal(None, original=Transaction.objects.filter(kind="service_record").latest("pk"), reason="重复")
    order_actions.do_dispatch(None, order, neighbour)
    order_actions.do_accept(None, order)
    order_actions.do_check_in(None, order)
    order_actions.do_check_out(None, order)
    with pytest.raises(Conflict) as refused:
        order_actions.do_confirm(None, order, actual_minutes=1, by_staff=True)
    assert refused.value.code == "below_star_level"
    assert Order.objects.get(pk=order.pk).state == "completed" and bucket(volunteer, "reserve") == 300


# --- yearly grants --------------------------------------------------------------------------------------------


def _elder(world: World, name: str, born: dt.date, categories: list[str], **kw: Any) -> Member:
    member = make_member(world.community, name, roles=kw.pop("roles", ["recipient"]), born=born)
    Member.objects.filter(pk=member.pk).update(recipient_categories=categories, **kw)
    return fresh(member)


def _nanjing(world: World, **extra: Any) -> None:
    set_rules(
        world,
        yearly_grant_minutes=600,
        yearly_grant_categories=["living_alone"],
        yearly_grant_min_age=80,
        **extra,
    )


def test_no_grants_by_default(world: World) -> None:
    _elder(world, "独居老人", dt.date(1930, 1, 1), ["living_alone"])
    report = run_yearly_grants(2026)
    assert report.granted == [] and not Transaction.objects.filter(idempotency_key__startswith="yearly-grant:").exists()


def test_grants_go_to_the_chosen_recipients_from_the_day_they_are_80_once_a_year(world: World) -> None:
    _nanjing(world)
    exactly_80 = _elder(world, "刚满八十", dt.date(1946, 1, 1), ["living_alone"])
    one_day_short = _elder(world, "差一天", dt.date(1946, 1, 2), ["living_alone"])
    not_alone = _elder(world, "空巢", dt.date(1930, 5, 5), ["empty_nest"])
    two_kinds = _elder(world, "独居失能", dt.date(1930, 5, 5), ["disabled", "living_alone"])
    not_recipient = _elder(world, "志愿者", dt.date(1930, 5, 5), ["living_alone"], roles=["volunteer"])
    suspended = _elder(world, "暂停", dt.date(1930, 5, 5), ["living_alone"], status="suspended")
    other_bank = make_member(world.other_community, "外行", roles=["recipient"], born=dt.date(1930, 5, 5))
    Member.objects.filter(pk=other_bank.pk).update(recipient_categories=["living_alone"])

    first = run_yearly_grants(2026)
    assert sorted(first.granted) == sorted([exactly_80.pk, two_kinds.pk]) and first.minutes == 1200
    assert bucket(exactly_80, "reserve") == 600 and bucket(two_kinds, "reserve") == 600
    for m in (one_day_short, not_alone, not_recipient, suspended, other_bank):
        assert held(m) == 0, m.name
    tx = Transaction.objects.get(idem_scope="system", idempotency_key=grant_key(2026, exactly_80.pk))
    assert tx.kind == "adjustment" and tx.memo.startswith("2026") and tx.actor_id is None
    # Run again the same year (even with another amount): nothing more.
    set_rules(world, yearly_grant_minutes=900)
    again = run_yearly_grants(2026)
    assert again.granted == [] and again.already == 2
    assert bucket(exactly_80, "reserve") == 600
    # The next year, each is granted again (and the one who turned 80 on 2 January 1946 is now in).
    later = run_yearly_grants(2027)
    assert sorted(later.granted) == sorted([exactly_80.pk, one_day_short.pk, two_kinds.pk])
    assert bucket(exactly_80, "reserve") == 1500 and bucket(one_day_short, "reserve") == 900
    assert ledger_problems(world.bank.pk) == []


def test_grants_need_a_category_or_an_age_and_respect_the_cap(world: World) -> None:
    set_rules(world, yearly_grant_minutes=600)  # neither categories nor age: nobody, never everybody
    elder = _elder(world, "独居老人", dt.date(1930, 1, 1), ["living_alone"])
    assert run_yearly_grants(2026).granted == []
    set_rules(world, yearly_grant_min_age=90, storage_cap_hours=10)  # by age alone
    ledger.do_adjustment(None, member=elder, minutes=500, bucket="reserve", reason="开户")
    assert run_yearly_grants(2026).granted == [elder.pk]
    assert (held(elder), pool(world.bank)) == (600, 500)
    assert len(over_cap_notices(elder)) == 1


def test_the_scheduled_job_runs_as_a_command_and_a_task_and_posts_once(world: World) -> None:
    _nanjing(world)
    elder = _elder(world, "独居老人", dt.date(1930, 1, 1), ["living_alone"])
    out = StringIO()
    call_command("yearly_grants", stdout=out)
    year = timezone.localdate().year
    assert f"year {year}: granted 1 members 600 minutes" in out.getvalue()
    call_command("yearly_grants", stdout=out)
    assert "granted 0 members 0 minutes, 1 already granted" in out.getvalue()
    result = yearly_grants.enqueue()
    assert result.return_value == {"year": year, "granted": 0, "already": 1, "minutes": 0}
    assert bucket(elder, "reserve") == 600
    assert Transaction.objects.filter(idempotency_key__startswith="yearly-grant:").count() == 1
    with pytest.raises(Exception, match="year"):
        call_command("yearly_grants", "--year", str(year + 1))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_grant_jobs_at_once_grant_each_member_once() -> None:
    from tests.conftest import build_world

    if not is_postgres():
        pytest.skip("races are tested on PostgreSQL")
    world = build_world()
    _nanjing(world)
    elders = [_elder(world, f"老人{i}", dt.date(1930, 1, 1 + i), ["living_alone"]) for i in range(4)]
    barrier = threading.Barrier(3)
    errors: list[BaseException] = []

    def job() -> None:
        try:
            barrier.wait()
            run_yearly_grants(2026)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert [bucket(e, "reserve") for e in elders] == [600] * 4
    assert Transaction.objects.filter(idempotency_key__startswith="yearly-grant:2026:").count() == 4
    assert ledger_problems(world.bank.pk) == []


# --- the guarantee (刚性兑付) ----------------------------------------------------------------------------------


def _waiting_order(world: World, item: ServiceItem, *, waited: dt.timedelta, now: dt.datetime) -> Order:
    order = order_actions.do_create_order(
        None,
        recipient=fresh(world.members["recipient"]),
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=90,
        payer="recipient",
        channel="staff",
    )
    Order.objects.filter(pk=order.pk).update(created_at=now - waited)
    return Order.objects.get(pk=order.pk)


def _emergency_income(world: World, org: Org, amount: str) -> None:
    do_record_entry(
        world.users["head_office_admin"],
        org,
        EntryInput(
            direction="income", amount=amount, occurred_on=timezone.localdate(), source="government", fund="emergency"
        ),
    )


GUARANTEE = {"guarantee_after_days": 3, "guarantee_yuan_per_hour": 60, "guarantee_provider": "鲁南家政服务有限公司"}


def test_no_guarantee_by_default(world: World, cleaning: ServiceItem) -> None:
    now = timezone.now()
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    _emergency_income(world, world.community, "500")
    order = _waiting_order(world, cleaning, waited=dt.timedelta(days=300), now=now)
    assert run_guarantee(now).served == []
    assert Order.objects.get(pk=order.pk).state == "requested" and not FundEntry.objects.filter(order=order).exists()


def test_an_order_is_bought_at_n_days_not_a_moment_before(world: World, cleaning: ServiceItem) -> None:
    set_rules(world, **GUARANTEE)
    recipient = world.members["recipient"]
    ledger.do_adjustment(None, member=recipient, minutes=600, bucket="reserve", reason="开户")
    _emergency_income(world, world.community, "500")
    now = timezone.now()
    almost = _waiting_order(world, cleaning, waited=dt.timedelta(days=3) - dt.timedelta(microseconds=1), now=now)
    exactly = _waiting_order(world, cleaning, waited=dt.timedelta(days=3), now=now)
    subsidy = _waiting_order(world, cleaning, waited=dt.timedelta(days=30), now=now)
    Order.objects.filter(pk=subsidy.pk).update(payer="subsidy")  # not paid from stored time: not guaranteed
    report = run_guarantee(now)
    assert report.served == [exactly.pk] and report.refused == {}
    assert Order.objects.get(pk=almost.pk).state == "requested"
    assert Order.objects.get(pk=subsidy.pk).state == "requested"
    bought = Order.objects.get(pk=exactly.pk)
    assert (bought.state, bought.credited_minutes, bought.volunteer_id) == ("confirmed", 90, None)
    entry = FundEntry.objects.get(order=exactly)
    assert (entry.fund, entry.kind, entry.amount, entry.provider, entry.org_id) == (
        "emergency",
        "market_services",
        Decimal("90.00"),  # 60 yuan an hour for 90 planned minutes
        "鲁南家政服务有限公司",
        world.community.pk,
    )
    assert "刚性兑付" in entry.description
    assert bucket(recipient, "reserve") == 600 - 90  # its 90 minutes (ordinary, x1) were redeemed
    assert exactly.events.filter(action="buy-service").count() == 1
    # Run again: nothing bought twice; the other order is bought once it has waited its 3 days.
    assert run_guarantee(now).served == []
    assert run_guarantee(now + dt.timedelta(microseconds=1)).served == [almost.pk]
    assert FundEntry.objects.filter(order__in=[almost, exactly]).count() == 2
    assert ledger_problems(world.bank.pk) == []


def test_the_guarantee_climbs_to_a_fund_that_can_pay_and_reports_what_it_cannot_buy(
    world: World, cleaning: ServiceItem
) -> None:
    set_rules(world, **GUARANTEE)
    recipient = world.members["recipient"]
    ledger.do_adjustment(None, member=recipient, minutes=90, bucket="reserve", reason="开户")
    now = timezone.now()
    _emergency_income(world, world.community, "10")  # too little here
    _emergency_income(world, world.bank, "100")
    first = _waiting_order(world, cleaning, waited=dt.timedelta(days=4), now=now)
    second = _waiting_order(world, cleaning, waited=dt.timedelta(days=4), now=now)
    report = run_guarantee(now)
    assert report.served == [first.pk]
    assert FundEntry.objects.get(order=first).org_id == world.bank.pk
    # The second: the recipient's minutes are spent; nothing is bought, nothing half-written.
    assert report.refused == {second.pk: "insufficient_balance"}
    assert Order.objects.get(pk=second.pk).state == "requested" and not FundEntry.objects.filter(order=second).exists()
    assert held(recipient) == 0
    # A star rule the recipient does not meet is refused the same way.
    set_rules(world, star_thresholds_hours=[1], spend_min_star_level=1)
    ledger.do_adjustment(None, member=recipient, minutes=90, bucket="reserve", reason="补")
    assert run_guarantee(now).refused == {second.pk: "below_star_level"}
    assert ledger_problems(world.bank.pk) == []


def test_the_guarantee_runs_as_a_command_and_a_task(world: World, cleaning: ServiceItem) -> None:
    set_rules(world, **GUARANTEE)
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    _emergency_income(world, world.community, "500")
    now = timezone.now()
    order = _waiting_order(world, cleaning, waited=dt.timedelta(days=5), now=now)
    out = StringIO()
    call_command("guarantee_orders", stdout=out)
    assert f"bought 1 orders: [{order.pk}]" in out.getvalue()
    assert guarantee_orders.enqueue().return_value == {"served": [], "refused": {}}
    assert FundEntry.objects.filter(order=order).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_guarantee_jobs_at_once_buy_each_order_once() -> None:
    from tests.conftest import build_world

    if not is_postgres():
        pytest.skip("races are tested on PostgreSQL")
    world = build_world()
    item = do_create_service_item(
        None,
        head_office=world.bank,
        name="家庭保洁",
        category="mutual_care",
        tier="ordinary",
        requires_certificate=None,
    )
    set_rules(world, **GUARANTEE)
    recipient = world.members["recipient"]
    ledger.do_adjustment(None, member=recipient, minutes=600, bucket="reserve", reason="开户")
    _emergency_income(world, world.community, "500")
    now = timezone.now()
    orders = [_waiting_order(world, item, waited=dt.timedelta(days=4), now=now) for _ in range(2)]
    barrier = threading.Barrier(3)
    served: list[int] = []
    errors: list[BaseException] = []

    def job() -> None:
        try:
            barrier.wait()
            served.extend(run_guarantee(now).served)
        except BaseException as exc:
            errors.append(exc)
        finally:
            close_old_connections()

    threads = [threading.Thread(target=job) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert errors == []
    assert sorted(served) == sorted(o.pk for o in orders)
    assert FundEntry.objects.filter(order__in=orders).count() == 2
    assert bucket(recipient, "reserve") == 600 - 2 * 90
    assert ledger_problems(world.bank.pk) == []
