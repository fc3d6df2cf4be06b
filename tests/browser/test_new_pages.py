"""The newer pages in a real browser, on the demo world, as the people they are for: teams and activities for a
team leader and a team member, dashboards for the head office and a community's staff, evaluation and awards for
the head office, notices, the certificate download and its public check page. At 360 px and 1280 px each page
must fit its width, draw its charts, and raise no script error or Content-Security-Policy refusal; large text
stays on while a volunteer moves between the new pages, and the English switch holds on them. Every page leaves
a screenshot in test-artifacts/new-*.png."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from tests.browser.conftest import DESKTOP, PHONE, Visitor
from timebank.demo.generator import BANK1, DEMO_PASSWORD, generate
from timebank.exports.certificates import check_code
from timebank.exports.models import IssuedCertificate
from timebank.members.models import Member
from timebank.notices.models import Notice
from timebank.orgs.models import Org
from timebank.teams.models import Activity, ActivityState, Team, TeamRole

pytestmark = pytest.mark.django_db(transaction=True)

VIEWPORTS = (PHONE, DESKTOP)
# Playwright's init scripts run before the page's own and are not bound by its CSP: they only listen.
LISTEN_FOR_CSP = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(e.violatedDirective + " " + (e.blockedURI || "inline"));
});
"""


@dataclass
class Demo:
    bank: Org
    community: Org
    leaders_team: Team
    members_team: Team
    activity: Activity
    notice: Notice


@pytest.fixture
def demo(transactional_db: None) -> Demo:
    generate(members=30, seed=7)
    leader = Member.objects.get(user__username="volunteer")
    relative = Member.objects.get(user__username="relative")
    led = Team.objects.get(memberships__member=leader, memberships__role=TeamRole.LEADER)
    joined = Team.objects.filter(memberships__member=relative).exclude(pk=led.pk).first()
    activity = Activity.objects.filter(team=led, state=ActivityState.PUBLISHED).first()
    notice = Notice.objects.filter(org__name=BANK1).order_by("-pk").first()
    assert joined is not None and activity is not None and notice is not None  # the demo has each of them
    return Demo(Org.objects.get(name=BANK1), leader.home_org, led, joined, activity, notice)


def tab_for(visit: Any, viewport: dict[str, int], username: str | None = None, locale: str = "zh-CN") -> Visitor:
    tab: Visitor = visit(viewport, locale=locale)
    tab.page.add_init_script(LISTEN_FOR_CSP)
    if username and locale.startswith("zh"):
        tab.login(username, DEMO_PASSWORD)
    elif username:
        tab.go("/login/")
        tab.page.get_by_label("Username").fill(username)
        tab.page.get_by_label("Password").fill(DEMO_PASSWORD)
        tab.page.locator("main").get_by_role("button", name="Log in").click()
        tab.page.wait_for_url(tab.base + "/**")
    return tab


def look_at(tab: Visitor, path: str, name: str, *, charts: bool = False) -> None:
    """Open `path` and check what a person would notice: it fits the width, its charts drew, nothing refused."""
    tab.go(path)
    tab.page.wait_for_load_state("networkidle")
    width = tab.page.viewport_size["width"]
    where = f"{path} at {width} px"
    assert tab.page.title().strip(), where
    if charts:
        tab.page.wait_for_selector(".chart canvas, .chart svg")
        figures = tab.page.locator("figure.chart-figure").count()
        drawn = tab.page.locator(".chart:not([hidden]) canvas, .chart:not([hidden]) svg").count()
        assert figures >= 1 and drawn >= 1, where
    overflow = tab.page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{where}: {overflow} px wider than the window"
    assert tab.page.evaluate("window.__csp") == [], where
    assert tab.errors == [], where
    tab.shot(f"new-{name}-{width}")


def test_teams_and_activities_for_a_leader_and_a_member(demo: Demo, visit: Any) -> None:
    for viewport in VIEWPORTS:
        leader = tab_for(visit, viewport, "volunteer")
        look_at(leader, "/teams/", "leader-teams")
        look_at(leader, f"/teams/{demo.leaders_team.pk}/", "leader-team")
        look_at(leader, "/activities/", "leader-activities")
        look_at(leader, f"/activities/{demo.activity.pk}/", "leader-activity")
        look_at(leader, "/activities/new/", "leader-activity-new")
        member = tab_for(visit, viewport, "relative")
        look_at(member, "/teams/", "member-teams")
        look_at(member, f"/teams/{demo.members_team.pk}/", "member-team")
        look_at(member, "/activities/", "member-activities")
        look_at(member, f"/activities/{demo.activity.pk}/", "member-activity")


def test_dashboards_for_the_head_office_and_a_community(demo: Demo, visit: Any) -> None:
    for viewport in VIEWPORTS:
        office = tab_for(visit, viewport, "ho_admin")
        look_at(office, f"/manage/dashboard/{demo.bank.pk}/", "head-office-dashboard", charts=True)
        look_at(office, f"/manage/risk/{demo.bank.pk}/", "head-office-risk", charts=True)
        staff = tab_for(visit, viewport, "staff")
        look_at(staff, f"/manage/today/{demo.community.pk}/", "staff-today")
        look_at(staff, f"/manage/dashboard/{demo.community.pk}/", "staff-dashboard", charts=True)


