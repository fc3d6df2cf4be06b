"""Issue 13 "Paper mode": a day's printable sign-in sheet (签到表) for the orders dispatched to volunteers, entered
back on one page (every filled row through the paper-mode actions, all or nothing, once), and an activity's
blank sign-in sheet. Staff and operators of the subtree; everyone else is refused."""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import pytest
import segno
from django.db import connections
from django.test import Client
from django.utils import timezone

from tests.conftest import World, make_member, web_client
from tests.test_paper_mode import dispatched, pdf_squares, pdf_text
from tests.test_trust_08_races import postgres_only
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.exports.sheets import day_sheet_rows
from timebank.members.models import Member
from timebank.orders.models import Order, OrderEvent, OrderState

NOTE = "代为操作（纸质签到表）"


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="陪同就医", category="mutual_care", tier="ordinary"
    )


@pytest.fixture
def paper_volunteer(world: World) -> Member:
    """A volunteer without a login (no smartphone)."""
    return make_member(world.community, "张纸质", roles=["volunteer"])


def sheet_times() -> tuple[dt.datetime, dt.datetime]:
    """An order's start and its dispatch, all on one local day and in the past (the sheet's times are HH:MM of
    one day): two hours ago, or yesterday evening just after midnight."""
    now = timezone.localtime().replace(minute=0, second=0, microsecond=0)
    start = (now - dt.timedelta(days=1)).replace(hour=20) if now.hour < 4 else now - dt.timedelta(hours=2)
    return start, start - dt.timedelta(hours=1)


def sheet_order(world: World, item: ServiceItem, volunteer: Member, start: dt.datetime, sent: dt.datetime) -> int:
    oid = dispatched(world, item, volunteer, start=start)
    Order.objects.filter(pk=oid).update(dispatched_at=sent)  # dispatched before the service
    return oid


def hm(moment: dt.datetime) -> str:
    return timezone.localtime(moment).strftime("%H:%M")


def sheet_url(day: dt.date) -> str:
    return f"/staff/sheets/orders/{day.isoformat()}/"


def form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert found, "the sheet has its hidden key"
    return found.group(1)


def post_data(key: str, rows: dict[int, dict[str, str]]) -> dict[str, Any]:
    data: dict[str, Any] = {"idempotency_key": key, "order": [str(oid) for oid in rows]}
    for oid, times in rows.items():
        for column in ("accept", "check_in", "check_out"):
            data[f"o{oid}_{column}"] = times.get(column, "")
    return data


def snapshot(*oids: int) -> list[tuple[Any, ...]]:
    return [
        (o.state, o.accepted_at, o.check_in_at, o.check_out_at, OrderEvent.objects.filter(order=o).count())
        for o in Order.objects.filter(pk__in=oids).order_by("pk")
    ]


@pytest.fixture
def day_setup(world: World, item: ServiceItem, paper_volunteer: Member) -> dict[str, Any]:
    start, sent = sheet_times()
    first = sheet_order(world, item, paper_volunteer, start, sent)
    second = sheet_order(world, item, world.members["volunteer"], start + dt.timedelta(minutes=5), sent)
    return {"day": start.date(), "start": start, "sent": sent, "first": first, "second": second}


# ---- the printed sheet ----------------------------------------------------------------------------------------


