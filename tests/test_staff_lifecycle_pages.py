"""Issue 13: admins run staff logins and the org tree from the pages, by clicking from the management home.

The staff logins page (/manage/staff/) is the page of GET/POST /staff, PATCH /staff/{id} and
POST /staff/{id}/password-reset; the org tree (/manage/orgs/) is the page of GET /orgs and POST /orgs. Each asks
the endpoint's access function and calls its action; the forms name their inputs after the API's fields. A head-office
admin and a branch admin act inside their subtree; another branch's logins and orgs are refused (403/404) with
nothing written; community staff and operators are refused; bad input is answered next to the field (422) with
nothing written; a temporary password is shown once, on the answer to the reset."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client

from tests.conftest import MODEL_BACKEND, World, web_client
from timebank.audit.models import AuditEntry
from timebank.orgs.models import Org, User

REFUSED = (403, 404)


def _create(client: Client, world: World, **overrides: Any) -> Any:
    form = {
        "username": "xiaozhang",
        "password": "pass-word-2",
        "name": "小张",
        "org_id": world.community.pk,
        "role": "staff",
    }
    form.update(overrides)
    return client.post("/manage/staff/", form)


def _temporary(html: str) -> str:
    match = re.search(r"<code data-temporary-password>([a-z0-9]+)</code>", html)
    assert match, "no temporary password shown"
    return match.group(1)


def _links(html: str) -> set[str]:
    return set(re.findall(r'href="([^"#?]+)', html))


def _logins() -> list[tuple[str, int | None, str, bool]]:
    return list(User.objects.order_by("pk").values_list("username", "org_id", "role", "is_active"))


def test_admins_reach_the_staff_logins_and_the_org_tree_from_their_home(world: World) -> None:
    for persona in ("head_office_admin", "branch_admin", "superuser"):
        client = web_client(world.users[persona])
        home = client.get("/manage/")
        assert home.status_code == 200
        assert {"/manage/staff/", "/manage/orgs/"} <= _links(home.content.decode()), persona
        assert client.get("/manage/staff/").status_code == 200
        assert client.get("/manage/orgs/").status_code == 200
    # The workbench's nav leads to the management home.
    assert "/manage/" in _links(web_client(world.users["branch_admin"]).get("/staff/").content.decode())


def test_the_staff_list_filters_by_org_role_and_state_like_get_staff(world: World) -> None:
    admin = web_client(world.users["head_office_admin"])
    User.objects.filter(pk=world.users["staff_next"].pk).update(is_active=False)
    every = admin.get("/manage/staff/").content.decode()
    for persona in ("branch_admin", "staff", "staff_next", "operator", "assessor"):
        assert f'id="staff-{world.users[persona].pk}"' in every, persona
    assert f'id="staff-{world.users["other_bank_admin"].pk}"' not in every  # another bank
    assert f'id="staff-{world.users["head_office_admin"].pk}"' in every  # listed, without forms (own login)
    own = every[every.index(f'id="staff-{world.users["head_office_admin"].pk}"') :]
    assert 'action="/manage/staff/' not in own.split("</li>")[0]

    def listed(query: str) -> set[int]:
        html = admin.get(f"/manage/staff/?{query}").content.decode()
        return {int(n) for n in re.findall(r'<li class="card" id="staff-(\d+)"', html)}

    assert listed(f"org_id={world.community.pk}") == {world.users["staff"].pk}
    assert listed("role=operator") == {world.users["operator"].pk}
    assert listed("is_active=false") == {world.users["staff_next"].pk}
    assert world.users["staff_next"].pk not in listed("is_active=true")
    # A tampered filter lists everything rather than failing; another bank's org finds nothing of it.
    assert listed("role=king&is_active=maybe") == listed("")
    assert world.users["other_bank_staff"].pk not in listed(f"org_id={world.other_community.pk}")
    # A branch admin's list is its subtree only.
    branch = web_client(world.users["branch_admin"]).get("/manage/staff/").content.decode()
    assert f'id="staff-{world.users["staff"].pk}"' in branch
    assert f'id="staff-{world.users["staff_next"].pk}"' not in branch
    assert f'id="staff-{world.users["head_office_admin"].pk}"' not in branch


def test_a_branch_admin_creates_moves_disables_reenables_and_resets_a_login(world: World) -> None:
    admin = web_client(world.users["branch_admin"])
    resp = _create(admin, world)
    assert resp.status_code == 302, resp.content.decode()
    new = User.objects.get(username="xiaozhang")
    assert (new.org_id, new.role, new.display_name, new.is_active) == (world.community.pk, "staff", "小张", True)
    assert AuditEntry.objects.filter(action="staff.create", object_id=str(new.pk)).exists()
    assert "xiaozhang" in admin.get(resp["Location"]).content.decode()

    # Move to the outlet (the form's inputs are PATCH /staff/{id}'s fields).
    resp = admin.post(f"/manage/staff/{new.pk}/", {"org_id": world.outlet.pk, "role": "staff", "is_active": "on"})
    assert resp.status_code == 302
    new.refresh_from_db()
    assert new.org_id == world.outlet.pk and new.is_active
    # Disable: the login stops; enable again.
    assert admin.post(f"/manage/staff/{new.pk}/", {"org_id": world.outlet.pk, "role": "staff"}).status_code == 302
    new.refresh_from_db()
    assert new.is_active is False
    assert Client().post("/login/", {"username": "xiaozhang", "password": "pass-word-2"}).status_code != 302
    resp = admin.post(f"/manage/staff/{new.pk}/", {"org_id": world.outlet.pk, "role": "staff", "is_active": "on"})
    assert resp.status_code == 302
    new.refresh_from_db()
    assert new.is_active is True
    assert AuditEntry.objects.filter(action="staff.update", object_id=str(new.pk)).count() == 3

    # Reset: the temporary password is on the answer, once; the old password stops.
    listing = admin.get("/manage/staff/").content.decode()
    assert f'action="/manage/staff/{new.pk}/password-reset/"' in listing
    resp = admin.post(f"/manage/staff/{new.pk}/password-reset/")
    assert resp.status_code == 200 and "no-cache" in resp.get("Cache-Control", "")
    temporary = _temporary(resp.content.decode())
    new.refresh_from_db()
    assert new.must_change_password and new.check_password(temporary)
    assert not new.check_password("pass-word-2")
    assert temporary not in admin.get("/manage/staff/").content.decode()
    assert admin.get(f"/manage/staff/{new.pk}/password-reset/").status_code == 405  # no way to show it again
    assert AuditEntry.objects.filter(action="login.password_reset", object_id=str(new.pk)).exists()
    assert not AuditEntry.objects.filter(data__icontains=temporary).exists()
    # The person logs in with it and must choose their own password first.
    person = Client()
    resp = person.post("/login/", {"username": "xiaozhang", "password": temporary})
    assert resp.status_code == 302 and resp["Location"].startswith("/me/password/")


def test_a_head_office_admin_moves_a_login_between_branches(world: World) -> None:
    admin = web_client(world.users["head_office_admin"])
    staff = world.users["staff"]
    resp = admin.post(f"/manage/staff/{staff.pk}/", {"org_id": world.community2.pk, "role": "staff", "is_active": "on"})
    assert resp.status_code == 302
    staff.refresh_from_db()
    assert staff.org_id == world.community2.pk
    # Now outside the branch admin's subtree: its page no longer lists it nor lets it act.
    branch = web_client(world.users["branch_admin"])
    assert f'id="staff-{staff.pk}"' not in branch.get("/manage/staff/").content.decode()
    assert branch.post(f"/manage/staff/{staff.pk}/password-reset/").status_code in REFUSED


def test_a_branch_admin_cannot_touch_another_branchs_logins(world: World) -> None:
    admin = web_client(world.users["branch_admin"])
    other = world.users["staff_next"]  # 泥沟村, under the other branch
    before = _logins()
    password = User.objects.get(pk=other.pk).password
    for form in (
        {"org_id": world.community2.pk, "role": "staff"},  # disable it
        {"org_id": world.community.pk, "role": "staff", "is_active": "on"},  # pull it into the own subtree
    ):
        assert admin.post(f"/manage/staff/{other.pk}/", form).status_code in REFUSED
    assert admin.post(f"/manage/staff/{other.pk}/password-reset/").status_code in REFUSED
    # Nor a login of higher rank, nor another bank's, nor its own (that is /me/password/).
    for target in ("head_office_admin", "other_bank_staff", "branch_admin"):
        pk = world.users[target].pk
        assert admin.post(f"/manage/staff/{pk}/password-reset/").status_code in REFUSED, target
        form = {"org_id": world.branch.pk, "role": "branch_admin"}
        assert admin.post(f"/manage/staff/{pk}/", form).status_code in REFUSED, target
    # Unknown ids and members' logins are not staff logins.
    assert admin.post("/manage/staff/999999/password-reset/").status_code == 404
    assert admin.post(f"/manage/staff/{world.users['volunteer'].pk}/password-reset/").status_code == 404
    assert _logins() == before
    assert User.objects.get(pk=other.pk).password == password
    assert not AuditEntry.objects.filter(action__in=["staff.update", "login.password_reset"]).exists()


@pytest.mark.parametrize("persona", ["staff", "operator", "assessor", "volunteer"])
def test_community_staff_operators_and_members_are_refused(world: World, persona: str) -> None:
    client = web_client(world.users[persona])
    before, orgs = _logins(), Org.objects.count()
    target = world.users["staff_next"].pk
    assert client.get("/manage/staff/").status_code == 403
    assert _create(client, world).status_code == 403
    assert client.post(f"/manage/staff/{target}/", {"org_id": world.community.pk, "role": "staff"}).status_code == 403
    assert client.post(f"/manage/staff/{target}/password-reset/").status_code == 403
    form = {"parent_id": world.community.pk, "kind": "outlet", "name": "偷开的网点"}
    assert client.post("/manage/orgs/", form).status_code == 403
    assert _logins() == before and Org.objects.count() == orgs
    if persona == "staff":
        # Community staff read their part of the tree, without the form that opens an org.
        tree = client.get("/manage/orgs/").content.decode()
        assert world.community.name in tree and world.outlet.name in tree
        assert world.branch.name not in tree and 'action="/manage/orgs/"' not in tree
    # Nothing on their management home leads to the staff logins.
    home = client.get("/manage/")
    assert home.status_code in (200, 403) and "/manage/staff/" not in home.content.decode()
    assert Client().get("/manage/staff/").status_code == 302  # a visitor logs in first


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"role": "king"}, "role", ""),  # unknown role
        ({"role": "head_office_admin"}, "role", ""),  # above the caller's own
        ({"role": "branch_admin"}, "role", "这个角色不能设在这种机构"),  # a branch admin at a community
        ({"org_id": "__other_branch__"}, "org_id", ""),  # outside the subtree
        ({"org_id": "__other_bank__"}, "org_id", ""),
        ({"org_id": "abc"}, "org_id", ""),
        ({"org_id": "-1"}, "org_id", ""),
        ({"org_id": "99999999999999999999999"}, "org_id", ""),
        ({"username": "staff"}, "username", "这个用户名已经有人用了"),  # duplicate
        ({"username": "  "}, "username", ""),
        ({"username": "x" * 151}, "username", ""),
        ({"password": "short"}, "password", ""),
        ({"password": "x" * 129}, "password", ""),
        ({"name": ""}, "name", ""),
        ({"name": "名" * 101}, "name", ""),
    ],
)
def test_bad_input_to_create_is_answered_next_to_the_field_and_nothing_is_written(
    world: World, overrides: dict[str, str], field: str, text: str
) -> None:
    swap = {"__other_branch__": world.community2.pk, "__other_bank__": world.other_community.pk}
    overrides = {k: str(swap.get(v, v)) for k, v in overrides.items()}
    before, audit = _logins(), AuditEntry.objects.count()
    resp = _create(web_client(world.users["branch_admin"]), world, **overrides)
    assert resp.status_code == 422
    html = resp.content.decode()
    assert f'id="id_{field}_error_1"' in html, html[html.find("form-errors") :][:600]
    assert text in html
    assert 'value="小张"' in html or field == "name"  # what was typed stays
    assert _logins() == before and AuditEntry.objects.count() == audit


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"org_id": "__community__", "role": "king", "is_active": "on"}, "role"),
        ({"org_id": "__community__", "role": "head_office_admin", "is_active": "on"}, "role"),
        ({"org_id": "__community__", "role": "branch_admin", "is_active": "on"}, "role"),  # wrong kind of org
        ({"org_id": "__other_branch__", "role": "staff", "is_active": "on"}, "org_id"),
        ({"org_id": "", "role": "staff", "is_active": "on"}, "org_id"),
        ({"role": "staff"}, "org_id"),
    ],
)
def test_bad_input_to_a_move_is_answered_next_to_the_field_and_nothing_is_written(
    world: World, form: dict[str, str], field: str
) -> None:
    swap = {"__community__": world.community.pk, "__other_branch__": world.community2.pk}
    form = {k: str(swap.get(v, v)) for k, v in form.items()}
    target = world.users["staff"]
    before, audit = _logins(), AuditEntry.objects.count()
    resp = web_client(world.users["branch_admin"]).post(f"/manage/staff/{target.pk}/", form)
    assert resp.status_code == 422
    html = resp.content.decode()
    assert f'id="staff-{target.pk}-{field}_error_1"' in html
    assert _logins() == before and AuditEntry.objects.count() == audit


def test_the_org_tree_shows_the_callers_subtree(world: World) -> None:
    head = web_client(world.users["head_office_admin"]).get("/manage/orgs/").content.decode()
    for org in (world.bank, world.branch, world.branch2, world.community, world.community2, world.outlet):
        assert f'id="org-{org.pk}"' in head, org.name
    assert f'id="org-{world.other_bank.pk}"' not in head
    # Nested: the outlet sits inside its community inside its branch.
    branch_part = head[head.index(f'id="org-{world.branch.pk}"') : head.index(f'id="org-{world.branch2.pk}"')]
    assert f'id="org-{world.community.pk}"' in branch_part and f'id="org-{world.outlet.pk}"' in branch_part
    branch = web_client(world.users["branch_admin"]).get("/manage/orgs/").content.decode()
    assert f'id="org-{world.branch.pk}"' in branch and f'id="org-{world.outlet.pk}"' in branch
    assert f'id="org-{world.bank.pk}"' not in branch and f'id="org-{world.branch2.pk}"' not in branch
    # Each node links to its staff logins and offers to open an org under it (not under an outlet).
    assert f"/manage/staff/?org_id={world.community.pk}" in branch
    assert f"/manage/orgs/?parent_id={world.community.pk}#org-new" in branch
    assert f"/manage/orgs/?parent_id={world.outlet.pk}#org-new" not in branch
    # The link preselects the parent.
    chosen = web_client(world.users["branch_admin"]).get(f"/manage/orgs/?parent_id={world.community.pk}")
    assert re.search(rf'<option value="{world.community.pk}" selected>', chosen.content.decode())


def test_admins_open_a_sub_branch_and_an_outlet_from_the_tree(world: World) -> None:
    admin = web_client(world.users["branch_admin"])
    resp = admin.post("/manage/orgs/", {"parent_id": world.branch.pk, "kind": "sub_branch", "name": "  新河社区 "})
    assert resp.status_code == 302, resp.content.decode()
    community = Org.objects.get(name="新河社区")
    assert (community.kind, community.parent_id, community.head_office_id) == (
        "sub_branch",
        world.branch.pk,
        world.bank.pk,
    )
    assert community.path == f"{world.branch.path}{community.pk}/"
    assert AuditEntry.objects.filter(action="org.create", object_id=str(community.pk)).exists()
    resp = admin.post("/manage/orgs/", {"parent_id": community.pk, "kind": "outlet", "name": "新河网点"})
    assert resp.status_code == 302
    outlet = Org.objects.get(name="新河网点")
    assert outlet.parent_id == community.pk
    tree = admin.get(resp["Location"]).content.decode()
    assert f'id="org-{outlet.pk}"' in tree
    # A login can be made there at once.
    assert _create(admin, world, org_id=outlet.pk, username="xinhe").status_code == 302
    # The head-office admin opens a branch under the bank; the superuser opens a bank.
    head = web_client(world.users["head_office_admin"])
    assert (
        head.post("/manage/orgs/", {"parent_id": world.bank.pk, "kind": "branch", "name": "涧头集镇"}).status_code
        == 302
    )
    assert Org.objects.get(name="涧头集镇").parent_id == world.bank.pk
    root = web_client(world.users["superuser"])
    assert (
        root.post("/manage/orgs/", {"parent_id": "", "kind": "head_office", "name": "峄城区时间银行"}).status_code
        == 302
    )
    bank = Org.objects.get(name="峄城区时间银行")
    assert bank.head_office_id == bank.pk and bank.parent_id is None


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"parent_id": "__other_branch__", "kind": "outlet", "name": "越界网点"}, "parent_id"),
        ({"parent_id": "__other_bank__", "kind": "outlet", "name": "越界网点"}, "parent_id"),
        ({"parent_id": "__outlet__", "kind": "outlet", "name": "网点下的网点"}, "parent_id"),
        ({"parent_id": "__community__", "kind": "sub_branch", "name": "支行下的支行"}, "parent_id"),
        ({"parent_id": "__branch__", "kind": "head_office", "name": "自封总行"}, "kind"),
        ({"parent_id": "", "kind": "head_office", "name": "自封总行"}, "kind"),
        ({"parent_id": "", "kind": "branch", "name": "无上级"}, "parent_id"),
        ({"parent_id": "__branch__", "kind": "planet", "name": "未知类型"}, "kind"),
        ({"parent_id": "__branch__", "kind": "outlet", "name": "   "}, "name"),
        ({"parent_id": "__branch__", "kind": "outlet", "name": "长" * 101}, "name"),
        ({"parent_id": "abc", "kind": "outlet", "name": "网点"}, "parent_id"),
        ({"parent_id": "-5", "kind": "outlet", "name": "网点"}, "parent_id"),
    ],
)
def test_bad_input_to_open_an_org_is_answered_next_to_the_field_and_nothing_is_written(
    world: World, form: dict[str, str], field: str
) -> None:
    swap = {
        "__other_branch__": world.community2.pk,
        "__other_bank__": world.other_community.pk,
        "__outlet__": world.outlet.pk,
        "__community__": world.community.pk,
        "__branch__": world.branch.pk,
    }
    form = {k: str(swap.get(v, v)) for k, v in form.items()}
    orgs, audit = Org.objects.count(), AuditEntry.objects.count()
    resp = web_client(world.users["branch_admin"]).post("/manage/orgs/", form)
    assert resp.status_code == 422
    assert f'id="id_{field}_error_1"' in resp.content.decode()
    assert Org.objects.count() == orgs and AuditEntry.objects.count() == audit


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers")
@pytest.mark.django_db(transaction=True)
def test_the_same_new_login_sent_ten_times_at_once_makes_one(world: World) -> None:
    admin = world.users["branch_admin"]
    barrier = threading.Barrier(10)
    statuses: list[int] = []
    form = {
        "username": "same-one",
        "password": "pass-word-2",
        "name": "同一人",
        "org_id": world.community.pk,
        "role": "staff",
    }

    def send() -> None:
        try:
            client = Client(raise_request_exception=False)
            client.force_login(admin, backend=MODEL_BACKEND)
            barrier.wait(timeout=30)
            statuses.append(client.post("/manage/staff/", form).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [302] + [422] * 9, statuses
    assert User.objects.filter(username="same-one").count() == 1


def test_a_refused_move_comes_back_on_the_same_page_of_the_filtered_list(world: World) -> None:
    admin = web_client(world.users["head_office_admin"])
    target = world.users["staff_next"]
    query = f"org_id={world.community2.pk}"
    listing = admin.get(f"/manage/staff/?{query}").content.decode()
    action = f'action="/manage/staff/{target.pk}/?{query}"'
    assert action in listing
    resp = admin.post(f"/manage/staff/{target.pk}/?{query}", {"org_id": world.community2.pk, "role": "king"})
    assert resp.status_code == 422
    assert f'id="staff-{target.pk}-role_error_1"' in resp.content.decode()
    resp = admin.post(f"/manage/staff/{target.pk}/?{query}", {"org_id": world.community2.pk, "role": "staff"})
    assert resp.status_code == 302 and resp["Location"] == f"/manage/staff/?{query}#staff-{target.pk}"
    target.refresh_from_db()
    assert target.is_active is False
