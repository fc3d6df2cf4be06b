"""Finding 7's report: large credits show up on the branch and head-office dashboards (异常提醒).

A volunteer credited more than the daily limit, a member past the yearly cap and a large service record that is
no activity's attendance are listed — each only to staff whose subtree holds that member."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import World, web_client
from tests.test_orders import items as items
from timebank.catalogue.models import ServiceItem
from timebank.orders.records import do_service_record
from timebank.orgs.models import Rules
from timebank.reports.actions import do_update_risk_rules


def _record(world: World, who: str, item: ServiceItem, minutes: int) -> None:
    do_service_record(None, volunteer=world.members[who], service_item=item, minutes=minutes, served_at=timezone.now())


@pytest.fixture
def credited(world: World, items: dict[str, ServiceItem]) -> World:
    """Today: 3 × 300 min to the volunteer (顺河社区), 700 + 600 min to the neighbour (泥沟村); yearly cap 20 h."""
    # The records are posted with approvals off: this file is about the report, not about four eyes.
    Rules.objects.filter(head_office=world.bank).update(approval_threshold_minutes=None)
    for _ in range(3):
        _record(world, "volunteer", items["cleaning"], 300)
    _record(world, "neighbour", items["cleaning"], 700)
    _record(world, "neighbour", items["cleaning"], 600)
    Rules.objects.filter(head_office=world.bank).update(approval_threshold_minutes=600)
    do_update_risk_rules(None, world.bank, {"anomaly_yearly_hours": 20})
    return world


def _report(world: World, persona: str, org_id: int, **params: str) -> dict:
    response = world.api(persona).get("/api/v1/anomalies", {"org_id": org_id, **params})
    assert response.status_code == 200, response.content
    return response.json()


def _kinds(report: dict, world: World) -> set[tuple[str, str, int]]:
    names = {m.pk: key for key, m in world.members.items()}
    return {(i["kind"], names[i["member_id"]], i["minutes"]) for i in report["items"]}


def test_finding_7_large_credits_show_in_the_anomaly_report(credited: World) -> None:
    w = credited
    assert _kinds(_report(w, "head_office_admin", w.bank.pk), w) == {
        ("daily_over", "volunteer", 900),
        ("daily_over", "neighbour", 1300),
        ("yearly_over", "neighbour", 1300),
        ("record_without_source", "neighbour", 700),
    }
    # A branch sees its own subtree only; so does a community's staff.
    assert _kinds(_report(w, "branch_admin", w.branch.pk), w) == {("daily_over", "volunteer", 900)}
    assert _kinds(_report(w, "staff_next", w.community2.pk), w) == {
        ("daily_over", "neighbour", 1300),
        ("yearly_over", "neighbour", 1300),
        ("record_without_source", "neighbour", 700),
    }


def test_the_limits_come_from_the_head_offices_thresholds(credited: World) -> None:
    w = credited
    do_update_risk_rules(None, w.bank, {"anomaly_daily_hours": 16, "anomaly_yearly_hours": 1000})
    Rules.objects.filter(head_office=w.bank).update(approval_threshold_minutes=None)  # falls back to 600
    assert _kinds(_report(w, "head_office_admin", w.bank.pk), w) == {
        ("daily_over", "neighbour", 1300),
        ("record_without_source", "neighbour", 700),
    }
    Rules.objects.filter(head_office=w.bank).update(approval_threshold_minutes=800)
    kinds = {i["kind"] for i in _report(w, "head_office_admin", w.bank.pk)["items"]}
    assert "record_without_source" not in kinds


def test_a_period_without_the_credits_shows_only_the_year(credited: World) -> None:
    w = credited
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    if yesterday.year != timezone.localdate().year:
        pytest.skip("on 1 January yesterday's year holds none of today's credits")
    report = _report(w, "head_office_admin", w.bank.pk, **{"from": str(yesterday), "to": str(yesterday)})
    assert _kinds(report, w) == {("yearly_over", "neighbour", 1300)}


@pytest.mark.parametrize("persona", ["other_bank_admin", "volunteer", "recipient", "anonymous", "staff"])
def test_only_staff_of_the_subtree_read_it(credited: World, persona: str) -> None:
    response = credited.api(persona).get("/api/v1/anomalies", {"org_id": credited.bank.pk})
    assert response.status_code in (401, 403, 404)


@pytest.mark.parametrize("params", [{"from": "2026-02-30"}, {"from": "x"}, {"from": "2026-05-02", "to": "2026-05-01"}])
def test_bad_periods_are_refused(credited: World, params: dict[str, str]) -> None:
    response = credited.api("head_office_admin").get("/api/v1/anomalies", {"org_id": credited.bank.pk, **params})
    assert response.status_code in (400, 422)


def test_the_dashboards_list_the_anomalies(credited: World) -> None:
    w = credited
    html = web_client(w.users["head_office_admin"]).get(f"/manage/dashboard/{w.bank.pk}/").content.decode()
    assert 'id="anomalies"' in html
    assert html.count('class="anomaly-daily_over"') == 2
    assert html.count('class="anomaly-yearly_over"') == 1
    assert html.count('class="anomaly-record_without_source"') == 1
    branch = web_client(w.users["branch_admin"]).get(f"/manage/dashboard/{w.branch.pk}/").content.decode()
    assert branch.count('class="anomaly-daily_over"') == 1
    assert "anomaly-yearly_over" not in branch
