"""工作交接 within the caller's reach: a login moved between orgs may still follow work of its old subtree. Its
new admin's hand-over page and GET /api/v1/staff/{id}/open-work list only the work that admin may see (the app's
own `visible_orders` / `visible_needs`, through needs.handover.open_work) and count the rest without showing it;
the hand-over itself refuses to move it (409 out_of_reach, unchanged). Every persona, page and API: an item outside
the caller's subtree never appears."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import PERSONAS, World, make_member, web_client
from tests.test_orders import items as items
from tests.test_orders import order_body
from tests.test_staff_handover import work as work
from timebank.catalogue.models import ServiceItem
from timebank.needs.actions import do_create_need
from timebank.needs.handover import open_needs, open_orders
from timebank.needs.models import WorkOwner
from timebank.orders.models import Order
from timebank.orgs.actions import do_create_staff, do_update_staff

# Who may open the moved login's hand-over: its new subtree's admins (泥沟镇, the head office) and the superuser.
ALLOWED = frozenset({"superuser", "head_office_admin", "branch2_admin"})
# Who reaches 顺河社区 (the login's old subtree) as well.
SEES_OLD_WORK = frozenset({"superuser", "head_office_admin"})


@pytest.fixture
def moved(world: World, items: dict[str, ServiceItem], work: dict[str, int]) -> dict[str, Any]:
    """顺河社区's staff login (with its open order and need there: `work`) is moved to 泥沟村, where it dispatches
    one more order and opens one more need. 泥沟镇 gets a branch admin."""
    root = world.users["superuser"]
    world.users["branch2_admin"] = do_create_staff(
        root,
        org=world.branch2,
        username="branch2_admin",
        password="pass-word-1",
        name="泥沟镇管理员",
        role="branch_admin",
    )
    do_update_staff(root, world.users["staff"], org=world.community2)
    world.users["staff"].refresh_from_db()
    world._apis.pop("staff", None)
    villager = make_member(world.community2, "孙奶奶", roles=["recipient"], born=dt.date(1938, 2, 3))
    start = (timezone.now() + dt.timedelta(hours=30)).isoformat()
    body = order_body(world, items["cleaning"], 60, "subsidy", scheduled_start=start, recipient_id=villager.pk)
    created = world.api("staff").post("/api/v1/orders", body)
    assert created.status_code == 201, created.content
    new_order = created.json()["id"]
    dispatched = world.api("staff").post(
        f"/api/v1/orders/{new_order}/dispatch", {"volunteer_id": world.members["neighbour"].pk}
    )
    assert dispatched.status_code == 200, dispatched.content
    new_need = do_create_need(world.users["staff"], recipient=villager, level="essential", found_by="home_visit")
    staff = world.users["staff"]
    old_start = timezone.localtime(Order.objects.get(pk=work["open"]).scheduled_start).strftime("%Y-%m-%d %H:%M")
    assert {o.pk for o in open_orders(staff)} == {work["open"], new_order}
    assert {n.pk for n in open_needs(staff)} == {work["need"], new_need.pk}
    return {
        "inside": {"orders": [new_order], "needs": [new_need.pk]},
        "outside": {"orders": [work["open"]], "needs": [work["need"]]},
        "outside_start": old_start,
    }


def expected_lists(persona: str, moved: dict[str, Any]) -> tuple[list[int], list[int]]:
    orders, needs = list(moved["inside"]["orders"]), list(moved["inside"]["needs"])
    if persona in SEES_OLD_WORK:
        orders += moved["outside"]["orders"]
        needs += moved["outside"]["needs"]
    return sorted(orders), sorted(needs)


@pytest.mark.parametrize("persona", [*PERSONAS, "branch2_admin"])
def test_open_work_api_lists_only_what_the_caller_reaches(world: World, moved: dict[str, Any], persona: str) -> None:
    staff = world.users["staff"]
    resp = world.api(persona).get(f"/api/v1/staff/{staff.pk}/open-work")
    outside_orders, outside_needs = moved["outside"]["orders"], moved["outside"]["needs"]
    if persona not in ALLOWED:
        assert resp.status_code in ((401,) if persona == "anonymous" else (403, 404)), (persona, resp.content)
        body = resp.json()
        assert "orders" not in body and "needs" not in body
        return
    assert resp.status_code == 200, resp.content
    body = resp.json()
    orders, needs = expected_lists(persona, moved)
    assert sorted(o["id"] for o in body["orders"]) == orders
    assert sorted(n["id"] for n in body["needs"]) == needs
    assert (body["order_count"], body["need_count"]) == (len(orders), len(needs))
    hidden = 0 if persona in SEES_OLD_WORK else 1
    assert (body["orders_out_of_reach"], body["needs_out_of_reach"]) == (hidden, hidden)
    if persona not in SEES_OLD_WORK:
        assert not {o["id"] for o in body["orders"]} & set(outside_orders)
        assert not {n["id"] for n in body["needs"]} & set(outside_needs)
        assert world.community.pk not in {o["org_id"] for o in body["orders"]}
        assert world.community.pk not in {n["home_org_id"] for n in body["needs"]}


@pytest.mark.parametrize("persona", [*PERSONAS, "branch2_admin"])
def test_handover_page_lists_only_what_the_caller_reaches(world: World, moved: dict[str, Any], persona: str) -> None:
    staff = world.users["staff"]
    user = None if persona == "anonymous" else world.users[persona]
    resp = web_client(user).get(f"/manage/staff/{staff.pk}/handover/")
    html = resp.content.decode()
    outside_orders, outside_needs = moved["outside"]["orders"], moved["outside"]["needs"]
    for oid in outside_orders:
        if persona not in SEES_OLD_WORK:
            assert f"/staff/orders/{oid}/" not in html and f"#{oid}<" not in html, persona
    for nid in outside_needs:
        if persona not in SEES_OLD_WORK:
            assert f"/staff/needs/{nid}/" not in html and f"#{nid}<" not in html, persona
    if persona not in ALLOWED:
        assert resp.status_code in (302, 403, 404), (persona, resp.status_code)
        return
    assert resp.status_code == 200
    orders, needs = expected_lists(persona, moved)
    for oid in orders:
        assert f"/staff/orders/{oid}/" in html
    for nid in needs:
        assert f"/staff/needs/{nid}/" in html
    if persona in SEES_OLD_WORK:
        assert moved["outside_start"] in html and 'id="handover-out-of-reach"' not in html
    else:
        assert moved["outside_start"] not in html and "顺河社区" not in html.split('id="handover-form"')[0]
        notice = html.split('id="handover-out-of-reach"')[1].split("</p>")[0]
        assert "1 个订单和 1 条需求不在您的管辖范围内" in notice


def test_hand_over_of_unreachable_work_is_still_refused(world: World, moved: dict[str, Any]) -> None:
    """The list hides the old subtree's work from 泥沟镇's admin; the hand-over still refuses to move it: nothing
    moves."""
    staff = world.users["staff"]
    next_ = world.users["staff_next"]  # 泥沟村: reachable by 泥沟镇's admin, but cannot reach 顺河社区's work
    resp = world.api("branch2_admin").post(f"/api/v1/staff/{staff.pk}/handover", {"to_staff_id": next_.pk})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "out_of_reach", resp.content
    assert not WorkOwner.objects.exists()
