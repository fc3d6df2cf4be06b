"""Paper mode (issue 13; API-CONTRACT.md "Paper mode: acting for a volunteer without a smartphone").

Staff and operators of the order's subtree accept, check in and check out for the dispatched volunteer, with
the time from the paper sheet or the phone (`at`) and how they know (`source`); the audit entry records who
acted for whom. Everyone else is refused as the access rules answer; bad input is 422 on its field and writes
nothing; the volunteer acting for themselves keeps today's behaviour and may not send `at` or `source` (422
`on_behalf_only`: a volunteer's own steps are timed by the server's clock). The staff order page (also the
hotline console's order view) offers the same, and two staff checking in at once on PostgreSQL: one wins.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import zlib
from typing import Any

import pytest
import segno
from django.db import connections
from django.test import Client
from django.utils import timezone

from tests.conftest import World, error_code, make_member, web_client
from tests.test_trust_08_races import postgres_only
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.members.models import Member
from timebank.orders.models import Order, OrderEvent, OrderState
from timebank.orgs.actions import do_issue_token
from timebank.orgs.models import Rules

# Inside the order's subtree (顺河社区): they act for the volunteer.
INSIDE = ("superuser", "head_office_admin", "branch_admin", "staff", "operator")
# Outside it, or a party who is not the volunteer: refused as the access rules answer (403/404).
OUTSIDE = (
    "staff_next",
    "assessor",
    "other_bank_admin",
    "other_bank_staff",
    "volunteer",  # another volunteer, not the one dispatched
    "recipient",
    "relative",
    "neighbour",
    "stranger",
)


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="陪同就医", category="mutual_care", tier="ordinary"
    )


@pytest.fixture
def paper_volunteer(world: World) -> Member:
    """A volunteer without a login (no smartphone)."""
    return make_member(world.community, "张纸质", roles=["volunteer"])


def local(moment: dt.datetime) -> str:
    return timezone.localtime(moment).isoformat()


def new_order(world: World, item: ServiceItem, *, start: dt.datetime | None = None) -> int:
    body = {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        # Soon enough to check in at once (the rules' checkin_early_minutes is 60).
        "scheduled_start": (start or timezone.now() + dt.timedelta(minutes=30)).isoformat(),
        "planned_minutes": 60,
        "payer": "subsidy",
        "channel": "hotline",
    }
    resp = world.api("staff").post("/api/v1/orders", body)
    assert resp.status_code == 201, resp.content
    return int(resp.json()["id"])


def dispatched(world: World, item: ServiceItem, volunteer: Member, **kw: Any) -> int:
    oid = new_order(world, item, **kw)
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": volunteer.pk})
    assert resp.status_code == 200, resp.content
    return oid


def step(world: World, persona: str, oid: int, action: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
    return world.api(persona).post(f"/api/v1/orders/{oid}/{action}", body, **kw)


def audit_rows(oid: int, action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(object_type="order", object_id=str(oid), action=f"order.{action}"))


def snapshot(oid: int) -> tuple[Any, ...]:
    order = Order.objects.get(pk=oid)
    return (
        order.state,
        order.accepted_at,
        order.check_in_at,
        order.check_out_at,
        AuditEntry.objects.filter(action__startswith="order.").count(),  # not the pages' audited views
        OrderEvent.objects.filter(order_id=oid).count(),
    )


# ---- who ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", INSIDE)
def test_staff_and_operators_of_the_subtree_act_for_the_volunteer(
    world: World, item: ServiceItem, paper_volunteer: Member, persona: str
) -> None:
    oid = dispatched(world, item, paper_volunteer)
    for action, state in (("accept", "accepted"), ("check-in", "in_service"), ("check-out", "completed")):
        resp = step(world, persona, oid, action, {"source": "phone_call"})
        assert resp.status_code == 200, (persona, action, resp.content)
        assert resp.json()["state"] == state
        (entry,) = audit_rows(oid, action)
        assert entry.actor_id == world.users[persona].pk
        assert entry.data["on_behalf_of"] == paper_volunteer.pk
        assert entry.data["source"] == "phone_call"
        assert entry.data["volunteer"] == paper_volunteer.pk


@pytest.mark.parametrize("persona", OUTSIDE)
def test_everyone_else_is_refused_and_nothing_changes(
    world: World, item: ServiceItem, paper_volunteer: Member, persona: str
) -> None:
    oid = dispatched(world, item, paper_volunteer)
    for action in ("accept", "check-in", "check-out"):
        before = snapshot(oid)
        resp = step(world, persona, oid, action, {"source": "paper_sheet"})
        assert resp.status_code in (403, 404), (persona, action, resp.content)
        assert error_code(resp) in ("not_allowed", "outside_subtree", "order_not_found")
        assert snapshot(oid) == before
    assert step(world, "anonymous", oid, "accept").status_code == 401


def test_the_refusals_are_the_access_rules_answers(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    oid = dispatched(world, item, paper_volunteer)
    # A party to the order, but not one who may act for the volunteer; a stranger to it sees nothing.
    assert error_code(step(world, "recipient", oid, "accept")) == "not_allowed"
    assert error_code(step(world, "relative", oid, "accept")) == "not_allowed"
    assert error_code(step(world, "staff_next", oid, "accept")) == "outside_subtree"
    assert error_code(step(world, "other_bank_staff", oid, "accept")) == "outside_subtree"


# ---- the audit entry and the recorded times -------------------------------------------------------------------


def test_the_recorded_times_are_stored_and_audited(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    now = timezone.now().replace(second=0, microsecond=0)
    oid = dispatched(world, item, paper_volunteer, start=now - dt.timedelta(hours=1))
    Order.objects.filter(pk=oid).update(dispatched_at=now - dt.timedelta(hours=3))  # dispatched this morning
    # The sheet came back: accepted on the phone, served for 45 minutes, the times written as minutes.
    accepted = now - dt.timedelta(hours=3) + dt.timedelta(minutes=5)
    check_in = now - dt.timedelta(minutes=65)
    check_out = now - dt.timedelta(minutes=20)
    resp = step(world, "staff", oid, "accept", {"at": local(accepted), "source": "phone_call"})
    assert resp.status_code == 200, resp.content
    resp = step(world, "staff", oid, "check-in", {"at": local(check_in), "source": "paper_sheet"})
    assert resp.status_code == 200, resp.content
    resp = step(world, "operator", oid, "check-out", {"at": local(check_out), "source": "paper_sheet"})
    assert resp.status_code == 200, resp.content
    order = Order.objects.get(pk=oid)
    assert (order.accepted_at, order.check_in_at, order.check_out_at) == (accepted, check_in, check_out)
    assert dt.datetime.fromisoformat(resp.json()["check_out_at"]) == check_out
    (entry,) = audit_rows(oid, "check-in")
    assert entry.actor_id == world.users["staff"].pk
    assert entry.data["on_behalf_of"] == paper_volunteer.pk
    assert entry.data["source"] == "paper_sheet"
    assert dt.datetime.fromisoformat(entry.data["at"]) == check_in
    assert entry.data["at"].endswith("+08:00")
    (out,) = audit_rows(oid, "check-out")
    assert out.actor_id == world.users["operator"].pk and out.data["source"] == "paper_sheet"
    # The order's history says it was done for the volunteer, and how staff knew.
    notes = list(OrderEvent.objects.filter(order_id=oid).order_by("pk").values_list("action", "note"))
    assert ("check-in", "代为操作（纸质签到表）") in notes
    assert ("accept", "代为操作（电话）") in notes
    # Staff confirm after the return call: by default the time the sheet measured (plus the grace), as any order.
    rules = Rules.objects.get(head_office=world.bank)
    resp = step(world, "staff", oid, "confirm")
    assert resp.status_code == 200, resp.content
    assert resp.json()["actual_minutes"] == min(60, 45 + rules.checkout_grace_minutes)


def test_without_at_the_time_is_now_and_source_may_be_left_out(
    world: World, item: ServiceItem, paper_volunteer: Member
) -> None:
    oid = dispatched(world, item, paper_volunteer)
    before = timezone.now()
    assert step(world, "staff", oid, "accept").status_code == 200
    order = Order.objects.get(pk=oid)
    assert order.accepted_at is not None and before <= order.accepted_at <= timezone.now()
    (entry,) = audit_rows(oid, "accept")
    assert entry.data["on_behalf_of"] == paper_volunteer.pk and entry.data["source"] is None


def test_confirming_a_paper_order_the_usual_ways(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    # Staff after a return call; or the recipient's code, told to the volunteer (here: the recipient confirms).
    for confirmer in ("staff", "recipient"):
        oid = dispatched(world, item, paper_volunteer)
        for action in ("accept", "check-in", "check-out"):
            assert step(world, "operator", oid, action, {"source": "phone_call"}).status_code == 200
        body = {"actual_minutes": 1} if confirmer == "staff" else None
        resp = step(world, confirmer, oid, "confirm", body)
        assert resp.status_code == 200, resp.content
        assert resp.json()["state"] == "confirmed"


# ---- bad input: 422 on the field, nothing written --------------------------------------------------------------


BAD_AT: dict[str, Any] = {
    "future": "FUTURE",
    "before_dispatch": "BEFORE",
    "garbage": "yesterday",
    "month_13": "2026-13-01T09:00:00+08:00",
    "naive": "NAIVE",
    "empty": "",
    "int": 1_700_000_000,
    "negative": -1,
    "huge": 10**30,
    "huge_year": "99999-01-01T00:00:00+08:00",
    "long": "2" * 10_000,
    "bool": True,
    "list": ["2026-05-01T09:00:00+08:00"],
    "object": {"at": "2026-05-01T09:00:00+08:00"},
    "nul": "2026-05-01T09:00:00+08:00\x00",
}
BAD_SOURCE: dict[str, Any] = {
    "unknown": "fax",
    "empty": "",
    "upper": "PAPER_SHEET",
    "int": 1,
    "list": ["paper_sheet"],
    "long": "p" * 10_000,
}


def _at(value: Any, order: Order) -> Any:
    assert order.dispatched_at is not None
    if value == "FUTURE":
        return local(timezone.now() + dt.timedelta(hours=1))
    if value == "BEFORE":
        return local(order.dispatched_at - dt.timedelta(minutes=5))
    if value == "NAIVE":
        return timezone.localtime(order.dispatched_at).replace(tzinfo=None).isoformat()
    return value


@pytest.mark.parametrize("action", ["accept", "check-in", "check-out"])
def test_bad_input_is_422_on_its_field_and_writes_nothing(
    world: World, item: ServiceItem, paper_volunteer: Member, action: str
) -> None:
    oid = dispatched(world, item, paper_volunteer)
    for earlier in ("accept", "check-in", "check-out")[: ("accept", "check-in", "check-out").index(action)]:
        assert step(world, "staff", oid, earlier).status_code == 200
    order = Order.objects.get(pk=oid)
    problems = []
    cases = [("at", name, {"at": _at(v, order), "source": "paper_sheet"}) for name, v in BAD_AT.items()]
    cases += [("source", name, {"source": v}) for name, v in BAD_SOURCE.items()]
    for field, name, body in cases:
        before = snapshot(oid)
        resp = step(world, "staff", oid, action, body)
        if resp.status_code != 422 or field not in resp.json()["error"].get("fields", {}):
            problems.append(f"{action} {field} {name}: {resp.status_code} {resp.content[:200]!r}")
        if snapshot(oid) != before:
            problems.append(f"{action} {field} {name}: something was written")
    assert problems == []


def test_a_recorded_time_keeps_the_orders_own_order(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    oid = dispatched(world, item, paper_volunteer, start=timezone.now() - dt.timedelta(hours=1))
    # Accepted (now) on the phone; a check-in recorded before that acceptance is refused.
    assert step(world, "staff", oid, "accept").status_code == 200
    order = Order.objects.get(pk=oid)
    assert order.accepted_at is not None
    early = local(order.accepted_at - dt.timedelta(minutes=2))
    resp = step(world, "staff", oid, "check-in", {"at": early})
    assert resp.status_code == 422 and resp.json()["error"]["fields"]["at"] in ("before_accept", "before_dispatch")
    # Checked in now; a check-out recorded at or before the check-in is refused.
    assert step(world, "staff", oid, "check-in").status_code == 200
    order.refresh_from_db()
    assert order.check_in_at is not None
    resp = step(world, "staff", oid, "check-out", {"at": local(order.check_in_at)})
    assert resp.status_code == 422 and resp.json()["error"]["fields"]["at"] == "before_check_in"
    assert Order.objects.get(pk=oid).state == OrderState.IN_SERVICE


def test_the_banks_check_in_window_applies_to_a_recorded_time(
    world: World, item: ServiceItem, paper_volunteer: Member
) -> None:
    # Scheduled in three hours: a check-in recorded now is more than checkin_early_minutes (60) before it.
    oid = dispatched(world, item, paper_volunteer, start=timezone.now() + dt.timedelta(hours=3))
    assert step(world, "staff", oid, "accept").status_code == 200
    before = snapshot(oid)
    resp = step(world, "staff", oid, "check-in", {"at": local(timezone.now()), "source": "paper_sheet"})
    assert resp.status_code == 409 and error_code(resp) == "too_early"
    assert snapshot(oid) == before


def test_a_location_is_the_volunteers_own(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    oid = dispatched(world, item, paper_volunteer)
    assert step(world, "staff", oid, "accept").status_code == 200
    before = snapshot(oid)
    resp = step(world, "staff", oid, "check-in", {"latitude": 34.56, "longitude": 117.73})
    assert resp.status_code == 422 and "latitude" in resp.json()["error"]["fields"]
    assert snapshot(oid) == before


# ---- the volunteer acting for themselves -----------------------------------------------------------------------


def test_the_volunteer_path_is_unchanged(world: World, item: ServiceItem) -> None:
    volunteer = world.members["volunteer"]
    oid = dispatched(world, item, volunteer)
    for action in ("accept", "check-in", "check-out"):
        before = timezone.now()
        resp = step(
            world, "volunteer", oid, action, {"latitude": 34.56, "longitude": 117.73} if action != "accept" else None
        )
        assert resp.status_code == 200, resp.content
        (entry,) = audit_rows(oid, action)
        assert entry.actor_id == world.users["volunteer"].pk
        assert "on_behalf_of" not in entry.data and "source" not in entry.data and "at" not in entry.data
    order = Order.objects.get(pk=oid)
    assert order.check_out_at is not None and order.check_out_at >= before
    assert order.check_in_latitude is not None
    assert not OrderEvent.objects.filter(order_id=oid).exclude(note="").exists()


@pytest.mark.parametrize("body", [{"at": "NOW"}, {"source": "paper_sheet"}, {"at": "NOW", "source": "in_person"}])
def test_the_volunteer_may_not_send_at_or_source(world: World, item: ServiceItem, body: dict[str, Any]) -> None:
    oid = dispatched(world, item, world.members["volunteer"])
    body = {k: (local(timezone.now()) if v == "NOW" else v) for k, v in body.items()}
    before = snapshot(oid)
    resp = step(world, "volunteer", oid, "accept", body)
    assert resp.status_code == 422, resp.content
    fields = resp.json()["error"]["fields"]
    assert set(fields.values()) == {"on_behalf_only"} and set(fields) <= {"at", "source"}
    assert snapshot(oid) == before


def test_staff_who_are_the_volunteer_act_as_the_volunteer(world: World, item: ServiceItem) -> None:
    # The dispatched volunteer's login is also staff of the community: they act for themselves (no `at`).
    volunteer = world.members["volunteer"]
    user = world.users["volunteer"]
    user.role = "staff"
    user.org = world.community
    user.save(update_fields=["role", "org"])
    oid = dispatched(world, item, volunteer)
    resp = step(world, "volunteer", oid, "accept", {"at": local(timezone.now())})
    assert resp.status_code == 422 and resp.json()["error"]["fields"] == {"at": "on_behalf_only"}
    assert step(world, "volunteer", oid, "accept").status_code == 200
    assert "on_behalf_of" not in audit_rows(oid, "accept")[0].data


# ---- replays and double submits --------------------------------------------------------------------------------


def test_replays_follow_the_idempotency_service(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    oid = dispatched(world, item, paper_volunteer)
    body = {"source": "paper_sheet"}
    first = step(world, "staff", oid, "accept", body, HTTP_IDEMPOTENCY_KEY="paper-accept-1")
    again = step(world, "staff", oid, "accept", body, HTTP_IDEMPOTENCY_KEY="paper-accept-1")
    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.json() == first.json()
    # The body's key is the same service.
    keyed = {"source": "paper_sheet", "idempotency_key": "paper-in-1"}
    first = step(world, "staff", oid, "check-in", keyed)
    again = step(world, "staff", oid, "check-in", keyed)
    assert first.status_code == again.status_code == 200 and again.json() == first.json()
    # The key reused for another request: 409.
    other = step(world, "staff", oid, "check-out", {"source": "phone_call", "idempotency_key": "paper-in-1"})
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    # A double submit without a key: the order moved on, the second is 409.
    assert step(world, "staff", oid, "check-out").status_code == 200
    assert error_code(step(world, "staff", oid, "check-out")) == "invalid_transition"
    assert [len(audit_rows(oid, a)) for a in ("accept", "check-in", "check-out")] == [1, 1, 1]


# ---- the pages ------------------------------------------------------------------------------------------------


def _key(page: str) -> str:
    match = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', page)
    assert match, "the form carries its key"
    return match.group(1)


def test_staff_click_through_a_paper_order_and_confirm_after_the_return_call(
    world: World, item: ServiceItem, paper_volunteer: Member
) -> None:
    oid = dispatched(world, item, paper_volunteer, start=timezone.now() - dt.timedelta(minutes=30))
    now = timezone.localtime().replace(second=0, microsecond=0)
    Order.objects.filter(pk=oid).update(dispatched_at=now - dt.timedelta(hours=2))  # dispatched this morning
    staff = web_client(world.users["staff"])
    url = f"/staff/orders/{oid}/"
    for title, action, source, ago in (
        ("代为接单", "accept", "phone_call", 90),
        ("代为签到", "check-in", "paper_sheet", 50),
        ("代为签退", "check-out", "paper_sheet", 5),
    ):
        page = staff.get(url).content.decode()
        assert title in page, action
        assert 'name="at"' in page and 'name="source"' in page
        assert "纸质签到表" in page and "电话" in page and "当面" in page
        for other in {"代为接单", "代为签到", "代为签退"} - {title}:
            assert f">{other}</button>" not in page
        key = _key(page)
        at = now - dt.timedelta(minutes=ago)
        form = {"at": at.strftime("%Y-%m-%dT%H:%M"), "source": source, "idempotency_key": key}
        resp = staff.post(f"/staff/orders/{oid}/{action}/", form)
        assert resp.status_code == 302, resp.content.decode()[:2000]
        # A double click: the same form again does nothing more.
        again = staff.post(f"/staff/orders/{oid}/{action}/", form)
        assert again.status_code == 302
        assert len(audit_rows(oid, action)) == 1
        (entry,) = audit_rows(oid, action)
        assert entry.data["on_behalf_of"] == paper_volunteer.pk and entry.data["source"] == source
        assert dt.datetime.fromisoformat(entry.data["at"]) == at
    order = Order.objects.get(pk=oid)
    assert order.state == OrderState.COMPLETED
    assert (order.check_in_at, order.check_out_at) == (now - dt.timedelta(minutes=50), now - dt.timedelta(minutes=5))
    page = staff.get(url).content.decode()
    assert "代为确认" in page
    # After the return call, staff confirm.
    resp = staff.post(f"/staff/orders/{oid}/confirm/", {"actual_minutes": 45})
    assert resp.status_code == 302, resp.content.decode()[:2000]
    assert Order.objects.get(pk=oid).state == OrderState.CONFIRMED
    assert "代为签退" not in staff.get(url).content.decode().split("<h2>")[0]


def test_the_page_puts_errors_next_to_the_field(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    oid = dispatched(world, item, paper_volunteer)
    staff = web_client(world.users["staff"])
    future = (timezone.localtime() + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    before = snapshot(oid)
    resp = staff.post(f"/staff/orders/{oid}/accept/", {"at": future, "source": "paper_sheet"})
    assert resp.status_code == 422
    page = resp.content.decode()
    assert 'id="id_accept_at_error_1"' in page and "不能在将来" in page
    resp = staff.post(f"/staff/orders/{oid}/accept/", {"at": "", "source": "fax"})
    assert resp.status_code == 422
    page = resp.content.decode()
    assert 'id="id_accept_at_error_1"' in page and 'id="id_accept_source_error_1"' in page
    assert snapshot(oid) == before


def test_operators_use_the_same_order_view_from_the_console(
    world: World, item: ServiceItem, paper_volunteer: Member
) -> None:
    oid = dispatched(world, item, paper_volunteer)
    operator = web_client(world.users["operator"])
    caller = operator.get(f"/hotline/callers/{world.members['recipient'].pk}/").content.decode()
    assert f'href="/staff/orders/{oid}/"' in caller  # the console's order view is the staff order page
    page = operator.get(f"/staff/orders/{oid}/").content.decode()
    assert "代为接单" in page
    now = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    resp = operator.post(f"/staff/orders/{oid}/accept/", {"at": now, "source": "phone_call"})
    assert resp.status_code == 302
    assert audit_rows(oid, "accept")[0].actor_id == world.users["operator"].pk


def test_the_pages_refuse_those_the_api_refuses(world: World, item: ServiceItem, paper_volunteer: Member) -> None:
    oid = dispatched(world, item, paper_volunteer)
    now = timezone.localtime().strftime("%Y-%m-%dT%H:%M")
    for persona in ("staff_next", "other_bank_staff", "recipient", "volunteer"):
        resp = web_client(world.users[persona]).post(f"/staff/orders/{oid}/accept/", {"at": now, "source": "in_person"})
        assert resp.status_code in (403, 404), persona
    assert Order.objects.get(pk=oid).state == OrderState.DISPATCHED
    # The order's own volunteer with a login sees no paper-mode button on a page (they use their phone page).
    page = web_client(world.users["staff"]).get(f"/staff/orders/{oid}/").content.decode()
    assert "代为接单" in page


# ---- PostgreSQL: two staff checking in at once -----------------------------------------------------------------


def check_in_at_once(world: World, oid: int, personas: tuple[str, ...]) -> dict[str, tuple[int, str]]:
    """Each persona checks the order in for its volunteer, all at once (each thread its own connection)."""
    tokens = {p: do_issue_token(world.users[p]) for p in personas}
    barrier = threading.Barrier(len(personas))
    answers: dict[str, tuple[int, str]] = {}

    def worker(persona: str) -> None:
        try:
            client = Client(raise_request_exception=False)
            barrier.wait(timeout=30)
            resp = client.post(
                f"/api/v1/orders/{oid}/check-in",
                data=json.dumps({"source": "paper_sheet"}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {tokens[persona]}",
            )
            code = "" if resp.status_code == 200 else str(resp.json()["error"]["code"])
            answers[persona] = (resp.status_code, code)
        except BaseException as exc:  # a crash is a failed request
            answers[persona] = (599, repr(exc))
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(p,)) for p in personas]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool), "a request hung"
    return answers


@postgres_only
def test_two_staff_checking_in_at_once_one_wins(world: World, item: ServiceItem) -> None:
    volunteer = make_member(world.community, "赵纸质", roles=["volunteer"])
    for personas in (("staff", "branch_admin"), ("staff", "operator"), ("head_office_admin", "operator")):
        oid = dispatched(world, item, volunteer)
        assert step(world, "staff", oid, "accept").status_code == 200
        answers = check_in_at_once(world, oid, personas)
        assert sorted(status for status, _code in answers.values()) == [200, 409], answers
        assert {code for status, code in answers.values() if status == 409} == {"invalid_transition"}
        assert len(audit_rows(oid, "check-in")) == 1
        assert OrderEvent.objects.filter(order_id=oid, action="check-in").count() == 1
        assert Order.objects.get(pk=oid).state == OrderState.IN_SERVICE


# ---- the printable dispatch slip -------------------------------------------------------------------------------


def pdf_text(pdf: bytes) -> str:
    """The text a reportlab PDF shows (its streams are ASCII85 + Flate; the CID font's strings are UTF-16)."""
    shown = []
    for raw in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S):
        content = zlib.decompress(base64.a85decode(raw.strip(), adobe=True))
        for literal in re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", content, re.S):
            data = re.sub(rb"\\([0-7]{1,3}|.)", _unescape, literal)
            shown.append(data.decode("utf-16-be") if len(data) % 2 == 0 else data.decode("latin-1"))
    return "\n".join(shown)


