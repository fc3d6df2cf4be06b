"""Issue 13: the inter-bank move pages (跨行转移). Staff of the member's home subtree request a move from the member's
page; the head-office admins of both banks find it waiting on /staff/interbank-moves/ and approve or reject it; the
member's page shows its state. Each page asks the endpoint's access function and calls its action."""

from __future__ import annotations

from typing import Any

from django.test import Client

from tests.conftest import World, web_client
from tests.test_trust_08_races import Call, fire, postgres_only
from timebank.ledger import actions
from timebank.ledger.models import Account, InterBankMove
from timebank.members.models import Member


def member_url(w: World, persona: str = "volunteer") -> str:
    return f"/staff/members/{w.members[persona].pk}/interbank/"


def request_move(client: Client, w: World, **extra: Any) -> Any:
    body = {"idempotency_key": "k" * 32, "to_org_id": str(w.other_community.pk), "reason": "搬去女儿家"}
    body.update(extra)
    return client.post(member_url(w), body)


def requested(w: World) -> InterBankMove:
    resp = request_move(web_client(w.users["staff"]), w)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    return InterBankMove.objects.get()


def test_staff_request_a_move_from_the_members_page(world: World) -> None:
    client = web_client(world.users["staff"])
    page = client.get(member_url(world))
    html = page.content.decode()
    assert page.status_code == 200
    assert f'value="{world.other_community.pk}"' in html  # a community of the other bank
    assert f'value="{world.community2.pk}"' not in html  # not one of the member's own bank
    resp = request_move(client, world)
    assert resp.status_code == 302 and resp["Location"] == member_url(world)
    move = InterBankMove.objects.get()
    assert (move.member_id, move.to_org_id, move.status) == (
        world.members["volunteer"].pk,
        world.other_community.pk,
        "requested",
    )
    assert move.requested_by_id == world.users["staff"].pk and move.reason == "搬去女儿家"
    shown = client.get(member_url(world)).content.decode()
    assert "驻春路社区" in shown and "转出行待批准" in shown and "转入行待批准" in shown
    statement = client.get(f"/staff/members/{world.members['volunteer'].pk}/statement/").content.decode()
    assert f"#{move.pk}" in statement and move.get_status_display() in statement  # beside the member's credits
    # The member's page links here; the staff home and the list too.
    assert member_url(world) in client.get(f"/staff/members/{world.members['volunteer'].pk}/").content.decode()
    assert "/staff/interbank-moves/" in client.get("/staff/").content.decode()
    listed = client.get("/staff/interbank-moves/").content.decode()
    assert "王秀英" in listed and "等待我审批" not in listed  # staff do not approve


def test_a_double_submit_requests_once(world: World) -> None:
    client = web_client(world.users["staff"])
    assert request_move(client, world).status_code == 302
    assert request_move(client, world).status_code == 302  # the same form again: the first one's answer
    assert InterBankMove.objects.count() == 1
    again = request_move(client, world, idempotency_key="j" * 32)  # a new form: one open move per member
    assert again.status_code == 409 and "已有一个待审批的跨行转移" in again.content.decode()
    assert InterBankMove.objects.count() == 1


def test_bad_input_is_refused_with_its_reason_and_nothing_written(world: World) -> None:
    client = web_client(world.users["staff"])
    for bad in (str(world.community2.pk), str(world.bank.pk), "abc", "-1", "99999999999999999999", ""):
        resp = request_move(client, world, to_org_id=bad, idempotency_key=f"bad{bad}"[:60] or "x")
        assert resp.status_code == 422, (bad, resp.status_code)
        assert "请检查" in resp.content.decode()
    too_long = request_move(client, world, reason="长" * 501)
    assert too_long.status_code == 422
    assert not InterBankMove.objects.exists()
    # A member who left cannot move.
    Member.objects.filter(pk=world.members["volunteer"].pk).update(status="left")
    gone = request_move(client, world, idempotency_key="g" * 32)
    assert gone.status_code == 409 and "会员当前状态不能办理这项操作" in gone.content.decode()
    assert not InterBankMove.objects.exists()


def test_who_may_request_a_move(world: World) -> None:
    # Inside the subtree: the branch and head-office admins above the community.
    for persona in ("branch_admin", "head_office_admin"):
        assert web_client(world.users[persona]).get(member_url(world)).status_code == 200
    # Outside it, or not staff: refused, nothing written.
    for persona in ("staff_next", "other_bank_staff", "other_bank_admin"):
        resp = request_move(web_client(world.users[persona]), world)
        assert resp.status_code in (403, 404), (persona, resp.status_code)
    for persona in ("volunteer", "recipient", "stranger"):
        assert request_move(web_client(world.users[persona]), world).status_code == 403, persona
    assert request_move(web_client(None), world).status_code == 302  # to the login page
    assert not InterBankMove.objects.exists()
    # An operator may see the member but not request the move: no form on the page, the POST refused.
    page = web_client(world.users["operator"]).get(member_url(world))
    assert page.status_code == 200 and f'action="{member_url(world)}"' not in page.content.decode()
    assert request_move(web_client(world.users["operator"]), world).status_code == 403
    assert not InterBankMove.objects.exists()


