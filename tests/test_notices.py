"""通知公告: notices reach exactly their audience and subtree; publishing, withdrawing, reading; automatic
notices on new rules and a finished settlement; the home-page panels."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import PERSONAS, World, error_code, web_client
from timebank.audit.models import AuditEntry
from timebank.notices.access import reaching_notices
from timebank.notices.actions import do_publish_notice
from timebank.notices.models import Notice, NoticeRead, NoticeSource

pytestmark = pytest.mark.django_db

PLACES = ("ho", "branch", "sub", "other")
AUDIENCES = ("staff", "volunteers", "everyone")


def _org(world: World, place: str) -> Any:
    return {"ho": world.bank, "branch": world.branch, "sub": world.community, "other": world.other_bank}[place]


def _publish_all(world: World) -> dict[str, Notice]:
    """One notice per place and audience, titled "<place>:<audience>"."""
    notices = {}
    for place in PLACES:
        for audience in AUDIENCES:
            notices[f"{place}:{audience}"] = do_publish_notice(
                world.users["superuser"],
                org=_org(world, place),
                title=f"{place}:{audience}",
                body="内容",
                audience=audience,
            )
    return notices


def _set(places: str, audiences: str) -> set[str]:
    return {f"{p}:{a}" for p in places.split() for a in audiences.split()}


ALL_AUD = "staff volunteers everyone"
# Who sees what, written out by hand (the rule: an org's notice reaches its subtree; staff logins see every
# audience, volunteers `volunteers` and `everyone`, other members `everyone`).
EXPECTED: dict[str, set[str]] = {
    "superuser": _set("ho branch sub other", ALL_AUD),
    "head_office_admin": _set("ho", ALL_AUD),
    "branch_admin": _set("ho branch", ALL_AUD),
    "staff": _set("ho branch sub", ALL_AUD),
    "staff_next": _set("ho", ALL_AUD),  # 泥沟村 is under the other branch
    "operator": _set("ho", ALL_AUD),
    "assessor": _set("ho", ALL_AUD),
    "supervisor": _set("ho branch", ALL_AUD),
    "other_bank_admin": _set("other", ALL_AUD),
    "other_bank_staff": _set("other", ALL_AUD),
    "volunteer": _set("ho branch sub", "volunteers everyone"),
    "recipient": _set("ho branch sub", "everyone"),
    "relative": _set("ho", "everyone"),  # lives in 泥沟村
    "neighbour": _set("ho", "volunteers everyone"),
    "stranger": _set("other", "volunteers everyone"),
}


# What staff and admins may open (and manage) besides: every notice published in their own subtree.
MANAGES: dict[str, set[str]] = {
    "head_office_admin": _set("ho branch sub", ALL_AUD),
    "branch_admin": _set("branch sub", ALL_AUD),
    "staff": _set("sub", ALL_AUD),
    "other_bank_admin": _set("other", ALL_AUD),
    "other_bank_staff": set(),  # nothing is published at 驻春路社区
}


def test_expected_table_covers_every_persona() -> None:
    assert set(EXPECTED) | {"anonymous"} == set(PERSONAS)


@pytest.mark.parametrize("persona", [p for p in PERSONAS if p != "anonymous"])
def test_notices_reach_exactly_their_audience_and_subtree(world: World, persona: str) -> None:
    _publish_all(world)
    resp = world.api(persona).get("/api/v1/notices", {"limit": 200})
    assert resp.status_code == 200
    titles = {n["title"] for n in resp.json()["items"]}
    assert titles == EXPECTED[persona]
    assert {n.title for n in reaching_notices(world.users[persona])} == EXPECTED[persona]
    managed = {n["title"] for n in world.api(persona).get("/api/v1/notices", {"scope": "managed"}).json()["items"]}
    assert managed == (EXPECTED[persona] if persona == "superuser" else MANAGES.get(persona, set()))
    # Every notice reaching them (or managed by them) opens; any other is refused (another bank's is unknown).
    for key, notice in _notices_by_title().items():
        got = world.api(persona).get(f"/api/v1/notices/{notice.pk}")
        if key in EXPECTED[persona] | MANAGES.get(persona, set()):
            assert got.status_code == 200, key
        else:
            assert got.status_code in (403, 404), key


def _notices_by_title() -> dict[str, Notice]:
    return {n.title: n for n in Notice.objects.all()}


def test_anonymous_is_refused(world: World) -> None:
    _publish_all(world)
    assert world.api("anonymous").get("/api/v1/notices").status_code == 401
    assert web_client(None).get("/notices/").status_code == 302


def test_another_banks_notice_is_unknown(world: World) -> None:
    notices = _publish_all(world)
    resp = world.api("staff").get(f"/api/v1/notices/{notices['other:everyone'].pk}")
    assert resp.status_code == 404
    assert error_code(resp) == "notice_not_found"


def test_expired_and_withdrawn_notices_no_longer_reach(world: World) -> None:
    admin = world.api("head_office_admin")
    today = timezone.localdate()
    live = admin.post(
        "/api/v1/notices",
        {"org_id": world.bank.pk, "title": "今天到期", "body": "x", "expires_on": today.isoformat()},
    )
    assert live.status_code == 201
    gone = admin.post("/api/v1/notices", {"org_id": world.bank.pk, "title": "要撤回", "body": "x"}).json()
    assert admin.post(f"/api/v1/notices/{gone['id']}/withdraw").status_code == 200
    expired = Notice.objects.get(pk=live.json()["id"])
    titles = {n["title"] for n in world.api("recipient").get("/api/v1/notices").json()["items"]}
    assert titles == {"今天到期"}
    # Tomorrow, the one that ended today is gone too.
    Notice.objects.filter(pk=expired.pk).update(expires_on=today - dt.timedelta(days=1))
    assert world.api("recipient").get("/api/v1/notices").json()["items"] == []
    # The admins still see both (to manage them), with their state.
    managed = admin.get("/api/v1/notices", {"scope": "managed"}).json()["items"]
    assert {n["title"] for n in managed} == {"今天到期", "要撤回"}
    assert [n["withdrawn_at"] is not None for n in managed if n["title"] == "要撤回"] == [True]


def test_unread_flag_and_mark_read(world: World) -> None:
    notices = _publish_all(world)
    api = world.api("volunteer")
    items = api.get("/api/v1/notices").json()["items"]
    assert all(n["unread"] for n in items)
    target = notices["sub:volunteers"]
    for _ in range(2):  # idempotent
        resp = api.post(f"/api/v1/notices/{target.pk}/read")
        assert resp.status_code == 200
        assert resp.json()["unread"] is False
    assert NoticeRead.objects.filter(notice=target).count() == 1
    assert AuditEntry.objects.filter(action="notice.read", object_id=str(target.pk)).count() == 1
    unread = api.get("/api/v1/notices", {"unread": "true"}).json()["items"]
    assert target.pk not in {n["id"] for n in unread}
    assert len(unread) == len(EXPECTED["volunteer"]) - 1
    read = api.get("/api/v1/notices", {"unread": "false"}).json()["items"]
    assert [n["id"] for n in read] == [target.pk]
    # Reads are per login: the recipient's copy of another notice is still unread.
    assert all(n["unread"] for n in world.api("recipient").get("/api/v1/notices").json()["items"])
    # A notice that does not reach the caller cannot be marked read.
    assert api.post(f"/api/v1/notices/{notices['sub:staff'].pk}/read").status_code == 403
    assert not NoticeRead.objects.filter(notice=notices["sub:staff"]).exists()


def test_publish_answers_201_and_audits(world: World) -> None:
    resp = world.api("staff").post(
        "/api/v1/notices",
        {"org_id": world.community.pk, "title": "停水通知", "body": "明天停水", "audience": "everyone", "pinned": True},
    )
    assert resp.status_code == 201
    body = resp.json()
    assert body["pinned"] is True and body["org_id"] == world.community.pk and body["can_withdraw"] is True
    assert body["source"] == "manual"
    entry = AuditEntry.objects.get(action="notice.publish", object_id=str(body["id"]))
    assert entry.actor == world.users["staff"]


@pytest.mark.parametrize(
    ("persona", "place", "status"),
    [
        ("staff", "branch", 403),  # above their own org
        ("staff_next", "sub", 403),  # a sibling community
        ("operator", "ho", 403),  # operators do not publish
        ("assessor", "ho", 403),
        ("volunteer", "sub", 403),
        ("recipient", "sub", 403),
        ("other_bank_admin", "ho", 404),  # another bank's org
        ("head_office_admin", "other", 404),
        ("head_office_admin", "outlet", 422),  # outlets do not publish
    ],
)
def test_publish_refused(world: World, persona: str, place: str, status: int) -> None:
    org = world.outlet if place == "outlet" else _org(world, place)
    resp = world.api(persona).post("/api/v1/notices", {"org_id": org.pk, "title": "t", "body": "b"})
    assert resp.status_code == status
    assert not Notice.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"title": "", "body": "b"},
        {"title": "t" * 101, "body": "b"},
        {"title": "t", "body": ""},
        {"title": "t", "body": "b", "audience": "relatives"},
        {"title": "t", "body": "b", "expires_on": "2000-01-01"},
        {"title": "t", "body": "b", "expires_on": "tomorrow"},
        {"title": "t", "body": "b", "pinned": "yes"},
        {"title": "t\x00", "body": "b"},
        {"title": 5, "body": "b"},
    ],
)
def test_publish_bad_input_is_422_and_writes_nothing(world: World, body: dict[str, Any]) -> None:
    resp = world.api("head_office_admin").post("/api/v1/notices", {"org_id": world.bank.pk, **body})
    assert resp.status_code == 422
    assert not Notice.objects.exists()


def test_unknown_ids(world: World) -> None:
    api = world.api("head_office_admin")
    assert api.post("/api/v1/notices", {"org_id": 2**61, "title": "t", "body": "b"}).status_code == 404
    assert api.get(f"/api/v1/notices/{2**61}").status_code == 404
    assert api.get("/api/v1/notices/99999999999999999999").status_code in (404, 422)
    assert api.post(f"/api/v1/notices/{2**61}/read").status_code == 404
    assert api.get("/api/v1/notices", {"cursor": "garbage"}).status_code == 422
    assert api.get("/api/v1/notices", {"limit": 0}).status_code == 422
    assert api.get("/api/v1/notices", {"scope": "all"}).status_code == 422


def test_withdraw_who_may(world: World) -> None:
    notices = _publish_all(world)
    sub = notices["sub:everyone"]
    assert world.api("recipient").post(f"/api/v1/notices/{sub.pk}/withdraw").status_code == 403
    assert world.api("staff_next").post(f"/api/v1/notices/{sub.pk}/withdraw").status_code == 403
    assert world.api("operator").post(f"/api/v1/notices/{notices['ho:staff'].pk}/withdraw").status_code == 403
    assert world.api("other_bank_admin").post(f"/api/v1/notices/{sub.pk}/withdraw").status_code == 404
    # Staff of the community may not withdraw the branch's notice, which reaches them.
    assert world.api("staff").post(f"/api/v1/notices/{notices['branch:staff'].pk}/withdraw").status_code == 403
    assert Notice.objects.filter(withdrawn_at__isnull=False).count() == 0
    # The branch admin (above) withdraws the community's notice; twice is a conflict.
    resp = world.api("branch_admin").post(f"/api/v1/notices/{sub.pk}/withdraw")
    assert resp.status_code == 200 and resp.json()["withdrawn_at"]
    again = world.api("branch_admin").post(f"/api/v1/notices/{sub.pk}/withdraw")
    assert again.status_code == 409 and error_code(again) == "already_withdrawn"
    assert AuditEntry.objects.filter(action="notice.withdraw").count() == 1


def test_rules_change_publishes_a_notice(world: World) -> None:
    resp = world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", {"goods_share_percent": 60})
    assert resp.status_code == 200
    notice = Notice.objects.get(source=NoticeSource.RULES)
    assert notice.org == world.bank and notice.audience == "everyone"
    assert "50" in notice.body and "60" in notice.body
    # It reaches the whole bank, not the other bank.
    assert notice.pk in {n["id"] for n in world.api("relative").get("/api/v1/notices").json()["items"]}
    assert notice.pk not in {n["id"] for n in world.api("stranger").get("/api/v1/notices").json()["items"]}
    # Saving the same values again changes nothing and says nothing.
    world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", {"goods_share_percent": 60})
    assert Notice.objects.filter(source=NoticeSource.RULES).count() == 1


def test_settlement_publishes_one_notice(world: World) -> None:
    body = {"head_office_id": world.bank.pk, "period_end": timezone.localdate().isoformat()}
    for _ in range(2):
        assert world.api("head_office_admin").post("/api/v1/settlements", body).status_code in (200, 201)
    notice = Notice.objects.get(source=NoticeSource.SETTLEMENT)
    assert notice.org == world.bank and notice.bank == world.bank
    assert notice.pk in {n["id"] for n in world.api("volunteer").get("/api/v1/notices").json()["items"]}


def test_automatic_notices_can_be_switched_off(world: World, settings: Any) -> None:
    settings.TIMEBANK_AUTO_NOTICES = False
    world.api("head_office_admin").patch(f"/api/v1/orgs/{world.bank.pk}/rules", {"goods_share_percent": 70})
    body = {"head_office_id": world.bank.pk, "period_end": timezone.localdate().isoformat()}
    world.api("head_office_admin").post("/api/v1/settlements", body)
    assert not Notice.objects.exists()


def test_openapi_lists_notice_operations(world: World) -> None:
    paths = world.api("anonymous").get("/api/v1/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/notices"])
    assert "post" in paths["/api/v1/notices/{notice_id}/read"]
    assert "post" in paths["/api/v1/notices/{notice_id}/withdraw"]


# Pages ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "url"),
    [("volunteer", "/"), ("recipient", "/"), ("volunteer", "/volunteer/"), ("staff", "/staff/"), ("assessor", "/")],
)
def test_home_pages_show_the_notices_reaching_the_person(world: World, persona: str, url: str) -> None:
    notices = _publish_all(world)
    html = web_client(world.users[persona]).get(url).content.decode()
    shown = {key for key in notices if f">{key}<" in html}
    newest_five = sorted(EXPECTED[persona], key=lambda k: -notices[k].pk)[:5]
    assert shown == set(newest_five)
    assert "通知公告" in html and "未读" in html


def test_pinned_first_and_read_state_on_the_panel(world: World) -> None:
    notices = _publish_all(world)
    pinned = do_publish_notice(world.users["staff"], org=world.community, title="置顶的", body="b", pinned=True)
    client = web_client(world.users["recipient"])
    html = client.get("/").content.decode()
    assert html.index("置顶的") < html.index("sub:everyone")
    detail = client.get(f"/notices/{notices['sub:everyone'].pk}/")
    assert detail.status_code == 200 and "内容" in detail.content.decode()
    assert NoticeRead.objects.filter(notice=notices["sub:everyone"], user=world.users["recipient"]).exists()
    assert pinned.pk not in set(NoticeRead.objects.values_list("notice_id", flat=True))


def test_pages_publish_list_and_withdraw(world: World) -> None:
    client = web_client(world.users["branch_admin"])
    form = client.get("/notices/new/")
    assert form.status_code == 200
    page = form.content.decode()
    assert world.community.name in page and world.branch2.name not in page
    # Errors keep what was typed.
    bad = client.post(
        "/notices/new/", {"org": world.community.pk, "title": "保留我", "body": "", "audience": "everyone"}
    )
    assert bad.status_code == 422 and "保留我" in bad.content.decode()
    assert not Notice.objects.exists()
    ok = client.post(
        "/notices/new/",
        {"org": world.community.pk, "title": "社区通知", "body": "正文", "audience": "volunteers", "pinned": "on"},
    )
    assert ok.status_code == 302
    notice = Notice.objects.get()
    assert notice.pinned and notice.audience == "volunteers" and notice.org == world.community
    listing = client.get("/notices/").content.decode()
    assert "社区通知" in listing and "撤回" in listing
    assert client.post(f"/notices/{notice.pk}/withdraw/").status_code == 302
    notice.refresh_from_db()
    assert notice.withdrawn_at is not None


def test_pages_refuse_the_wrong_people(world: World) -> None:
    notices = _publish_all(world)
    assert web_client(world.users["volunteer"]).get("/notices/new/").status_code == 403
    assert web_client(world.users["operator"]).get("/notices/new/").status_code == 403
    assert web_client(world.users["staff"]).post("/notices/new/", {"org": world.branch.pk}).status_code == 422
    assert web_client(world.users["recipient"]).get(f"/notices/{notices['sub:staff'].pk}/").status_code == 403
    assert web_client(world.users["stranger"]).get(f"/notices/{notices['sub:everyone'].pk}/").status_code == 404
    sub = notices["sub:everyone"]
    assert web_client(world.users["staff_next"]).post(f"/notices/{sub.pk}/withdraw/").status_code == 403
    assert web_client(world.users["staff"]).get(f"/notices/{sub.pk}/withdraw/").status_code == 405
    assert Notice.objects.filter(withdrawn_at__isnull=False).count() == 0


def test_pages_in_english(world: World) -> None:
    _publish_all(world)
    html = web_client(world.users["volunteer"], lang="en").get("/notices/").content.decode()
    assert "<title>" in html