def test_staff_find_the_sheet_from_their_home_and_print_it(
    world: World,
    item: ServiceItem,
    paper_volunteer: Member,
    day_setup: dict[str, Any],
) -> None:
    staff = web_client(world.users["staff"])
    home = staff.get("/staff/").content.decode()
    today = sheet_url(timezone.localdate())
    assert 'href="/staff/orders/"' in home and f'href="{today}"' in home
    orders_page = staff.get("/staff/orders/").content.decode()
    assert f'href="{today}"' in orders_page
    today_page = staff.get(f"/manage/today/{world.community.pk}/").content.decode()
    assert f'href="{today}?org={world.community.pk}"' in today_page
    assert staff.get(f"{today}?org={world.community.pk}").status_code == 200
    assert staff.get(today).status_code == 200
    day = day_setup["day"]
    page = staff.get(sheet_url(day)).content.decode()
    pdf_url = f"/exports/sheets/orders/{day.isoformat()}.pdf"
    assert f'href="{pdf_url}"' in page
    assert f"#{day_setup['first']}" in page and f"#{day_setup['second']}" in page
    resp = staff.get(pdf_url)
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-")
    text = pdf_text(resp.content)
    recipient = world.members["recipient"]
    for oid in (day_setup["first"], day_setup["second"]):
        assert f"#{oid}" in text
    assert paper_volunteer.name in text and world.members["volunteer"].name in text and item.name in text
    assert "李**" in text and recipient.name not in text  # the name masked as lists mask it
    assert recipient.address in text  # the address as the staff order page shows it, audited
    assert "接单时间" in text and "签到时间" in text and "签退时间" in text and "志愿者签字" in text
    assert hm(day_setup["start"]) in text
    assert AuditEntry.objects.filter(
        action="member.view_personal_data", object_id=str(recipient.pk), data__via=f"sheet:{day}"
    ).exists()
    # The QR code of the day's entry page, drawn as squares.
    qr = segno.make(f"http://testserver{sheet_url(day)}", error="m")
    assert pdf_squares(resp.content) >= sum(sum(1 for dark in row if dark) for row in qr.matrix)


def test_the_sheet_shows_only_the_callers_subtree(
    world: World,
    item: ServiceItem,
    day_setup: dict[str, Any],
) -> None:
    day = day_setup["day"]
    mine = {day_setup["first"], day_setup["second"]}
    for persona in ("staff", "operator", "branch_admin", "head_office_admin", "superuser"):
        assert {r["order"].pk for r in day_sheet_rows(world.users[persona], day)} >= mine, persona
    # Another community's staff print their own (empty) sheet, without these orders.
    for persona in ("staff_next", "other_bank_staff"):
        assert not {r["order"].pk for r in day_sheet_rows(world.users[persona], day)} & mine, persona
        client = web_client(world.users[persona])
        resp = client.get(f"/exports/sheets/orders/{day}.pdf")
        assert resp.status_code == 200 and resp.content.startswith(b"%PDF-")
        assert f"#{day_setup['first']}" not in pdf_text(resp.content)
        assert f"#{day_setup['first']}" not in client.get(sheet_url(day)).content.decode()
        # Naming the other org: refused.
        assert client.get(f"/exports/sheets/orders/{day}.pdf?org={world.community.pk}").status_code in (403, 404)
        assert client.get(f"{sheet_url(day)}?org={world.community.pk}").status_code in (403, 404)
    # An org inside the caller's subtree narrows the sheet; one outside it is refused; garbage is not a 500.
    staff = web_client(world.users["branch_admin"])
    assert staff.get(f"/exports/sheets/orders/{day}.pdf?org={world.community.pk}").status_code == 200
    assert staff.get(f"/exports/sheets/orders/{day}.pdf?org={world.other_community.pk}").status_code in (403, 404)
    assert staff.get(f"/exports/sheets/orders/{day}.pdf?org=abc").status_code in (400, 422)
    assert staff.get(f"/exports/sheets/orders/{day}.pdf?org=99999999").status_code == 404
    assert staff.get("/exports/sheets/orders/2026-02-30.pdf").status_code == 404
    assert staff.get("/staff/sheets/orders/2026-13-01/").status_code == 404
    # Members are not staff: refused; a visitor goes to the login page.
    for persona in ("volunteer", "recipient", "relative"):
        client = web_client(world.users[persona])
        assert client.get(f"/exports/sheets/orders/{day}.pdf").status_code == 403, persona
        assert client.get(sheet_url(day)).status_code == 403, persona
    assert web_client(None).get(f"/exports/sheets/orders/{day}.pdf").status_code == 302