def test_both_head_offices_approve_and_the_credits_follow(world: World) -> None:
    volunteer = world.members["volunteer"]
    actions.do_adjustment(None, member=volunteer, minutes=120, bucket="reserve", reason="开户")
    move = requested(world)
    source, target = web_client(world.users["head_office_admin"]), web_client(world.users["other_bank_admin"])
    # Each finds it waiting, from the admin home.
    assert "/staff/interbank-moves/" in source.get("/manage/").content.decode()
    for client in (source, target):
        listed = client.get("/staff/interbank-moves/").content.decode()
        assert "等待我审批" in listed and f"/staff/interbank-moves/{move.pk}/" in listed
    detail = source.get(f"/staff/interbank-moves/{move.pk}/").content.decode()
    assert f"/staff/interbank-moves/{move.pk}/approve/" in detail and "您代表转出的银行审批" in detail
    url = f"/staff/interbank-moves/{move.pk}/approve/"
    assert source.post(url, {"idempotency_key": "a" * 32}).status_code == 302
    assert source.post(url, {"idempotency_key": "a" * 32}).status_code == 302  # a double submit: once
    move.refresh_from_db()
    assert move.source_approved_by_id == world.users["head_office_admin"].pk and move.status == "requested"
    again = source.post(url, {"idempotency_key": "b" * 32})
    assert again.status_code == 409 and "这一方已经批准过了" in again.content.decode()
    # No longer waiting for the source bank; still for the target bank.
    assert (
        f"/staff/interbank-moves/{move.pk}/"
        not in source.get("/staff/interbank-moves/").content.decode().split("本机构会员的跨行转移")[0]
    )
    assert target.post(url, {"idempotency_key": "c" * 32}).status_code == 302
    move.refresh_from_db()
    assert move.status == "completed" and move.new_member is not None
    assert move.new_member.bank_id == world.other_bank.pk
    assert Account.objects.get(member=move.new_member, kind="reserve").balance_minutes == 120
    shown = web_client(world.users["staff"]).get(member_url(world)).content.decode()
    assert move.get_status_display() in shown and f"新的会员编号：{move.new_member.pk}" in shown
    closed = target.post(url, {"idempotency_key": "d" * 32})
    assert closed.status_code == 409 and "这个跨行转移已经办结" in closed.content.decode()


def test_reject_needs_a_reason(world: World) -> None:
    move = requested(world)
    target = web_client(world.users["other_bank_admin"])
    url = f"/staff/interbank-moves/{move.pk}/reject/"
    for reason in ("", "   "):
        resp = target.post(url, {"idempotency_key": "r" * 32, "reason": reason})
        assert (
            resp.status_code == 422
            and "请检查" in resp.content.decode()
            and "请写明驳回原因。" in resp.content.decode()
        )
    assert target.post(url, {"idempotency_key": "r" * 32, "reason": "长" * 501}).status_code == 422
    move.refresh_from_db()
    assert move.status == "requested"
    assert target.post(url, {"idempotency_key": "r" * 32, "reason": "材料不全"}).status_code == 302
    move.refresh_from_db()
    assert move.status == "rejected" and "材料不全" in move.reason
    shown = web_client(world.users["staff"]).get(member_url(world)).content.decode()
    assert "材料不全" in shown
    closed = web_client(world.users["head_office_admin"]).post(url, {"idempotency_key": "s" * 32, "reason": "再驳回"})
    assert closed.status_code == 409 and "这个跨行转移已经办结" in closed.content.decode()


def test_only_the_two_head_offices_open_and_decide_a_move(world: World) -> None:
    move = requested(world)
    for persona in ("staff", "branch_admin", "staff_next", "other_bank_staff", "operator", "volunteer", "stranger"):
        client = web_client(world.users[persona])
        assert client.get(f"/staff/interbank-moves/{move.pk}/").status_code == 403, persona
        for step, body in (("approve", {}), ("reject", {"reason": "不行"})):
            resp = client.post(f"/staff/interbank-moves/{move.pk}/{step}/", {"idempotency_key": "x" * 32, **body})
            assert resp.status_code == 403, (persona, step, resp.status_code)
    admin = web_client(world.users["head_office_admin"])
    assert admin.get("/staff/interbank-moves/999999/").status_code == 404
    assert admin.post("/staff/interbank-moves/999999/approve/", {"idempotency_key": "y" * 32}).status_code == 404
    assert admin.get(f"/staff/interbank-moves/{move.pk}/approve/").status_code == 405
    move.refresh_from_db()
    assert move.status == "requested" and move.source_approved_by_id is None and move.target_approved_by_id is None


@postgres_only
def test_the_request_form_sent_ten_times_at_once_makes_one_move(world: World) -> None:
    body = {"idempotency_key": "z" * 32, "to_org_id": str(world.other_community.pk), "reason": ""}
    answers = fire(world, Call("staff", member_url(world), body, form=True), "plain")
    assert sorted(a.status for a in answers) == [302] * 10, [a.status for a in answers]
    assert InterBankMove.objects.count() == 1