def test_evaluation_awards_and_notices_for_the_head_office(demo: Demo, visit: Any) -> None:
    for viewport in VIEWPORTS:
        office = tab_for(visit, viewport, "ho_admin")
        look_at(office, "/evaluation/", "head-office-evaluation")
        look_at(office, f"/evaluation/awards/{demo.bank.pk}/", "head-office-awards")
        look_at(office, f"/evaluation/settings/{demo.bank.pk}/", "head-office-evaluation-settings")
        look_at(office, "/evaluation/complaints/", "head-office-complaints")
        look_at(office, "/evaluation/penalties/", "head-office-penalties")
        look_at(office, "/notices/", "head-office-notices")
        look_at(office, "/notices/new/", "head-office-notice-new")
        volunteer = tab_for(visit, viewport, "volunteer")
        look_at(volunteer, "/notices/", "volunteer-notices")
        look_at(volunteer, f"/notices/{demo.notice.pk}/", "volunteer-notice")
        look_at(volunteer, "/evaluation/me/", "volunteer-stars")


def test_certificate_download_and_the_public_check(demo: Demo, visit: Any) -> None:
    volunteer = tab_for(visit, PHONE, "volunteer")
    look_at(volunteer, "/me/time/", "volunteer-downloads")
    # The period comes filled in (this year so far) in a date picker the browser accepts.
    assert volunteer.page.locator("#id_cert-start").input_value().endswith("-01-01")
    with volunteer.page.expect_download(timeout=30_000) as download:
        volunteer.page.get_by_role("button", name="下载我的志愿服务证明").click()
    assert download.value.suggested_filename.endswith(".pdf")
    cert = IssuedCertificate.objects.get(member__user__username="volunteer")
    assert download.value.suggested_filename == f"certificate-{cert.serial}.pdf"
    for viewport in VIEWPORTS:
        anyone = tab_for(visit, viewport)
        look_at(anyone, f"/verify/{cert.serial}/?c={check_code(cert)}", "public-verify")
        body = anyone.page.locator("main").inner_text()
        assert cert.serial in body and "王秀英" not in body  # the name is masked on the public page


def test_large_text_stays_on_across_the_new_pages(demo: Demo, visit: Any) -> None:
    tab = tab_for(visit, PHONE, "volunteer")
    tab.go("/teams/")
    normal = tab.page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)")
    tab.open_menu().get_by_role("button", name=re.compile("大字模式")).click()
    tab.page.wait_for_selector("html.large-text")
    assert tab.page.evaluate("parseFloat(getComputedStyle(document.documentElement).fontSize)") >= normal * 1.2
    # Move on by clicking, as a person would; the setting holds and nothing spills sideways.
    tab.page.locator("main").get_by_role("link", name=demo.leaders_team.name).first.click()
    tab.page.wait_for_url(f"**/teams/{demo.leaders_team.pk}/")
    for path, name in (
        (f"/teams/{demo.leaders_team.pk}/", "large-text-team"),
        ("/activities/", "large-text-activities"),
        (f"/activities/{demo.activity.pk}/", "large-text-activity"),
        ("/notices/", "large-text-notices"),
        ("/evaluation/me/", "large-text-stars"),
    ):
        look_at(tab, path, name)
        assert tab.page.locator("html").get_attribute("class") == "large-text", path
    tab.open_menu().get_by_role("button", name=re.compile("大字模式")).click()
    tab.page.wait_for_selector("html:not(.large-text)")


def test_the_english_switch_on_the_new_pages(demo: Demo, visit: Any) -> None:
    tab = tab_for(visit, DESKTOP, "ho_admin")
    tab.go(f"/manage/dashboard/{demo.bank.pk}/")
    tab.page.get_by_role("button", name="English").click()
    tab.page.wait_for_selector('html[lang="en"]')
    for path, name, charts in (
        (f"/manage/dashboard/{demo.bank.pk}/", "en-dashboard", True),
        ("/evaluation/", "en-evaluation", False),
        (f"/evaluation/awards/{demo.bank.pk}/", "en-awards", False),
        ("/teams/", "en-teams", False),
        ("/activities/", "en-activities", False),
        ("/notices/", "en-notices", False),
    ):
        look_at(tab, path, name, charts=charts)
        assert tab.page.locator("html").get_attribute("lang") == "en", path
        heading = tab.page.locator("h1").first.inner_text()
        assert not re.search(r"[\u3400-\u9fff]", heading.replace(BANK1, "")), (path, heading)
    phone = tab_for(visit, PHONE, "volunteer", locale="en-GB")
    look_at(phone, "/teams/", "en-volunteer-teams")
    assert phone.page.locator("html").get_attribute("lang") == "en"
    tab.page.get_by_role("button", name="中文").click()
    tab.page.wait_for_selector('html[lang="zh-hans"]')