# ---- the one-screen entry -------------------------------------------------------------------------------------


def test_one_submit_enters_several_rows_through_the_paper_actions(world: World, day_setup: dict[str, Any]) -> None:
    start, first, second = day_setup["start"], day_setup["first"], day_setup["second"]
    staff = web_client(world.users["operator"])
    url = sheet_url(day_setup["day"])
    key = form_key(staff.get(url).content.decode())
    accepted, check_in, check_out = start - dt.timedelta(minutes=30), start, start + dt.timedelta(minutes=40)
    rows = {
        first: {"accept": hm(accepted), "check_in": hm(check_in), "check_out": hm(check_out)},
        second: {"accept": hm(accepted + dt.timedelta(minutes=1))},
    }
    resp = staff.post(url, post_data(key, rows))
    assert resp.status_code == 302, resp.content.decode()[-3000:]
    one, two = Order.objects.get(pk=first), Order.objects.get(pk=second)
    assert one.state == OrderState.COMPLETED and two.state == OrderState.ACCEPTED
    assert (one.accepted_at, one.check_in_at, one.check_out_at) == (accepted, check_in, check_out)
    assert two.accepted_at == accepted + dt.timedelta(minutes=1)
    notes = list(OrderEvent.objects.filter(order_id=first).order_by("pk").values_list("action", "note"))
    assert [n for n in notes if n[1] == NOTE] == [("accept", NOTE), ("check-in", NOTE), ("check-out", NOTE)]
    entry = AuditEntry.objects.get(action="order.check-in", object_id=str(first))
    assert entry.actor_id == world.users["operator"].pk and entry.data["source"] == "paper_sheet"
    # Each order's history says so, as the per-order forms do; the completed one leaves the sheet.
    assert NOTE in web_client(world.users["staff"]).get(f"/staff/orders/{first}/").content.decode()
    again = staff.get(url).content.decode()
    assert f'name="order" value="{second}"' in again and f'name="order" value="{first}"' not in again


@pytest.mark.parametrize("bad", ["before_dispatch", "out_of_order", "future", "too_early", "garbage", "state"])
def test_a_refused_row_writes_nothing_and_keeps_every_typed_value(
    world: World, day_setup: dict[str, Any], bad: str
) -> None:
    start, sent, first, second = day_setup["start"], day_setup["sent"], day_setup["first"], day_setup["second"]
    staff = web_client(world.users["staff"])
    url = sheet_url(day_setup["day"])
    key = form_key(staff.get(url).content.decode())
    good = {
        "accept": hm(start - dt.timedelta(minutes=30)),
        "check_in": hm(start),
        "check_out": hm(start + dt.timedelta(minutes=40)),
    }
    wrong = {
        "before_dispatch": {"accept": hm(sent - dt.timedelta(minutes=10))},
        "out_of_order": {
            "accept": hm(start),
            "check_in": hm(start + dt.timedelta(minutes=20)),
            "check_out": hm(start + dt.timedelta(minutes=10)),
        },
        "future": {"accept": hm(start), "check_in": hm(start + dt.timedelta(minutes=1)), "check_out": "23:59"},
        "too_early": {"accept": hm(sent + dt.timedelta(minutes=1)), "check_in": hm(sent + dt.timedelta(minutes=2))},
        "garbage": {"accept": "25:99"},
        "state": {"accept": hm(start)},
    }[bad]
    if bad == "future" and timezone.localtime().date() != day_setup["day"]:
        wrong = {"accept": hm(start)}
        Order.objects.filter(pk=second).update(dispatched_at=timezone.now())  # "23:59" yesterday: before dispatch
    if bad == "state":  # the order moved on since the sheet was printed (someone entered it already)
        Order.objects.filter(pk=second).update(state=OrderState.COMPLETED)
    before = snapshot(first, second)
    resp = staff.post(url, post_data(key, {first: good, second: wrong}))
    assert resp.status_code == 422, (bad, resp.status_code)
    assert snapshot(first, second) == before  # nothing written, not even the good row
    html = resp.content.decode()
    for value in [*good.values(), *wrong.values()]:
        assert f'value="{value}"' in html, (bad, value)
    # The refusal is beside the wrong row, not the good one.
    row = html.split(f'id="order-{second}"')[1].split("</tr>")[0]
    assert 'class="error"' in row
    said = {
        "before_dispatch": "早于订单的上一步",
        "out_of_order": "早于订单的上一步",
        "future": "不能在将来" if timezone.localtime().date() == day_setup["day"] else "早于订单的上一步",
        "too_early": "还没到预约时间",
        "garbage": "时间",
        "state": "订单当前状态下不能做这项操作",
    }[bad]
    assert said in row, (bad, re.findall(r"</span>([^<]*)</p>", row))
    good_row = html.split(f'id="order-{first}"')[1].split("</tr>")[0]
    assert 'class="error"' not in good_row
    if bad == "state":
        return
    # Corrected, the same form (its key was given back) goes through.
    fixed = {"accept": hm(start - dt.timedelta(minutes=20))}
    if bad == "future" and timezone.localtime().date() != day_setup["day"]:
        Order.objects.filter(pk=second).update(dispatched_at=day_setup["sent"])
    assert staff.post(url, post_data(key, {first: good, second: fixed})).status_code == 302
    assert Order.objects.get(pk=second).state == OrderState.ACCEPTED


