"""What a walk-through of a station's day found broken (issue 13): each fixed, each told here as a story."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from tests.conftest import World, error_code, make_member, web_client
from tests.evaluation_helpers import cleaning, credit, served_order
from timebank.audit.models import AuditEntry
from timebank.evaluation import actions as evaluation_actions
from timebank.evaluation.models import Award, AwardKind
from timebank.ledger import actions as ledger_actions
from timebank.ledger.management.commands.settle import last_boundary
from timebank.ledger.models import Account, AccountKind, Settlement, SettlementStatus
from timebank.ledger.settlement import cutoff_for, run_settlement, start_settlement
from timebank.members.models import Member
from timebank.orders import actions as order_actions
from timebank.orders.models import Order
from timebank.orgs.models import Rules

# 1. The scheduled settlement ------------------------------------------------------------------------------------


def test_settle_due_skips_a_bank_settled_later_and_settles_the_rest(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """台儿庄 settled by hand up to today, after its due boundary; 南充 has not settled: the scheduled run says it
    skips 台儿庄 and settles 南充 (it stopped at 台儿庄 with an error, and 南充 was never settled)."""
    today = timezone.localdate()
    settled, _ = start_settlement(None, world.bank, today)
    run_settlement(settled)
    period = Rules.objects.values_list("settlement_period", flat=True).get(head_office=world.other_bank)
    due = last_boundary(today, period)
    with mock.patch("django.utils.timezone.now", return_value=cutoff_for(due) - dt.timedelta(hours=1)):
        ledger_actions.do_deposit(None, volunteer=world.members["stranger"], minutes=90, payer="subsidy")

    call_command("settle", "--due")

    out = capsys.readouterr().out
    assert f"{world.bank.name}" in out and "skipped" in out
    other = Settlement.objects.get(head_office=world.other_bank)
    assert (other.period_end, other.status, other.moved_minutes) == (due, SettlementStatus.DONE, 90)
    assert "90 minutes moved" in out
    # 台儿庄 keeps its one settlement; nothing earlier was opened behind it.
    assert list(Settlement.objects.filter(head_office=world.bank).values_list("pk", flat=True)) == [settled.pk]


# 2. An order the donation pool cannot pay -----------------------------------------------------------------------


def _completed_pool_order(world: World) -> Order:
    order = order_actions.do_create_order(
        None,
        recipient=world.members["recipient"],
        service_item=cleaning(world),
        scheduled_start=timezone.now() - dt.timedelta(hours=2),
        planned_minutes=60,
        payer="pool",
        channel="staff",
    )
    order_actions.do_dispatch(None, order, world.members["volunteer"])
    order_actions.do_accept(None, order)
    order_actions.do_check_in(None, order)
    Order.objects.filter(pk=order.pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=60))
    return order_actions.do_check_out(None, order)


def _earned(member: Member) -> int:
    return Account.objects.get(member=member, kind=AccountKind.EARNED).balance_minutes


def test_staff_confirm_a_pool_order_the_pool_cannot_pay_from_the_subsidy(world: World) -> None:
    order = _completed_pool_order(world)
    url = f"/api/v1/orders/{order.pk}"
    staff = world.api("staff")
    # The empty pool refuses, as the contract says (409 and nothing moves), and staff may not cancel it.
    refused = staff.post(f"{url}/confirm")
    assert refused.status_code == 409 and error_code(refused) == "insufficient_pool"
    assert staff.post(f"{url}/cancel", {"reason": "捐赠池不够"}).status_code == 409
    # Only staff choose the subsidy (as when ordering): the recipient's side and the volunteer may not.
    for persona in ("recipient", "relative"):
        denied = world.api(persona).post(f"{url}/confirm", {"payer": "subsidy"})
        assert denied.status_code == 403 and error_code(denied) == "payer_not_allowed", persona
    assert staff.post(f"{url}/confirm", {"payer": "pool"}).status_code == 422
    assert staff.post(f"{url}/confirm", {"payer": 7}).status_code == 422
    outsider = world.api("staff_next").post(f"{url}/confirm", {"payer": "subsidy"})
    assert outsider.status_code == 403
    assert Order.objects.get(pk=order.pk).state == "completed"

    before = _earned(world.members["volunteer"])
    done = staff.post(f"{url}/confirm", {"payer": "subsidy"})
    assert done.status_code == 200, done.content
    assert (done.json()["state"], done.json()["payer"]) == ("confirmed", "subsidy")
    assert _earned(world.members["volunteer"]) == before + 60
    entry = AuditEntry.objects.get(action="order.confirm", object_id=str(order.pk))
    assert (entry.data["payer"], entry.data["payer_was"]) == ("subsidy", "pool")
    assert entry.actor_id == world.users["staff"].pk


def test_staff_resolve_a_disputed_pool_order_from_the_subsidy(world: World) -> None:
    order = _completed_pool_order(world)
    order_actions.do_dispute(world.users["recipient"], order, reason="时间不对")
    done = world.api("staff").post(f"/api/v1/orders/{order.pk}/confirm", {"payer": "subsidy", "actual_minutes": 45})
    assert done.status_code == 200, done.content
    assert (done.json()["state"], done.json()["payer"], done.json()["actual_minutes"]) == ("confirmed", "subsidy", 45)


def test_staff_confirm_a_pool_order_from_the_subsidy_on_the_order_page(world: World) -> None:
    order = _completed_pool_order(world)
    client = web_client(world.users["staff"])
    page = client.get(reverse("web:staff_order", args=[order.pk]))
    assert page.status_code == 200 and 'name="payer"' in page.content.decode()
    url = reverse("web:staff_order_action", args=[order.pk, "confirm"])
    refused = client.post(url, {"actual_minutes": 60, "reason": "", "payer": ""})
    assert refused.status_code == 422 and Order.objects.get(pk=order.pk).state == "completed"
    assert client.post(url, {"actual_minutes": 60, "payer": "pool"}).status_code == 422  # not a choice
    done = client.post(url, {"actual_minutes": 60, "reason": "", "payer": "subsidy"})
    assert done.status_code == 302
    assert Order.objects.values_list("state", "payer").get(pk=order.pk) == ("confirmed", "subsidy")


# 3. A complaint filed by one community's staff ------------------------------------------------------------------


def test_a_complaint_about_another_communitys_volunteer_stays_with_its_filer(world: World) -> None:
    """顺河社区's staff take a complaint about an order of theirs that 赵阿姨 (泥沟村) served: they, their branch
    and 泥沟村 (the volunteer's community) all see it and follow it up; another bank does not."""
    order = served_order(world, world.members["neighbour"])
    filed = world.api("staff").post("/api/v1/complaints", {"order_id": order.pk, "text": "服务时间不足"})
    assert filed.status_code == 201, filed.content
    cid = filed.json()["id"]
    assert filed.json()["volunteer_id"] == world.members["neighbour"].pk
    for persona in ("staff", "branch_admin", "staff_next"):
        api = world.api(persona)
        assert cid in [c["id"] for c in api.get("/api/v1/complaints").json()["items"]], persona
        assert api.get(f"/api/v1/complaints/{cid}").status_code == 200, persona
        assert api.post(f"/api/v1/complaints/{cid}/follow-ups", {"note": "已核实"}).status_code == 201, persona
    page = web_client(world.users["staff"]).get("/evaluation/complaints/")
    assert page.status_code == 200 and f"/evaluation/complaints/{cid}/" in page.content.decode()
    assert web_client(world.users["staff"]).get(f"/evaluation/complaints/{cid}/").status_code == 200
    assert world.api("other_bank_staff").get(f"/api/v1/complaints/{cid}").status_code == 404
    assert cid not in [c["id"] for c in world.api("other_bank_admin").get("/api/v1/complaints").json()["items"]]
    # Whether it is upheld is still for the admins of the volunteer's side.
    denied = world.api("branch_admin").post(f"/api/v1/complaints/{cid}/decide", {"outcome": "upheld", "note": "成立"})
    assert denied.status_code == 403 and error_code(denied) == "not_admin"
    entry = AuditEntry.objects.get(action="evaluation.complaint.file", object_id=str(cid))
    assert entry.data["filed_in"] == world.community.pk


# 4. Award ranks after re-ranking --------------------------------------------------------------------------------


def test_re_ranking_awards_gives_each_one_rank_without_duplicates(world: World) -> None:
    evaluation_actions.do_seed_defaults(None, world.bank)
    kind = AwardKind.objects.get(bank=world.bank, code="outstanding_volunteer")  # by credited hours
    a, b = world.members["volunteer"], world.members["neighbour"]
    c = make_member(world.community, "孙志愿")
    credit(world, b, 300)
    credit(world, a, 200)
    credit(world, c, 100)
    year = timezone.localdate().year
    first = evaluation_actions.do_rank_awards(None, kind, year)
    assert [(x.member_id, x.rank) for x in first] == [(b.pk, 1), (a.pk, 2), (c.pk, 3)]
    evaluation_actions.do_confirm_award(None, first[1])  # a is a winner at rank 2
    credit(world, c, 400)  # c now leads: c 500, b 300, a 200

    again = evaluation_actions.do_rank_awards(None, kind, year)
    ranks = [x.rank for x in again]
    assert sorted(ranks) == [1, 2, 3] and len({x.member_id for x in again}) == 3
    # The confirmed winner keeps its place; the nominations fill the other places in the new order.
    assert [(x.member_id, x.rank, x.status) for x in again] == [
        (c.pk, 1, "nominated"),
        (a.pk, 2, "confirmed"),
        (b.pk, 3, "nominated"),
    ]
    # Stable: ranking the same data again changes nothing.
    third = evaluation_actions.do_rank_awards(None, kind, year)
    assert [(x.member_id, x.rank, x.status) for x in third] == [(x.member_id, x.rank, x.status) for x in again]
    assert Award.objects.filter(kind=kind, year=year).count() == 3
