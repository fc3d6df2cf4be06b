"""Dashboards: the head office / branch overview, the sub-branch's day and the risk page; their figures agree
with the stats, each chart carries its numbers in a table, and only staff of the subtree see them."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from django.utils import timezone

from tests.conftest import World, web_client
from tests.test_orders import items as items
from tests.test_orders import run_loop
from timebank.audit.models import AuditEntry
from timebank.catalogue.models import ServiceItem
from timebank.needs.actions import do_create_need
from timebank.orders.actions import do_create_order
from timebank.orders.models import Order
from timebank.orders.records import do_service_record
from timebank.reports import dashboards as dash
from timebank.reports.models import RiskRules
from timebank.reports.stats import compute
from timebank.safety.actions import do_add_certificate, do_add_insurance_policy


@pytest.fixture
def busy(world: World, items: dict[str, ServiceItem]) -> World:
    """Two confirmed orders in 顺河社区, a service record in 泥沟村, an overdue order, a need without an order,
    insurance and a certificate that end soon."""
    run_loop(world, items["cleaning"], 120, payer="subsidy")
    run_loop(world, items["repair"], 60, payer="subsidy")
    do_service_record(
        None, volunteer=world.members["neighbour"], service_item=items["cleaning"], minutes=45, served_at=timezone.now()
    )
    late = do_create_order(
        None,
        recipient=world.members["recipient"],
        service_item=items["cleaning"],
        scheduled_start=dt.datetime.combine(timezone.localdate(), dt.time(12), tzinfo=timezone.get_current_timezone()),
        planned_minutes=30,
        payer="subsidy",
        channel="staff",
    )
    Order.objects.filter(pk=late.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    do_create_need(None, recipient=world.members["recipient"], level="essential", found_by="home_visit", notes="洗澡")
    today = timezone.localdate()
    do_add_insurance_policy(
        None,
        world.members["volunteer"],
        insurer="人保",
        policy_number="P-0001",
        starts_on=today - dt.timedelta(days=300),
        ends_on=today + dt.timedelta(days=10),
    )
    do_add_certificate(
        None,
        world.members["volunteer"],
        kind="counselling",
        issuer="心理协会",
        valid_from=today - dt.timedelta(days=300),
        valid_until=today + dt.timedelta(days=5),
    )
    return world


def chart_data(html: str, chart_id: str) -> dict:
    found = re.search(rf'<script id="{chart_id}-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, chart_id
    return json.loads(found.group(1))


def test_overview_figures_agree_with_the_stats(busy: World) -> None:
    w = busy
    today = timezone.localdate()
    start = today.replace(day=1) - dt.timedelta(days=300)
    stats = compute(w.bank, start, today)
    services, credited = dash.activity(w.bank, start, today)
    assert sum(sum(s["data"]) for s in services.series) == stats.services_completed == 3
    assert stats.credited_minutes == 120 + 120 + 45
    assert sum(credited.series[0]["data"]) == dash.hours(stats.credited_minutes) == 4.8  # one month
    categories = dash.by_category(w.bank, start, today)
    assert categories.labels == ["互助养老"]
    assert {s["name"]: s["data"] for s in categories.series} == {"普通服务": [2], "技术服务": [1], "专业服务": [0]}
    assert sum(dash.fulfilment(w.bank, start, today).series[0]["data"]) == 2
    subs = dash.sub_orgs(w.bank, start, today)
    assert sorted(s.org.name for s in subs) == sorted([w.branch.name, w.branch2.name])
    assert sum(s.members for s in subs) == stats.members
    assert sum(s.credited_minutes for s in subs) == stats.credited_minutes
    assert sum(s.outstanding_minutes for s in subs) == stats.outstanding_minutes
    assert sum(s.overdue for s in subs) == 1
    top = dash.top_volunteers(w.bank, start, today)
    assert [(t.member.name, t.credited_minutes, t.services) for t in top] == [("王秀英", 240, 2), ("赵阿姨", 45, 1)]
    if dash.star_level_function() is not None:  # the evaluation app's star levels, when it is there
        assert [t.star_level for t in top] == [0, 0]  # 4 and 0.75 hours: below the first threshold (100 h)
    filled = dash.unfilled(w.bank, start, today)
    assert (filled["orders"], filled["unfilled"], filled["overdue"], filled["waiting"]) == (3, 1, 1, 1)


def test_head_office_page_shows_charts_with_tables(busy: World) -> None:
    client = web_client(busy.users["head_office_admin"])
    resp = client.get(f"/manage/dashboard/{busy.bank.pk}/")
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "web/vendor/echarts.min.js" in html and "web/dashboards.js" in html
    assert "cdn" not in html.lower()
    spec = chart_data(html, "chart-activity")
    assert sum(sum(s["data"]) for s in spec["series"]) == 3
    # Every chart has its table, and the sub-orgs, the anomalies and the top volunteers are listed.
    assert html.count('class="chart"') == html.count("<table") - 3
    assert busy.branch.name in html and "王秀英" in html and "超时未派" in html
    assert '<span class="big-number">4.8</span>' in html  # credited hours: (120 + 120 + 45) / 60
    # A period and a bad period (the page still answers, with the error shown).
    assert (
        client.get(
            f"/manage/dashboard/{busy.bank.pk}/", {"date_from": "2020-01-01", "date_to": "2020-12-31"}
        ).status_code
        == 200
    )
    bad = client.get(f"/manage/dashboard/{busy.bank.pk}/", {"date_from": "2026-05-01", "date_to": "2026-01-01"})
    assert bad.status_code == 200 and "开始日期不能晚于结束日期" in bad.content.decode()


def test_sub_branch_day(busy: World) -> None:
    client = web_client(busy.users["staff"])
    home = client.get("/staff/")
    assert f"/manage/today/{busy.community.pk}/" in home.content.decode()
    assert client.get("/manage/dashboard/")["Location"] == f"/manage/today/{busy.community.pk}/"
    html = client.get(f"/manage/today/{busy.community.pk}/").content.decode()
    assert "洗澡" in html  # the need without an order
    assert "王秀英" in html  # insurance and certificate end soon
    day = dash.today_for(busy.community)
    # The late order is for noon today; the two served orders were booked half an hour ahead (check-in opens an
    # hour before the start), so they are today's too unless midnight came in between.
    served_today = Order.objects.filter(state="reviewed", scheduled_start__date=timezone.localdate()).count()
    assert day.orders_count == 1 + served_today and day.overdue_count == 1 and day.needs_count == 1
    assert day.insurance_count == 1 and day.certificates_count == 1
    # 泥沟村 has none of it.
    other = dash.today_for(busy.community2)
    assert (other.orders_count, other.overdue_count, other.needs_count, other.certificates_count) == (0, 0, 0, 0)


def test_admins_land_on_the_overview_and_the_nav_links_it(world: World) -> None:
    client = web_client(world.users["head_office_admin"])
    assert client.get("/manage/dashboard/")["Location"] == f"/manage/dashboard/{world.bank.pk}/"
    manage = client.get("/manage/").content.decode()
    assert f"/manage/dashboard/{world.bank.pk}/" in manage and f"/manage/risk/{world.bank.pk}/" in manage
    assert (
        f"/manage/dashboard/{world.branch.pk}/"
        in web_client(world.users["branch_admin"]).get("/manage/").content.decode()
    )
    assert (
        web_client(world.users["branch_admin"]).get("/manage/dashboard/")["Location"]
        == f"/manage/dashboard/{world.branch.pk}/"
    )


@pytest.mark.parametrize(
    ("persona", "path"),
    [
        ("staff", "dashboard/{bank}"),
        ("staff", "risk/{bank}"),
        ("staff_next", "today/{community}"),
        ("branch_admin", "dashboard/{other}"),
        ("other_bank_admin", "dashboard/{bank}"),
        ("other_bank_admin", "today/{community}"),
        ("operator", "dashboard/{community}"),
        ("assessor", "risk/{bank}"),
        ("volunteer", "today/{community}"),
    ],
)
def test_only_staff_of_the_subtree_see_dashboards(world: World, persona: str, path: str) -> None:
    url = "/manage/" + path.format(bank=world.bank.pk, community=world.community.pk, other=world.community2.pk) + "/"
    resp = web_client(world.users[persona]).get(url)
    assert resp.status_code == 403
    assert web_client(None).get(url).status_code == 302
    assert web_client(world.users["head_office_admin"]).get("/manage/dashboard/999999999/").status_code == 404


def test_risk_page_explains_and_head_office_admins_set_thresholds(busy: World) -> None:
    w = busy
    admin = web_client(w.users["head_office_admin"])
    html = admin.get(f"/manage/risk/{w.bank.pk}/").content.decode()
    assert "怎么算的" in html and 'name="max_months_to_honour"' in html
    assert chart_data(html, "chart-ages")["labels"][0] == "40 岁以下"
    assert w.branch.name in html  # the children's table
    english = web_client(w.users["head_office_admin"], lang="en").get(f"/manage/risk/{w.bank.pk}/")
    assert english.status_code == 200
    # A bad value keeps what was typed and writes nothing.
    body = {
        "window_months": "0",
        "default_reserve_age": "60",
        "max_months_to_honour": "12",
        "max_unfilled_percent": "5",
        "max_ageing_percent": "100",
        "anomaly_daily_hours": "10",
        "anomaly_yearly_hours": "800",
    }
    bad = admin.post(f"/manage/risk/{w.bank.pk}/", body)
    assert bad.status_code == 200 and not RiskRules.objects.exists()
    body["window_months"] = "3"
    ok = admin.post(f"/manage/risk/{w.bank.pk}/", body)
    assert ok.status_code == 302
    rules = RiskRules.objects.get(head_office=w.bank)
    assert (rules.window_months, rules.max_months_to_honour, rules.max_unfilled_percent) == (3, 12, 5)
    assert (rules.anomaly_daily_hours, rules.anomaly_yearly_hours) == (10, 800)
    assert AuditEntry.objects.filter(action="risk_rules.update").count() == 1
    # Branch admins see the page and the thresholds, but no form, and cannot post.
    branch = web_client(w.users["branch_admin"])
    page = branch.get(f"/manage/risk/{w.branch.pk}/").content.decode()
    assert 'name="max_months_to_honour"' not in page and "12" in page
    assert branch.post(f"/manage/risk/{w.branch.pk}/", body).status_code == 403
    # The unfilled share (1 of 3 orders) is over the new 5% line.
    assert "没有派出志愿者" in admin.get(f"/manage/dashboard/{w.bank.pk}/").content.decode()
