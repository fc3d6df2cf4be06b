"""工作交接 through the API (issue 13, staff lifecycle), beside the hand-over page (tests/test_staff_handover.py):
GET /api/v1/staff/{staff_id}/open-work lists what the page lists, POST /api/v1/staff/{staff_id}/handover moves it
through the page's action (needs.actions.do_hand_over), both guarded by the page's access function
(needs.handover.access_hand_over). Refusals are 4xx and move nothing; repeats move nothing more."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World, web_client
from tests.test_access_matrix import Call as MatrixCall
from tests.test_access_matrix import assert_none, error_problem, run_matrix
from tests.test_orders import items as items
from tests.test_staff_handover import work as work
from tests.test_trust_08_races import THREADS, Call, fire, judge, postgres_only
from timebank.audit.models import AuditEntry
from timebank.needs.handover import open_needs, open_orders
from timebank.needs.models import WorkOwner
from timebank.orgs.actions import do_create_staff, do_update_staff

SU_AND_ADMINS = frozenset({"superuser", "head_office_admin", "branch_admin"})


def open_work_url(w: World, persona: str = "staff") -> str:
    return f"/api/v1/staff/{w.users[persona].pk}/open-work"


def handover_url(w: World, persona: str = "staff") -> str:
    return f"/api/v1/staff/{w.users[persona].pk}/handover"


def nothing_moved(w: World, work: dict[str, int]) -> None:
    assert not WorkOwner.objects.exists()
    assert not AuditEntry.objects.filter(action="staff.hand_over").exists()
    assert [o.pk for o in open_orders(w.users["staff"])] == [work["open"]]
    assert [n.pk for n in open_needs(w.users["staff"])] == [work["need"]]


def test_open_work_lists_what_the_page_lists(world: World, work: dict[str, int]) -> None:
    resp = world.api("branch_admin").get(open_work_url(world))
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["staff_id"] == world.users["staff"].pk
    assert [o["id"] for o in body["orders"]] == [work["open"]] and body["order_count"] == 1
    assert [n["id"] for n in body["needs"]] == [work["need"]] and body["need_count"] == 1
    order, need = body["orders"][0], body["needs"][0]
    assert (order["state"], order["org_id"]) == ("dispatched", world.community.pk) and order["service_item"]
    assert order["scheduled_start"].endswith("+08:00")  # local time, as every answer
    assert (need["status"], need["level"], need["recipient_id"]) == ("open", "essential", world.members["recipient"].pk)
    targets = {t["username"]: t for t in body["targets"]}
    assert targets["staff_two"] == {
        "id": world.users["staff_two"].pk,
        "username": "staff_two",
        "name": "小周",
        "org_id": world.community.pk,
        "role": "staff",
    }
    assert "staff" not in targets and "staff_next" not in targets  # itself; 泥沟村 is outside 运河街道
    # The same lists as the page's.
    page = web_client(world.users["branch_admin"]).get(f"/manage/staff/{world.users['staff'].pk}/handover/")
    html = page.content.decode()
    assert f"/staff/orders/{work['open']}/" in html and f"/staff/needs/{work['need']}/" in html
    # After the hand-over the departing login has nothing open, the receiver has it.
    world.api("branch_admin").post(handover_url(world), {"to_staff_id": world.users["staff_two"].pk})
    empty = world.api("branch_admin").get(open_work_url(world)).json()
    assert (empty["orders"], empty["needs"], empty["order_count"], empty["need_count"]) == ([], [], 0, 0)
    theirs = world.api("branch_admin").get(open_work_url(world, "staff_two")).json()
    assert [o["id"] for o in theirs["orders"]] == [work["open"]] and [n["id"] for n in theirs["needs"]] == [
        work["need"]
    ]


def test_hand_over_moves_the_work_once_and_is_audited(world: World, work: dict[str, int]) -> None:
    staff, two = world.users["staff"], world.users["staff_two"]
    api = world.api("branch_admin")
    resp = api.post(handover_url(world), {"to_staff_id": two.pk})
    assert resp.status_code == 200, resp.content
    assert resp.json() == {
        "from_staff_id": staff.pk,
        "to_staff_id": two.pk,
        "order_ids": [work["open"]],
        "need_ids": [work["need"]],
    }
    assert [o.pk for o in open_orders(two)] == [work["open"]] and [n.pk for n in open_needs(two)] == [work["need"]]
    entry = AuditEntry.objects.get(action="staff.hand_over")
    assert entry.actor_id == world.users["branch_admin"].pk and entry.data["to_staff_id"] == two.pk
    # A repeat without a key moves what is left: nothing, and writes nothing.
    again = api.post(handover_url(world), {"to_staff_id": two.pk})
    assert again.status_code == 200 and again.json()["order_ids"] == [] and again.json()["need_ids"] == []
    assert AuditEntry.objects.filter(action="staff.hand_over").count() == 1 and WorkOwner.objects.count() == 2


@pytest.mark.parametrize("where", ["header", "body"])
def test_a_keyed_repeat_answers_the_first_answer(world: World, work: dict[str, int], where: str) -> None:
    two = world.users["staff_two"]
    api = world.api("branch_admin")
    body: dict[str, Any] = {"to_staff_id": two.pk}
    extra: dict[str, Any] = {}
    if where == "header":
        extra["HTTP_IDEMPOTENCY_KEY"] = "handover-1"
    else:
        body["idempotency_key"] = "handover-1"
    first = api.post(handover_url(world), body, **extra)
    repeat = api.post(handover_url(world), body, **extra)
    assert first.status_code == repeat.status_code == 200
    assert repeat.json() == first.json() and repeat.json()["order_ids"] == [work["open"]]
    assert repeat["Idempotent-Replayed"] == "true"
    assert AuditEntry.objects.filter(action="staff.hand_over").count() == 1
    # The same key for another request is 409 and moves nothing.
    other = do_create_staff(
        world.users["superuser"],
        org=world.community,
        username="staff_three",
        password="pass-word-1",
        name="小吴",
        role="staff",
    )
    reused = api.post(handover_url(world), {**body, "to_staff_id": other.pk}, **extra)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert [o.pk for o in open_orders(two)] == [work["open"]]


@pytest.mark.parametrize(
    ("admin", "target", "status"),
    [
        ("branch_admin", "staff_next", 403),  # another branch's staff: outside the admin's subtree
        ("branch_admin", "other_bank_staff", 403),  # another bank's staff
        ("branch_admin", "other_bank_admin", 403),
        ("head_office_admin", "staff_next", 409),  # in the subtree, but cannot reach 顺河社区's work
        ("branch_admin", "staff", 422),  # the departing login itself
        ("branch_admin", "volunteer", 404),  # a member's login is no staff login
        ("branch_admin", "superuser", 404),  # nor is the superuser
        ("branch_admin", "supervisor", 422),  # a supervisor follows no work
        ("branch_admin", "disabled", 422),  # a disabled login cannot take work
    ],
)
def test_refused_targets_are_4xx_and_move_nothing(
    world: World, work: dict[str, int], admin: str, target: str, status: int
) -> None:
    if target == "disabled":
        world.users["disabled"] = world.users["staff_two"]
        do_update_staff(world.users["superuser"], world.users["staff_two"], is_active=False)
    resp = world.api(admin).post(handover_url(world), {"to_staff_id": world.users[target].pk})
    assert resp.status_code == status, resp.content
    assert error_problem(resp) is None
    if status == 422:
        assert resp.json()["error"]["fields"].get("to_staff_id"), resp.content
    nothing_moved(world, work)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"to_staff_id": None},
        {"to_staff_id": "abc"},
        {"to_staff_id": "5"},  # strict: a number, not text
        {"to_staff_id": -1},
        {"to_staff_id": 0},
        {"to_staff_id": 1.5},
        {"to_staff_id": 9 * 10**30},
        {"to_staff_id": 99_999_999},  # unknown: 404
        {"to_staff_id": [1]},
        {"to_staff_id": 1, "idempotency_key": ""},
        {"to_staff_id": 1, "idempotency_key": "k" * 65},
    ],
)
def test_bad_bodies_are_4xx_and_move_nothing(world: World, work: dict[str, int], body: dict[str, Any]) -> None:
    resp = world.api("branch_admin").post(handover_url(world), body)
    assert resp.status_code == (404 if body.get("to_staff_id") == 99_999_999 else 422), resp.content
    assert error_problem(resp) is None
    nothing_moved(world, work)


def test_unknown_and_non_staff_logins_are_404(world: World, work: dict[str, int]) -> None:
    api = world.api("head_office_admin")
    two = world.users["staff_two"].pk
    for staff_id in ("999999", str(world.users["volunteer"].pk), str(world.users["superuser"].pk)):
        assert api.get(f"/api/v1/staff/{staff_id}/open-work").status_code in (403, 404), staff_id
        resp = api.post(f"/api/v1/staff/{staff_id}/handover", {"to_staff_id": two})
        assert resp.status_code in (403, 404), staff_id
    for bad in ("0", "-1", "abc", "9" * 40):
        assert api.get(f"/api/v1/staff/{bad}/open-work").status_code in (404, 422), bad
        assert api.post(f"/api/v1/staff/{bad}/handover", {"to_staff_id": two}).status_code in (404, 422), bad
    # Nobody hands over their own login's work through the API either (that is another admin's task).
    assert world.api("branch_admin").get(open_work_url(world, "branch_admin")).status_code == 403
    nothing_moved(world, work)


def test_who_may_read_and_hand_over_a_logins_work(world: World, work: dict[str, int]) -> None:
    """Every persona: the admins of 顺河社区's subtree (and the superuser) only; everyone else 401/403/404, with the
    contract's error body and nothing changed."""
    two = world.users["staff_two"].pk
    problems = run_matrix(
        world, "GET open-work of staff", lambda _p: MatrixCall("get", open_work_url(world)), SU_AND_ADMINS
    )
    refused_before = AuditEntry.objects.filter(action="staff.hand_over").count()
    problems += run_matrix(
        world,
        "POST handover of staff",
        lambda _p: MatrixCall("post", handover_url(world), {"to_staff_id": two}),
        SU_AND_ADMINS,
    )
    assert_none(problems)
    # The first allowed caller moved the work; the refused ones moved nothing, the later allowed ones nothing more.
    assert refused_before == 0 and AuditEntry.objects.filter(action="staff.hand_over").count() == 1
    assert [o.pk for o in open_orders(world.users["staff_two"])] == [work["open"]]


@postgres_only
def test_the_hand_over_sent_ten_times_at_once_acts_once(world: World, work: dict[str, int]) -> None:
    """Ten identical hand-overs at once: without a key each waits on the departing login's lock and finds nothing
    left; under one key every answer is the first one. Never a 5xx, the work moved once."""
    w = world
    call = Call("branch_admin", handover_url(w), {"to_staff_id": w.users["staff_two"].pk})
    plain = fire(w, call, "plain")
    assert sorted(a.status for a in plain) == [200] * THREADS, [(a.status, a.body[:200]) for a in plain]
    assert AuditEntry.objects.filter(action="staff.hand_over").count() == 1
    assert sum(1 for a in plain if b'"order_ids": []' not in a.body and b'"order_ids":[]' not in a.body) == 1
    # Back to the first login, ten times at once under one key: one answer, one more move.
    back = Call("branch_admin", handover_url(w, "staff_two"), {"to_staff_id": w.users["staff"].pk})
    assert judge("handover", "same_key", back, fire(w, back, "same_key")) == []
    assert AuditEntry.objects.filter(action="staff.hand_over").count() == 2
    assert [o.pk for o in open_orders(w.users["staff"])] == [work["open"]]
