"""工作交接 (issue 13, staff lifecycle): a departing staff member's open work — orders they dispatched that are not
finished, needs they follow — is listed on their login's page and handed to another staff login of the admin's
subtree in one audited, all-or-nothing action."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.conftest import World, web_client
from tests.test_orders import items as items
from tests.test_orders import order_body
from tests.test_trust_08_races import THREADS, Call, fire, postgres_only
from timebank.audit.models import AuditEntry
from timebank.catalogue.models import ServiceItem
from timebank.needs.actions import do_add_follow_up, do_create_need, do_hand_over
from timebank.needs.handover import open_needs, open_orders
from timebank.needs.models import Need, WorkOwner
from timebank.orgs.actions import do_create_staff
from timebank.orgs.models import User


@pytest.fixture
def work(world: World, items: dict[str, ServiceItem]) -> dict[str, int]:
    """顺河社区's staff dispatched two orders (one then cancelled: finished) and follows one need of two."""
    ids: dict[str, int] = {}
    for hours, name in enumerate(("open", "cancelled")):
        start = (timezone.now() + dt.timedelta(hours=2 + 3 * hours)).isoformat()
        created = world.api("staff").post(
            "/api/v1/orders", order_body(world, items["cleaning"], 60, "subsidy", scheduled_start=start)
        )
        assert created.status_code == 201, created.content
        oid = created.json()["id"]
        dispatched = world.api("staff").post(
            f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk}
        )
        assert dispatched.status_code == 200, dispatched.content
        ids[name] = oid
    assert (
        world.api("staff").post(f"/api/v1/orders/{ids['cancelled']}/cancel", {"reason": "老人住院"}).status_code == 200
    )
    mine = do_create_need(
        world.users["staff"], recipient=world.members["recipient"], level="essential", found_by="home_visit"
    )
    theirs = do_create_need(
        world.users["staff"], recipient=world.members["recipient"], level="general", found_by="home_visit"
    )
    do_add_follow_up(world.users["branch_admin"], theirs, note="分行跟进")  # now the branch admin follows it
    ids["need"], ids["other_need"] = mine.pk, theirs.pk
    world.users["staff_two"] = do_create_staff(
        world.users["superuser"],
        org=world.community,
        username="staff_two",
        password="pass-word-1",
        name="小周",
        role="staff",
    )
    return ids


def test_open_work_is_listed_with_links(world: World, work: dict[str, int]) -> None:
    staff = world.users["staff"]
    assert [o.pk for o in open_orders(staff)] == [work["open"]]
    assert [n.pk for n in open_needs(staff)] == [work["need"]]
    client = web_client(world.users["branch_admin"])
    listing = client.get("/manage/staff/").content.decode()
    assert f"/manage/staff/{staff.pk}/handover/" in listing
    page = client.get(f"/manage/staff/{staff.pk}/handover/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f"/staff/orders/{work['open']}/" in html and f"/staff/needs/{work['need']}/" in html
    assert f"/staff/orders/{work['cancelled']}/" not in html and f"/staff/needs/{work['other_need']}/" not in html
    assert 'name="to_staff_id"' in html and f'value="{world.users["staff_two"].pk}"' in html
    assert f'value="{world.users["staff_next"].pk}"' not in html  # 泥沟村 is outside 运河街道


def test_hand_over_moves_all_open_work_and_is_audited(world: World, work: dict[str, int]) -> None:
    staff, two = world.users["staff"], world.users["staff_two"]
    client = web_client(world.users["branch_admin"])
    resp = client.post(f"/manage/staff/{staff.pk}/handover/", {"to_staff_id": two.pk})
    assert resp.status_code == 302
    assert list(open_orders(staff)) == [] and list(open_needs(staff)) == []
    assert [o.pk for o in open_orders(two)] == [work["open"]]
    assert [n.pk for n in open_needs(two)] == [work["need"]]
    entry = AuditEntry.objects.filter(action="staff.hand_over").get()
    assert entry.data["to_staff_id"] == two.pk and entry.data["order_ids"] == [work["open"]]
    assert entry.data["need_ids"] == [work["need"]]
    # The receiver's page now lists it; a later follow-up by someone else does not take it away.
    assert f"/staff/orders/{work['open']}/" in client.get(f"/manage/staff/{two.pk}/handover/").content.decode()
    do_add_follow_up(staff, Need.objects.get(pk=work["need"]), note="补记")
    assert [n.pk for n in open_needs(two)] == [work["need"]]
    # Handing over again (nothing left) moves nothing and fails nothing.
    assert do_hand_over(world.users["branch_admin"], staff, two) == {"order_ids": [], "need_ids": []}


@pytest.mark.parametrize(
    ("admin", "target", "status"),
    [
        ("branch_admin", "staff_next", 403),  # another branch's staff: outside the admin's subtree
        ("branch_admin", "other_bank_staff", 403),  # another bank's staff
        ("head_office_admin", "staff_next", 409),  # in the subtree, but cannot reach 顺河社区's work
        ("branch_admin", "staff", 422),  # the departing login itself
        ("branch_admin", "volunteer", 404),  # a member's login is no staff login
    ],
)
def test_refused_targets_change_nothing(
    world: World, work: dict[str, int], admin: str, target: str, status: int
) -> None:
    staff = world.users["staff"]
    resp = web_client(world.users[admin]).post(
        f"/manage/staff/{staff.pk}/handover/", {"to_staff_id": world.users[target].pk}
    )
    assert resp.status_code == status
    assert not WorkOwner.objects.exists()
    assert not AuditEntry.objects.filter(action="staff.hand_over").exists()
    assert [o.pk for o in open_orders(staff)] == [work["open"]]


@pytest.mark.parametrize("value", ["", "abc", "-1", "9" * 40, "1.5"])
def test_bad_target_ids_are_422(world: World, work: dict[str, int], value: str) -> None:
    resp = web_client(world.users["branch_admin"]).post(
        f"/manage/staff/{world.users['staff'].pk}/handover/", {"to_staff_id": value}
    )
    assert resp.status_code in (404, 422)
    assert not WorkOwner.objects.exists()


@pytest.mark.parametrize("persona", ["staff", "staff_next", "operator", "other_bank_admin", "volunteer"])
def test_only_admins_of_the_subtree_open_the_hand_over(world: World, work: dict[str, int], persona: str) -> None:
    staff = world.users["staff"]
    client = web_client(world.users[persona])
    assert client.get(f"/manage/staff/{staff.pk}/handover/").status_code == 403
    two = world.users["staff_two"]
    assert client.post(f"/manage/staff/{staff.pk}/handover/", {"to_staff_id": two.pk}).status_code == 403
    assert not WorkOwner.objects.exists()
    assert isinstance(two, User)


@postgres_only
def test_a_hand_over_sent_ten_times_at_once_acts_once(world: World, work: dict[str, int]) -> None:
    """A double click, a resend: ten identical posts at once move the work once (one audit entry); the repeats
    wait on the departing login's lock, find nothing left and go where the first went."""
    w, ids = world, work
    staff, two = w.users["staff"], w.users["staff_two"]
    answers = fire(
        w, Call("branch_admin", f"/manage/staff/{staff.pk}/handover/", {"to_staff_id": two.pk}, form=True), "plain"
    )
    assert sorted(a.status for a in answers) == [302] * THREADS
    assert AuditEntry.objects.filter(action="staff.hand_over").count() == 1
    assert [o.pk for o in open_orders(two)] == [ids["open"]] and [n.pk for n in open_needs(two)] == [ids["need"]]
    assert WorkOwner.objects.count() == 2