def test_a_double_submit_acts_once(world: World, day_setup: dict[str, Any]) -> None:
    start, first, second = day_setup["start"], day_setup["first"], day_setup["second"]
    staff = web_client(world.users["staff"])
    url = sheet_url(day_setup["day"])
    key = form_key(staff.get(url).content.decode())
    data = post_data(key, {first: {"accept": hm(start)}, second: {"accept": hm(start), "check_in": hm(start)}})
    assert staff.post(url, data).status_code == 302
    after = snapshot(first, second)
    assert staff.post(url, data).status_code == 302  # the resend: the same answer, nothing more
    assert snapshot(first, second) == after
    assert OrderEvent.objects.filter(order_id__in=[first, second], note=NOTE).count() == 3


def test_bad_posts_are_refused(world: World, item: ServiceItem, day_setup: dict[str, Any]) -> None:
    start = day_setup["start"]
    url = sheet_url(day_setup["day"])
    staff = web_client(world.users["staff"])
    key = form_key(staff.get(url).content.decode())
    # Another subtree's order on the sheet: not found, nothing written.
    elsewhere = make_member(world.community2, "孙外社", roles=["volunteer"])
    before = snapshot(day_setup["first"], day_setup["second"])
    other = web_client(world.users["staff_next"])
    resp = other.post(url, post_data(key, {day_setup["first"]: {"accept": hm(start)}}))
    assert resp.status_code == 404
    for ids in (["abc"], ["-1"], ["9" * 30], [str(day_setup["first"])] * 2 + ["99999999"]):
        data = post_data(key, {day_setup["first"]: {"accept": hm(start)}})
        data["order"] = ids
        assert staff.post(url, data).status_code == 404, ids
    # Nothing filled: 422. A member: 403.
    assert staff.post(url, post_data(key, {day_setup["first"]: {}})).status_code == 422
    assert web_client(world.users["volunteer"]).post(url, post_data(key, {})).status_code == 403
    assert snapshot(day_setup["first"], day_setup["second"]) == before
    assert elsewhere.pk


# ---- two submits at once (PostgreSQL) -------------------------------------------------------------------------


