"""Finding 6 of issue 12: the anonymous registration told whether an ID number was already a member's.

`POST /register` with a taken username and a candidate ID number answered `duplicate_id_number` when the number
was a member's and `username_taken` when it was not: 220 requests recovered a member's full number. Now the
username is checked first (its answer never depends on the number), a registration with a number that is already
a member's is accepted as `pending` like any other and flagged for staff, who see the duplicate when they review
(approving it is 409), and anonymous registration is rate-limited per client address.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.test import Client

from tests.conftest import World, error_code, new_id_number, web_client
from timebank.members.actions import MemberInput, do_approve_member, do_register_member, duplicate_of
from timebank.members.models import Member, MemberStatus
from timebank.orgs.models import User


def _body(world: World, username: str, number: str | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "新会员",
        "home_org_id": world.community.pk,
        "login": {"username": username, "password": "long-enough-9"},
        **extra,
    }
    if number is not None:
        body["id_number"] = number
    return body


def _shape(answer: dict[str, Any]) -> dict[str, Any]:
    """What may differ between two registrations: their ids, names, numbers and times; not the rest."""
    varying = {"id", "created_at", "id_number_masked", "birth_date"}
    return {k: (type(v).__name__ if k in varying else v) for k, v in answer.items()}


def test_finding_6_register_does_not_tell_whether_an_id_number_is_a_members(world: World) -> None:
    anonymous = world.api("anonymous")
    taken = world.members["volunteer"].id_number()
    other_bank_taken = world.members["stranger"].id_number()

    # A taken username: the same answer, whatever the number (a member's, another bank's, a new one, none).
    answers = [
        anonymous.post("/api/v1/register", _body(world, "volunteer", number))
        for number in (taken, other_bank_taken, new_id_number(), None)
    ]
    assert {a.status_code for a in answers} == {409}
    assert {error_code(a) for a in answers} == {"username_taken"}
    assert len({a.content for a in answers}) == 1, [a.content for a in answers]

    # A free username and a member's number: 201 pending, like a registration with a number nobody has.
    fresh = anonymous.post("/api/v1/register", _body(world, "fresh-one", new_id_number()))
    dup = anonymous.post("/api/v1/register", _body(world, "second-one", taken))
    assert fresh.status_code == dup.status_code == 201, (fresh.content, dup.content)
    assert dup.json()["status"] == "pending"
    assert _shape(dup.json()) == _shape(fresh.json())
    assert dup.json()["duplicate_of_id"] is None  # the flag is for staff only

    # Flagged for staff; the registrant's own login does not see the flag either.
    member = Member.objects.get(pk=dup.json()["id"])
    assert duplicate_of(member) == world.members["volunteer"].pk
    assert duplicate_of(Member.objects.get(pk=fresh.json()["id"])) is None
    token = anonymous.post("/api/v1/auth/token", {"username": "second-one", "password": "long-enough-9"}).json()
    me = Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token['token']}").json()
    assert me["member"]["id"] == member.pk and me["member"]["duplicate_of_id"] is None


def test_username_taken_answers_before_anything_about_the_number(world: World) -> None:
    anonymous = world.api("anonymous")
    taken = world.members["volunteer"].id_number()
    # Even with a bad check digit or another field wrong, a taken username is the answer: nothing about the number.
    bad_digit = taken[:-1] + ("0" if taken[-1] != "0" else "1")
    for number in (taken, bad_digit):
        resp = anonymous.post("/api/v1/register", _body(world, "volunteer", number))
        assert resp.status_code == 409 and error_code(resp) == "username_taken", resp.content
    # With a free username, a bad check digit is a 422 (public arithmetic, no oracle), nothing written.
    before = Member.objects.count()
    resp = anonymous.post("/api/v1/register", _body(world, "free-name", bad_digit))
    assert resp.status_code == 422 and error_code(resp) == "id_number_checksum"
    assert Member.objects.count() == before and not User.objects.filter(username="free-name").exists()


def test_staff_see_the_duplicate_and_approving_it_is_409(world: World) -> None:
    anonymous, staff = world.api("anonymous"), world.api("staff")
    holder = world.members["volunteer"]
    dup_id = anonymous.post("/api/v1/register", _body(world, "dup-one", holder.id_number())).json()["id"]
    ok_id = anonymous.post("/api/v1/register", _body(world, "ok-one", new_id_number())).json()["id"]

    one = staff.get(f"/api/v1/members/{dup_id}").json()
    assert one["status"] == "pending" and one["duplicate_of_id"] == holder.pk
    listed = {m["id"]: m for m in staff.get("/api/v1/members", {"status": "pending"}).json()["items"]}
    assert listed[dup_id]["duplicate_of_id"] == holder.pk and listed[ok_id]["duplicate_of_id"] is None

    resp = staff.post(f"/api/v1/members/{dup_id}/approve")
    assert resp.status_code == 409 and error_code(resp) == "duplicate_id_number", resp.content
    assert Member.objects.get(pk=dup_id).status == MemberStatus.PENDING
    assert staff.post(f"/api/v1/members/{ok_id}/approve").status_code == 200

    # Refusing the duplicate registration (it leaves) drops the number it gave; the holder keeps theirs.
    resp = staff.post(f"/api/v1/members/{dup_id}/leave")
    assert resp.status_code == 200 and resp.json()["status"] == "left"
    left = Member.objects.get(pk=dup_id)
    assert left.id_number_hash == "" and left.id_number_encrypted == "" and left.id_number_masked == ""
    assert Member.objects.get(pk=holder.pk).id_number() == holder.id_number()


def test_two_pending_registrations_of_one_number_only_one_is_approved(world: World) -> None:
    anonymous, staff = world.api("anonymous"), world.api("staff")
    number = new_id_number()
    first = anonymous.post("/api/v1/register", _body(world, "first", number))
    second = anonymous.post("/api/v1/register", _body(world, "second", number))
    assert first.status_code == second.status_code == 201
    assert staff.get(f"/api/v1/members/{second.json()['id']}").json()["duplicate_of_id"] == first.json()["id"]
    assert staff.post(f"/api/v1/members/{first.json()['id']}/approve").status_code == 200
    resp = staff.post(f"/api/v1/members/{second.json()['id']}/approve")
    assert resp.status_code == 409 and error_code(resp) == "duplicate_id_number"


def test_staff_created_members_keep_the_409_and_flag_pending_registrations(world: World) -> None:
    anonymous, staff = world.api("anonymous"), world.api("staff")
    resp = staff.post(
        "/api/v1/members",
        {"name": "乙", "home_org_id": world.community.pk, "id_number": world.members["volunteer"].id_number()},
    )
    assert resp.status_code == 409 and error_code(resp) == "duplicate_id_number"
    # A number only a pending registration gave is nobody's yet: staff may register its owner, and the
    # pending registration is then a duplicate of that member.
    number = new_id_number()
    pending_id = anonymous.post("/api/v1/register", _body(world, "early-bird", number)).json()["id"]
    created = staff.post("/api/v1/members", {"name": "本人", "home_org_id": world.community.pk, "id_number": number})
    assert created.status_code == 201, created.content
    assert staff.get(f"/api/v1/members/{pending_id}").json()["duplicate_of_id"] == created.json()["id"]
    resp = staff.post(f"/api/v1/members/{pending_id}/approve")
    assert resp.status_code == 409 and error_code(resp) == "duplicate_id_number"
    # Patching an active member to another active member's number stays 409.
    resp = staff.patch(f"/api/v1/members/{created.json()['id']}", {"id_number": world.members["volunteer"].id_number()})
    assert resp.status_code == 409 and error_code(resp) == "duplicate_id_number"


def test_the_database_keeps_two_accepted_members_of_a_bank_from_sharing_a_number(world: World) -> None:
    number = world.members["volunteer"].id_number()
    dup = do_register_member(
        None, home_org=world.community, data=MemberInput(name="重复", id_number=number), approved=False
    )
    for status in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED, MemberStatus.LEFT):
        with pytest.raises(IntegrityError), transaction.atomic():
            Member.objects.filter(pk=dup.pk).update(status=status)


def test_anonymous_registration_is_rate_limited_per_client_address(world: World, settings: Any) -> None:
    settings.REGISTER_LIMIT_PER_HOUR = 3
    anonymous = world.api("anonymous")
    for i in range(3):
        resp = anonymous.post("/api/v1/register", _body(world, f"rl-{i}", new_id_number()))
        assert resp.status_code == 201, resp.content
    before = Member.objects.count()
    for body in (_body(world, "rl-x", new_id_number()), _body(world, "volunteer", None)):
        resp = anonymous.post("/api/v1/register", body)
        assert resp.status_code == 429 and error_code(resp) == "rate_limited", resp.content
    assert Member.objects.count() == before
    # Another address is counted on its own.
    resp = anonymous.post("/api/v1/register", _body(world, "rl-other", new_id_number()), REMOTE_ADDR="10.1.2.3")
    assert resp.status_code == 201, resp.content
    # The join page counts against the same limit.
    resp = Client().post("/join/", _join_form(world, "rl-page"))
    assert resp.status_code == 429
    assert not User.objects.filter(username="rl-page").exists()
    # Staff registering members are not limited.
    resp = world.api("staff").post("/api/v1/members", {"name": "工作人员登记", "home_org_id": world.community.pk})
    assert resp.status_code == 201


def test_behind_the_proxy_the_limit_counts_the_address_nginx_saw(world: World, settings: Any) -> None:
    settings.REGISTER_LIMIT_PER_HOUR = 2
    settings.TRUSTED_PROXY_COUNT = 1
    anonymous = world.api("anonymous")
    # nginx appends the address it saw; what the client wrote to the left of it is not trusted.
    for i, forged in enumerate(("1.1.1.1", "2.2.2.2")):
        resp = anonymous.post(
            "/api/v1/register",
            _body(world, f"px-{i}", new_id_number()),
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_FORWARDED_FOR=f"{forged}, 203.0.113.7",
        )
        assert resp.status_code == 201, resp.content
    resp = anonymous.post(
        "/api/v1/register",
        _body(world, "px-3", new_id_number()),
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="3.3.3.3, 203.0.113.7",
    )
    assert resp.status_code == 429 and error_code(resp) == "rate_limited"
    # Another client behind the same nginx is counted on its own.
    resp = anonymous.post(
        "/api/v1/register",
        _body(world, "px-other", new_id_number()),
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="203.0.113.8",
    )
    assert resp.status_code == 201, resp.content


def _join_form(world: World, username: str) -> dict[str, Any]:
    return {
        "home_org": world.community.pk,
        "name": "孙桂兰",
        "phone": "13900001111",
        "gender": "female",
        "birth_date": "1958-04-02",
        "roles": ["volunteer"],
        "username": username,
        "password1": "long-enough-1",
        "password2": "long-enough-1",
    }


def test_join_page_is_limited_too_and_tells_only_about_the_username(world: World, settings: Any) -> None:
    settings.REGISTER_LIMIT_PER_HOUR = 2
    # The page asks no ID number; a taken username is said as such, nothing else.
    resp = Client().post("/join/", _join_form(world, "volunteer"))
    assert resp.status_code == 422 and "这个用户名已经有人用了" in resp.content.decode()
    resp = Client().post("/join/", _join_form(world, "page-one"))
    assert resp.status_code == 302
    resp = Client().post("/join/", _join_form(world, "page-two"))
    assert resp.status_code == 429
    assert "太频繁" in resp.content.decode()
    assert not User.objects.filter(username="page-two").exists()
    # The API from the same address is over the limit as well.
    resp = world.api("anonymous").post("/api/v1/register", _body(world, "api-after-page", new_id_number()))
    assert resp.status_code == 429


def test_staff_review_page_shows_the_duplicate_and_refuses_to_approve(world: World) -> None:
    holder = world.members["volunteer"]
    dup_id = world.api("anonymous").post("/api/v1/register", _body(world, "dup-page", holder.id_number())).json()["id"]
    staff = web_client(world.users["staff"])
    page = staff.get("/staff/members/", {"status": "pending"}).content.decode()
    card = page.split(f'id="member-{dup_id}"')[1].split("</li>")[0]
    assert "身份证号与已有会员相同" in card and holder.name in card
    resp = staff.post(f"/staff/members/{dup_id}/approve/", HTTP_HX_REQUEST="true")
    assert resp.status_code == 409
    assert "身份证号" in resp.content.decode()
    assert Member.objects.get(pk=dup_id).status == MemberStatus.PENDING


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_approvals_of_two_duplicates_answer_200_and_409() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a unique race is a PostgreSQL test")
    from timebank.orgs.actions import do_create_org

    bank = do_create_org(None, name="并发银行", kind="head_office", parent=None)
    community = do_create_org(None, name="社区", kind="sub_branch", parent=bank)
    number = new_id_number()
    pending = [
        do_register_member(
            None, home_org=community, data=MemberInput(name=f"重复{i}", id_number=number), approved=False
        )
        for i in range(6)
    ]
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(pending))

    def approve(member: Member) -> None:
        try:
            barrier.wait()
            do_approve_member(None, member)
            result = "ok"
        except Exception as exc:  # the test records what each thread saw
            result = getattr(exc, "code", f"{type(exc).__name__}: {exc}")
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=approve, args=(m,)) for m in pending]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["duplicate_id_number"] * 5 + ["ok"], outcomes
    assert Member.objects.filter(bank=bank, status=MemberStatus.ACTIVE).count() == 1