def _unescape(match: re.Match[bytes]) -> bytes:
    code = match.group(1)
    if code[:1].isdigit():
        return bytes([int(code, 8)])
    return {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}.get(code, code)


def pdf_squares(pdf: bytes) -> int:
    return sum(
        zlib.decompress(base64.a85decode(raw.strip(), adobe=True)).count(b" re")
        for raw in re.findall(rb"stream\r?\n(.*?)endstream", pdf, re.S)
    )


def test_staff_print_a_dispatch_slip_from_the_order_page(
    world: World, item: ServiceItem, paper_volunteer: Member
) -> None:
    oid = dispatched(world, item, paper_volunteer)
    staff = web_client(world.users["staff"])
    page = staff.get(f"/staff/orders/{oid}/").content.decode()
    url = f"/exports/orders/{oid}/slip.pdf"
    assert f'href="{url}"' in page
    resp = staff.get(url)
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    pdf = resp.content
    assert pdf.startswith(b"%PDF")
    text = pdf_text(pdf)
    recipient = world.members["recipient"]
    assert f"#{oid}" in text
    assert "李**" in text and recipient.name not in text  # the name masked
    assert recipient.address in text  # the address, as staff see it on the order page (audited)
    assert paper_volunteer.name in text and item.name in text
    assert "签到时间" in text and "签退时间" in text
    local_start = timezone.localtime(Order.objects.get(pk=oid).scheduled_start).strftime("%Y-%m-%d %H:%M")
    assert local_start in text
    # The QR code of the staff order page, drawn as squares: at least one per dark module.
    qr = segno.make(f"http://testserver/staff/orders/{oid}/", error="m")
    assert pdf_squares(pdf) >= sum(sum(1 for dark in row if dark) for row in qr.matrix)
    assert AuditEntry.objects.filter(
        action="member.view_personal_data", object_id=str(recipient.pk), data__via=f"slip:{oid}"
    ).exists()


def test_the_slip_is_for_staff_and_operators_of_the_subtree(
    world: World, item: ServiceItem, paper_volunteer: Member
) -> None:
    oid = dispatched(world, item, paper_volunteer)
    url = f"/exports/orders/{oid}/slip.pdf"
    assert web_client(world.users["operator"]).get(url).status_code == 200
    for persona in ("staff_next", "other_bank_staff", "recipient", "volunteer", "relative"):
        assert web_client(world.users[persona]).get(url).status_code in (403, 404), persona
    assert web_client(None).get(url).status_code == 302  # to the login page