def _at_once(world: World, url: str, bodies: list[dict[str, Any]]) -> list[int]:
    barrier = threading.Barrier(len(bodies))
    answers: list[int] = []

    def worker(body: dict[str, Any]) -> None:
        try:
            client = Client(raise_request_exception=False)
            client.force_login(world.users["staff"], backend="django.contrib.auth.backends.ModelBackend")
            barrier.wait(timeout=30)
            answers.append(client.post(url, body).status_code)
        except BaseException:  # a crash is a failed request
            answers.append(599)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(b,)) for b in bodies]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool), "a request hung"
    return answers


@postgres_only
def test_the_same_sheet_sent_twice_at_once_enters_once(world: World, day_setup: dict[str, Any]) -> None:
    start, first, second = day_setup["start"], day_setup["first"], day_setup["second"]
    url = sheet_url(day_setup["day"])
    rows = {first: {"accept": hm(start), "check_in": hm(start)}, second: {"accept": hm(start)}}
    # One page submitted twice (the same key): one enters it, the other answers as the first did.
    answers = _at_once(world, url, [post_data("sheet-key-1", rows)] * 2)
    assert sorted(answers) == [302, 302], answers
    assert OrderEvent.objects.filter(order_id__in=[first, second], note=NOTE).count() == 3
    # Two staff entering the same sheet from two pages: one set of steps, the other refused on its rows.
    rows = {first: {"check_out": hm(start + dt.timedelta(minutes=30))}, second: {"check_in": hm(start)}}
    answers = _at_once(world, url, [post_data("sheet-key-2", rows), post_data("sheet-key-3", rows)])
    assert sorted(answers) in ([302, 409], [302, 422]), answers
    assert OrderEvent.objects.filter(order_id__in=[first, second], note=NOTE).count() == 5
    assert Order.objects.get(pk=first).state == OrderState.COMPLETED
    assert Order.objects.get(pk=second).state == OrderState.IN_SERVICE


# ---- an activity's blank sheet --------------------------------------------------------------------------------


def test_an_activitys_blank_sheet_lists_its_volunteers_for_those_who_run_it(world: World) -> None:
    from tests.test_activities import _publish, _volunteers
    from timebank.teams import actions as team_actions
    from timebank.teams.sheet import activity_sheet_rows

    activity = _publish(world, places=2)
    people = _volunteers(world, 3)
    for person in people:
        team_actions.do_sign_up(person.user, activity, person)
    team_actions.do_withdraw(people[0].user, activity, people[0])  # the waiting one moves up; this one is gone
    rows = activity_sheet_rows(activity)
    assert [r["name"] for r in rows] == [people[1].name, people[2].name]
    # Staff reach it from the activity's page, where the filled sheet is entered (attendance marked by hand).
    staff = web_client(world.users["staff"])
    page = staff.get(f"/activities/{activity.pk}/").content.decode()
    url = f"/exports/sheets/activities/{activity.pk}.pdf"
    assert f'href="{url}"' in page
    resp = staff.get(url)
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    assert resp.content.startswith(b"%PDF-")
    text = pdf_text(resp.content)
    assert people[1].name in text and people[2].name in text and people[0].name not in text
    assert activity.title in text and "签到时间" in text and "签退时间" in text and "签字" in text
    qr = segno.make(f"http://testserver/activities/{activity.pk}/sheet/", error="m")  # the one-screen entry
    assert pdf_squares(resp.content) >= sum(sum(1 for dark in row if dark) for row in qr.matrix)
    # The activity page's access: its org's staff and above; not another community's, nor a volunteer.
    assert web_client(world.users["branch_admin"]).get(url).status_code == 200
    for persona in ("staff_next", "other_bank_staff", "volunteer", "recipient"):
        assert web_client(world.users[persona]).get(url).status_code in (403, 404), persona
    assert web_client(people[1].user).get(url).status_code in (403, 404)  # signed up, but does not run it
    assert web_client(None).get(url).status_code == 302
    assert staff.get("/exports/sheets/activities/99999999.pdf").status_code == 404
