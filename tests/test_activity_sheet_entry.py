"""Issue 13 "Paper mode": an activity's filled sign-in sheet entered back on one screen (/activities/<id>/sheet/,
teams/views_sheet.py): every confirmed sign-up with 到场/缺席/未填 and optional minutes, each filled row marked
through `do_mark_attendance`, all or nothing (a refused row: 422, its refusal beside it, every typed value kept),
once per form (the hidden key), for those who may mark the activity's attendance only."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import World, web_client
from tests.test_activities import _publish, _volunteers
from tests.test_sign_in_sheets import _at_once
from tests.test_trust_08_races import postgres_only
from timebank.audit.models import AuditEntry
from timebank.lib.masking import mask_phone
from timebank.members.models import Member
from timebank.teams import actions
from timebank.teams.models import Activity, ActivitySignup, Attendance


@pytest.fixture
def setup(world: World) -> dict[str, Any]:
    """A two-hour activity with three confirmed volunteers and one on the waiting list."""
    activity = _publish(world, places=3)
    people = _volunteers(world, 4)
    for person in people:
        actions.do_sign_up(person.user, activity, person)
    return {
        "activity": activity,
        "people": people[:3],
        "waiting": people[3],
        "url": f"/activities/{activity.pk}/sheet/",
    }


def form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert found, "the sheet has its hidden key"
    return found.group(1)


def post_data(key: str, rows: dict[int, tuple[str, str]]) -> dict[str, Any]:
    data: dict[str, Any] = {"idempotency_key": key, "member": [str(m) for m in rows]}
    for member_id, (mark, minutes) in rows.items():
        data[f"m{member_id}_mark"] = mark
        data[f"m{member_id}_minutes"] = minutes
    return data


def marks(activity: Activity) -> list[tuple[int, str, int | None]]:
    return list(
        ActivitySignup.objects.filter(activity=activity)
        .order_by("member_id")
        .values_list("member_id", "attendance", "manual_minutes")
    )


def mark_audits(activity: Activity) -> int:
    return AuditEntry.objects.filter(action="activity.mark_attendance", object_id=str(activity.pk)).count()


def test_staff_follow_the_link_and_enter_several_rows_at_once(world: World, setup: dict[str, Any]) -> None:
    activity, (a, b, c), url = setup["activity"], setup["people"], setup["url"]
    staff = web_client(world.users["staff"])
    detail = staff.get(f"/activities/{activity.pk}/").content.decode()
    assert f'href="{url}"' in detail  # beside the PDF's link
    page = staff.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    for person in (a, b, c):
        assert person.name in html and f'name="member" value="{person.pk}"' in html
        assert mask_phone(person.phone) in html and person.phone not in html
    assert setup["waiting"].name not in html  # not a confirmed sign-up: not on the sheet
    rows = {a.pk: ("present", "90"), b.pk: ("absent", ""), c.pk: ("", "")}
    resp = staff.post(url, post_data(form_key(html), rows))
    assert resp.status_code == 302 and resp["Location"] == f"/activities/{activity.pk}/"
    got = {m: (att, mins) for m, att, mins in marks(activity)}
    assert got[a.pk] == (Attendance.ATTENDED, 90)
    assert got[b.pk] == (Attendance.NO_SHOW, None)
    assert got[c.pk] == (Attendance.PENDING, None)  # 未填: left alone
    assert mark_audits(activity) == 2  # each through do_mark_attendance, audited as one mark
    # A present row without minutes: the whole activity (as the per-person page does).
    staff.post(url, post_data(form_key(staff.get(url).content.decode()), {c.pk: ("present", "")}))
    assert ActivitySignup.objects.get(activity=activity, member=c).manual_minutes == 120


def test_a_refused_row_writes_nothing_and_keeps_every_typed_value(world: World, setup: dict[str, Any]) -> None:
    activity, (a, b, c), url = setup["activity"], setup["people"], setup["url"]
    staff = web_client(world.users["staff"])
    key = form_key(staff.get(url).content.decode())
    before, audits = marks(activity), mark_audits(activity)
    # Two rows above the activity's two hours: both refusals shown at once, the good row not written either.
    rows = {a.pk: ("present", "90"), b.pk: ("present", "999"), c.pk: ("present", "121")}
    resp = staff.post(url, post_data(key, rows))
    assert resp.status_code == 422
    html = resp.content.decode()
    assert html.count("记的分钟数超过了活动时长") == 2
    for value in ("90", "999", "121"):
        assert f'value="{value}"' in html
    assert html.count('<option value="present" selected>') == 3
    assert marks(activity) == before and mark_audits(activity) == audits
    # The error sits in the refused row.
    row_b = html.split(f'id="member-{b.pk}"')[1].split("</tr>")[0]
    assert "记的分钟数超过了活动时长" in row_b
    row_a = html.split(f'id="member-{a.pk}"')[1].split("</tr>")[0]
    assert "错误" not in row_a
    # Minutes beside 缺席, or out of the form's range: refused by the form, nothing written.
    for bad in ({a.pk: ("absent", "30")}, {a.pk: ("present", "0")}, {a.pk: ("present", "-5")}, {a.pk: ("maybe", "")}):
        assert staff.post(url, post_data(key, bad)).status_code == 422, bad
    assert staff.post(url, post_data(key, {a.pk: ("", "")})).status_code == 422  # nothing filled
    assert marks(activity) == before and mark_audits(activity) == audits
    # The key was given back: the corrected sheet goes in.
    rows[b.pk], rows[c.pk] = ("present", "100"), ("absent", "")
    assert staff.post(url, post_data(key, rows)).status_code == 302
    got = {m: (att, mins) for m, att, mins in marks(activity)}
    assert got[b.pk] == (Attendance.ATTENDED, 100) and got[c.pk] == (Attendance.NO_SHOW, None)


def test_a_double_submit_acts_once(world: World, setup: dict[str, Any]) -> None:
    activity, (a, b, _c), url = setup["activity"], setup["people"], setup["url"]
    staff = web_client(world.users["staff"])
    body = post_data(form_key(staff.get(url).content.decode()), {a.pk: ("present", "60"), b.pk: ("absent", "")})
    assert staff.post(url, body).status_code == 302
    assert staff.post(url, body).status_code == 302
    assert mark_audits(activity) == 2


def test_ids_not_on_the_sheet_are_404_and_write_nothing(world: World, setup: dict[str, Any]) -> None:
    activity, (a, _b, _c), url = setup["activity"], setup["people"], setup["url"]
    staff = web_client(world.users["staff"])
    key = form_key(staff.get(url).content.decode())
    before = marks(activity)
    outsider = world.members["volunteer"]
    for member_id in (setup["waiting"].pk, outsider.pk, 99999999):
        assert (
            staff.post(url, post_data(key, {a.pk: ("present", "30"), member_id: ("present", "30")})).status_code == 404
        )
    for raw in (["x"], ["-1"], ["9" * 30]):
        assert staff.post(url, {"idempotency_key": key, "member": raw}).status_code == 404, raw
    assert marks(activity) == before and mark_audits(activity) == 0
    assert staff.get("/activities/99999999/sheet/").status_code == 404


def test_roles_outside_are_refused(world: World, setup: dict[str, Any]) -> None:
    activity, (a, _b, _c), url = setup["activity"], setup["people"], setup["url"]
    body = post_data("k-outside", {a.pk: ("present", "30")})
    for persona in ("volunteer", "recipient", "staff_next", "other_bank_staff"):
        client = web_client(world.users[persona])
        assert client.get(url).status_code in (403, 404), persona
        assert client.post(url, body).status_code in (403, 404), persona
    volunteer = web_client(a.user)  # signed up, but does not run it
    assert volunteer.get(url).status_code in (403, 404) and volunteer.post(url, body).status_code in (403, 404)
    assert web_client(None).get(url).status_code == 302
    assert mark_audits(activity) == 0
    assert web_client(world.users["branch_admin"]).get(url).status_code == 200  # above the org: allowed


@postgres_only
def test_the_same_sheet_sent_twice_at_once_marks_once(world: World, setup: dict[str, Any]) -> None:
    activity, (a, b, c), url = setup["activity"], setup["people"], setup["url"]
    rows = {a.pk: ("present", "60"), b.pk: ("absent", ""), c.pk: ("present", "")}
    answers = _at_once(world, url, [post_data("act-sheet-key-1", rows)] * 2)
    assert sorted(answers) == [302, 302], answers
    assert mark_audits(activity) == 3
    got = {m: (att, mins) for m, att, mins in marks(activity)}
    assert got[a.pk] == (Attendance.ATTENDED, 60) and got[b.pk] == (Attendance.NO_SHOW, None)
    assert got[c.pk] == (Attendance.ATTENDED, 120)
    assert Member.objects.filter(pk=a.pk).exists()
