"""Finding 7 of issue 12: four eyes (四眼原则) on large credits, and service records checked like dispatch.

Staff once added 500,000 minutes in one adjustment, alone; and a service record credited a member who is
only a recipient. Now a person's credit to one member above the head office's `approval_threshold_minutes`
waits as `pending_approval` (202) until a second staff member or admin of the same subtree or above
approves it; below the threshold it posts at once. System calls (actor None: settlement, the demo's
import) are not people and post at once.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from tests.conftest import World, error_code, make_member, web_client
from timebank.approvals.actions import do_approve
from timebank.approvals.models import Approval, ApprovalKind, ApprovalState
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.evaluation.actions import do_impose_penalty
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction
from timebank.ledger.verify import verify
from timebank.members.models import Certificate, Member
from timebank.orders.models import ServiceRecord
from timebank.orgs.actions import do_create_staff, do_issue_token
from timebank.orgs.models import Rules, User

ADJUST = "/api/v1/ledger/adjustments"
RECORDS = "/api/v1/service-records"


def earned(member: Member) -> int:
    return Account.objects.get(member=member, kind="earned").balance_minutes


def big_adjustment(w: World, persona: str = "staff", minutes: int = 500_000, key: str = "big-1") -> Any:
    body = {
        "member_id": w.members["volunteer"].pk,
        "minutes": minutes,
        "bucket": "earned",
        "reason": "纸质台账补录",
        "idempotency_key": key,
    }
    return w.api(persona).post(ADJUST, body)


@pytest.fixture
def cleaning(world: World) -> ServiceItem:
    return do_create_service_item(None, head_office=world.bank, name="清洁日", category="environment", tier="ordinary")


def second_staff(w: World, username: str = "staff_two") -> User:
    """Another staff member of the volunteer's community: the second pair of eyes."""
    return do_create_staff(
        w.users["superuser"], org=w.community, username=username, password="pass-word-1", name=username, role="staff"
    )


def record_body(w: World, item: ServiceItem, member: str = "volunteer", minutes: int = 1440, key: str = "sr-1") -> dict:
    return {
        "volunteer_id": w.members[member].pk,
        "service_item_id": item.pk,
        "minutes": minutes,
        "served_at": (timezone.now() - dt.timedelta(hours=3)).isoformat(),
        "memo": "社区清洁日",
        "idempotency_key": key,
    }


def test_finding_7_half_a_million_minutes_waits_and_a_recipient_cannot_be_credited(
    world: World, cleaning: ServiceItem
) -> None:
    w = world
    volunteer = w.members["volunteer"]
    before_tx = Transaction.objects.count()

    # 500,000 minutes in one call: nothing moves, it waits for a second person.
    resp = big_adjustment(w)
    assert resp.status_code == 202, resp.content
    body = resp.json()
    assert body == {
        "approval_id": body["approval_id"],
        "state": "pending_approval",
        "kind": "adjustment",
        "member_id": volunteer.pk,
        "minutes": 500_000,
    }
    assert earned(volunteer) == 0 and Transaction.objects.count() == before_tx
    assert AuditEntry.objects.filter(action="approval.request").count() == 1

    # A day's service record (1,440 minutes credited) waits too.
    resp = w.api("staff").post(RECORDS, record_body(w, cleaning))
    assert resp.status_code == 202, resp.content
    assert resp.json()["kind"] == "service_record" and resp.json()["minutes"] == 1440
    assert ServiceRecord.objects.count() == 0 and earned(volunteer) == 0

    # A member who is only a recipient cannot be credited by a service record at all (dispatch's rule).
    resp = w.api("staff").post(RECORDS, record_body(w, cleaning, member="recipient", minutes=60, key="sr-r"))
    assert resp.status_code == 409 and error_code(resp) == "not_a_volunteer"
    assert ServiceRecord.objects.count() == 0 and Transaction.objects.count() == before_tx

    # The second person approves: now it posts, once.
    branch_admin = w.api("branch_admin")
    resp = branch_admin.post(f"/api/v1/approvals/{body['approval_id']}/approve")
    assert resp.status_code == 200, resp.content
    answer = resp.json()
    assert answer["approval_id"] == body["approval_id"] and answer["state"] == "approved"
    assert answer["transaction_id"] == Transaction.objects.latest("pk").pk
    assert earned(volunteer) == 500_000
    assert verify([w.bank.pk]).ok


def test_below_or_at_the_threshold_posts_at_once(world: World, cleaning: ServiceItem) -> None:
    w = world
    resp = w.api("staff").post(RECORDS, record_body(w, cleaning, minutes=60, key="small"))
    assert resp.status_code == 201, resp.content
    # With the record, the member's credits of the last 24 hours are 600: at the threshold, not above it.
    # (The threshold counts per member, not per call: tests/test_trust_07_four_eyes_bypass.py.)
    resp = big_adjustment(w, minutes=540, key="at")
    assert resp.status_code == 201, resp.content
    assert earned(w.members["volunteer"]) == 600
    # A negative adjustment creates no credit: it is not held.
    resp = big_adjustment(w, minutes=-541, key="neg")
    assert resp.status_code == 201, resp.content
    assert earned(w.members["volunteer"]) == 59 and Approval.objects.count() == 0


def test_threshold_off_and_system_calls_post_at_once(world: World) -> None:
    w = world
    volunteer = w.members["volunteer"]
    # The system (settlement, imports, the demo's opening balances) is not a person: no second person.
    tx, _r = ledger.do_adjustment(None, member=volunteer, minutes=5_000, bucket="earned", reason="开户")
    assert isinstance(tx, Transaction)
    Rules.objects.filter(head_office=w.bank).update(approval_threshold_minutes=None)
    assert big_adjustment(w, minutes=5_000, key="off").status_code == 201
    assert earned(volunteer) == 10_000 and Approval.objects.count() == 0


def test_replay_answers_the_same_202_and_another_body_under_the_key_is_409(world: World) -> None:
    w = world
    first = big_adjustment(w)
    again = big_adjustment(w)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert Approval.objects.count() == 1
    other = big_adjustment(w, minutes=400_000)
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    small = big_adjustment(w, minutes=60)  # the same key for a credit that would post at once
    assert small.status_code == 409 and error_code(small) == "idempotency_key_reused"
    # After the approval, the replay still names the same approval, and nothing posts twice.
    approval_id = first.json()["approval_id"]
    assert w.api("branch_admin").post(f"/api/v1/approvals/{approval_id}/approve").status_code == 200
    replay = big_adjustment(w)
    assert replay.status_code == 202 and replay.json()["approval_id"] == approval_id
    assert earned(w.members["volunteer"]) == 500_000


def test_the_maker_cannot_approve_their_own(world: World) -> None:
    w = world
    approval_id = big_adjustment(w).json()["approval_id"]
    resp = w.api("staff").post(f"/api/v1/approvals/{approval_id}/approve")
    assert resp.status_code == 403 and error_code(resp) == "own_request"
    resp = w.api("staff").post(f"/api/v1/approvals/{approval_id}/reject", {"reason": "自己撤回"})
    assert resp.status_code == 403
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING
    assert earned(w.members["volunteer"]) == 0


def test_a_member_cannot_approve_a_credit_to_themselves(world: World) -> None:
    """A head-office admin who is also the credited member is not a second pair of eyes."""
    w = world
    admin = w.users["head_office_admin"]
    me = w.members["volunteer"]
    me.user = admin
    me.save(update_fields=["user"])
    approval_id = big_adjustment(w).json()["approval_id"]
    resp = w.api("head_office_admin").post(f"/api/v1/approvals/{approval_id}/approve")
    assert resp.status_code == 403 and error_code(resp) == "own_credit"


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("staff_next", 403),  # staff of another community of the same bank
        ("other_bank_admin", 403),
        ("other_bank_staff", 403),
        ("operator", 403),
        ("assessor", 403),
        ("volunteer", 403),
        ("recipient", 403),
        ("anonymous", 401),
    ],
)
def test_outside_the_subtree_cannot_approve_or_see(world: World, persona: str, status: int) -> None:
    w = world
    approval_id = big_adjustment(w).json()["approval_id"]
    resp = w.api(persona).post(f"/api/v1/approvals/{approval_id}/approve")
    assert resp.status_code == status, resp.content
    resp = w.api(persona).post(f"/api/v1/approvals/{approval_id}/reject", {"reason": "不对"})
    assert resp.status_code == status
    listed = w.api(persona).get("/api/v1/approvals")
    assert listed.status_code in (200, 401, 403)
    if listed.status_code == 200:
        assert listed.json()["items"] == []
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING
    assert w.api("staff").post("/api/v1/approvals/999999/approve").status_code == 404


def test_list_is_the_callers_subtree_by_state_and_paginated(world: World) -> None:
    w = world
    ids = [big_adjustment(w, minutes=1000 + i, key=f"k{i}").json()["approval_id"] for i in range(3)]
    # one for a member of the other community, made by the head office's admin
    neighbour = w.members["neighbour"]
    other = w.api("head_office_admin").post(
        ADJUST,
        {"member_id": neighbour.pk, "minutes": 700, "bucket": "earned", "reason": "补录", "idempotency_key": "n"},
    )
    assert other.status_code == 202
    page = w.api("staff").get("/api/v1/approvals", {"state": "pending", "limit": 2})
    assert page.status_code == 200
    first = page.json()
    assert [a["approval_id"] for a in first["items"]] == [ids[2], ids[1]]
    second = w.api("staff").get("/api/v1/approvals", {"state": "pending", "limit": 2, "cursor": first["next_cursor"]})
    assert [a["approval_id"] for a in second.json()["items"]] == [ids[0]]
    assert second.json()["next_cursor"] is None
    everything = w.api("head_office_admin").get("/api/v1/approvals", {"state": "pending"}).json()["items"]
    assert len(everything) == 4
    assert w.api("staff_next").get("/api/v1/approvals").json()["items"] == [
        a for a in w.api("staff_next").get("/api/v1/approvals").json()["items"] if a["member_id"] == neighbour.pk
    ]
    assert w.api("staff").get("/api/v1/approvals", {"state": "approved"}).json()["items"] == []
    assert w.api("staff").get("/api/v1/approvals", {"state": "bogus"}).status_code == 422
    assert w.api("staff").get("/api/v1/approvals", {"limit": 0}).status_code == 422


def test_a_second_decision_is_409(world: World) -> None:
    w = world
    approved = big_adjustment(w, key="a").json()["approval_id"]
    rejected = big_adjustment(w, minutes=700, key="b").json()["approval_id"]
    admin = w.api("branch_admin")
    assert admin.post(f"/api/v1/approvals/{approved}/approve").status_code == 200
    again = w.api("head_office_admin").post(f"/api/v1/approvals/{approved}/approve")
    assert again.status_code == 409 and error_code(again) == "already_decided"
    assert admin.post(f"/api/v1/approvals/{approved}/reject", {"reason": "晚了"}).status_code == 409

    assert admin.post(f"/api/v1/approvals/{rejected}/reject", {"reason": ""}).status_code == 422
    resp = admin.post(f"/api/v1/approvals/{rejected}/reject", {"reason": "台账上没有这笔"})
    assert resp.status_code == 200 and resp.json() == {
        "approval_id": rejected,
        "state": "rejected",
        "transaction_id": None,
    }
    assert admin.post(f"/api/v1/approvals/{rejected}/approve").status_code == 409
    assert earned(w.members["volunteer"]) == 500_000
    assert Transaction.objects.filter(kind="adjustment").count() == 1
    listed = admin.get("/api/v1/approvals", {"state": "rejected"}).json()["items"]
    assert [(a["approval_id"], a["reason"]) for a in listed] == [(rejected, "台账上没有这笔")]


def test_service_records_check_the_volunteer_like_dispatch(world: World) -> None:
    w = world
    nursing = do_create_service_item(
        None,
        head_office=w.bank,
        name="上门护理",
        category="health_care",
        tier="professional",
        requires_certificate="nursing",
    )
    staff = w.api("staff")
    # no certificate for a certified item
    resp = staff.post(RECORDS, record_body(w, nursing, minutes=30, key="c1"))
    assert resp.status_code == 409 and error_code(resp) == "certificate_required"
    # with a valid one, it posts (30 × professional multiplier stays below the threshold)
    Certificate.objects.create(
        member=w.members["volunteer"], kind="nursing", valid_until=timezone.localdate() + dt.timedelta(days=30)
    )
    assert staff.post(RECORDS, record_body(w, nursing, minutes=30, key="c2")).status_code == 201
    # suspended from dispatch: no credits by service record either
    do_impose_penalty(w.users["head_office_admin"], w.members["volunteer"], kind="suspension", reason="投诉属实")
    resp = staff.post(RECORDS, record_body(w, nursing, minutes=30, key="c3"))
    assert resp.status_code == 409 and error_code(resp) == "volunteer_suspended"
    # a recipient-only member, and a member who left
    gone = make_member(w.community, "离开的人")
    gone.status = "left"
    gone.save(update_fields=["status"])
    w.members["gone"] = gone
    cleaning = do_create_service_item(None, head_office=w.bank, name="清洁", category="environment", tier="ordinary")
    for who in ("recipient", "gone"):
        resp = staff.post(RECORDS, record_body(w, cleaning, member=who, minutes=30, key=f"x-{who}"))
        assert resp.status_code in (404, 409), resp.content
        if resp.status_code == 409:
            assert error_code(resp) == "not_a_volunteer"
    assert ServiceRecord.objects.count() == 1


def test_approving_checks_the_volunteer_again(world: World, cleaning: ServiceItem) -> None:
    """Suspended while the record waited: the approval is refused and stays pending."""
    w = world
    approval_id = w.api("staff").post(RECORDS, record_body(w, cleaning)).json()["approval_id"]
    do_impose_penalty(w.users["head_office_admin"], w.members["volunteer"], kind="suspension", reason="投诉属实")
    resp = w.api("branch_admin").post(f"/api/v1/approvals/{approval_id}/approve")
    assert resp.status_code == 409 and error_code(resp) == "volunteer_suspended"
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING
    assert ServiceRecord.objects.count() == 0


def test_an_approved_service_record_is_posted_with_its_maker(world: World, cleaning: ServiceItem) -> None:
    w = world
    two = second_staff(w)
    approval_id = w.api("staff").post(RECORDS, record_body(w, cleaning)).json()["approval_id"]
    resp = Client().post(f"/api/v1/approvals/{approval_id}/approve", HTTP_AUTHORIZATION=f"Bearer {do_issue_token(two)}")
    assert resp.status_code == 200, resp.content
    rec = ServiceRecord.objects.get()
    assert rec.created_by == w.users["staff"] and rec.minutes == 1440 and rec.credited_minutes == 1440
    assert rec.transaction_id == resp.json()["transaction_id"]
    assert rec.transaction.actor == two
    assert earned(w.members["volunteer"]) == 1440
    entry = AuditEntry.objects.filter(action="approval.approve").get()
    assert entry.data["maker"] == w.users["staff"].pk


def test_require_approval_holds_even_a_small_activity_credit(world: World, cleaning: ServiceItem) -> None:
    """The interface activities use: a leader's own attendance waits whatever its size."""
    from timebank.orders.records import do_service_record

    w = world
    made, replayed = do_service_record(
        w.users["staff"],
        volunteer=w.members["volunteer"],
        service_item=cleaning,
        minutes=30,
        served_at=timezone.now() - dt.timedelta(hours=1),
        idempotency_key="activity:1:member:1",
        require_approval=True,
        approval_kind=ApprovalKind.ACTIVITY_CLOSE,
        approval_context={"activity_id": 1},
    )
    assert isinstance(made, Approval) and not replayed
    assert made.kind == "activity_close" and made.minutes == 30 and made.payload["activity_id"] == 1
    assert earned(w.members["volunteer"]) == 0
    approved = do_approve(w.users["branch_admin"], made)
    assert approved.state == ApprovalState.APPROVED and earned(w.members["volunteer"]) == 30


# --- the page -------------------------------------------------------------------------------------------------


def test_page_a_second_staff_approves_and_rejects(world: World, cleaning: ServiceItem) -> None:
    w = world
    two = second_staff(w)
    adjustment = big_adjustment(w).json()["approval_id"]
    record = w.api("staff").post(RECORDS, record_body(w, cleaning)).json()["approval_id"]

    maker_page = web_client(w.users["staff"]).get("/staff/approvals/")
    assert maker_page.status_code == 200
    text = maker_page.content.decode()
    assert "需要另一位工作人员审核" in text and f"/staff/approvals/{adjustment}/approve/" not in text
    # The maker's POST is refused all the same.
    refused = web_client(w.users["staff"]).post(f"/staff/approvals/{adjustment}/approve/", follow=True)
    assert "不能审核自己提交的记录" in refused.content.decode()
    assert Approval.objects.get(pk=adjustment).state == ApprovalState.PENDING

    browser = web_client(two)
    page = browser.get("/staff/approvals/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/staff/approvals/{adjustment}/approve/" in html and 'name="csrfmiddlewaretoken"' in html
    assert f'for="reject-reason-{record}"' in html
    resp = browser.post(f"/staff/approvals/{adjustment}/approve/", {"next": "/staff/approvals/"})
    assert resp.status_code == 302 and resp["Location"] == "/staff/approvals/"
    assert earned(w.members["volunteer"]) == 500_000
    resp = browser.post(f"/staff/approvals/{record}/reject/", {"reason": "当天没有活动"})
    assert resp.status_code == 302
    assert Approval.objects.get(pk=record).state == ApprovalState.REJECTED
    assert ServiceRecord.objects.count() == 0
    assert "当天没有活动" in browser.get("/staff/approvals/?state=rejected").content.decode()
    # The workbench and the manage page link to it.
    assert "/staff/approvals/" in browser.get("/staff/").content.decode()
    assert "/staff/approvals/" in browser.get("/manage/").content.decode()


def test_page_refuses_other_communities_and_members(world: World) -> None:
    w = world
    approval_id = big_adjustment(w).json()["approval_id"]
    assert web_client(w.users["staff_next"]).post(f"/staff/approvals/{approval_id}/approve/").status_code == 403
    assert web_client(w.users["volunteer"]).get("/staff/approvals/").status_code == 403
    assert web_client(w.users["operator"]).get("/staff/approvals/").status_code == 403
    assert web_client(w.users["staff"]).get(f"/staff/approvals/{approval_id}/approve/").status_code == 405
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING


# --- PostgreSQL: parallel approvals --------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_approvals_post_exactly_once(world: World) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks under contention: a PostgreSQL test")
    w = world
    approvers = [w.users["branch_admin"], w.users["head_office_admin"], w.users["superuser"]]
    # Made before the request: a login created after it may not approve it.
    approvers += [second_staff(w, f"staff_{i}") for i in range(5)]
    approval_id = big_adjustment(w).json()["approval_id"]
    tokens = [do_issue_token(u) for u in approvers]
    barrier = threading.Barrier(len(tokens))
    statuses: list[int] = [0] * len(tokens)

    def worker(i: int) -> None:
        try:
            client = Client(raise_request_exception=False)
            barrier.wait(timeout=30)
            resp = client.post(f"/api/v1/approvals/{approval_id}/approve", HTTP_AUTHORIZATION=f"Bearer {tokens[i]}")
            statuses[i] = resp.status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(tokens))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(statuses) == [200] + [409] * (len(tokens) - 1), statuses
    assert Transaction.objects.filter(kind="adjustment").count() == 1
    assert earned(w.members["volunteer"]) == 500_000
    assert verify([w.bank.pk]).ok


def test_bad_input_to_approvals_is_a_4xx_and_writes_nothing(world: World, cleaning: ServiceItem) -> None:
    w = world
    staff, admin = w.api("staff"), w.api("branch_admin")
    approval_id = big_adjustment(w).json()["approval_id"]
    for bad in ("abc", "0", "-1", "99999999999999999999999"):
        assert admin.post(f"/api/v1/approvals/{bad}/approve").status_code in (404, 422)
    for body in ({}, {"reason": 5}, {"reason": ""}, {"reason": "x" * 501}, {"reason": ["a"]}):
        assert admin.post(f"/api/v1/approvals/{approval_id}/reject", body).status_code == 422
    assert admin.post(f"/api/v1/approvals/{approval_id}/reject", raw="{not json").status_code in (400, 422)
    assert admin.get("/api/v1/approvals", {"cursor": "nonsense"}).status_code == 422
    # A service record for the volunteer as their own recipient is refused.
    resp = staff.post(
        RECORDS, {**record_body(w, cleaning, minutes=30, key="self"), "recipient_id": w.members["volunteer"].pk}
    )
    assert resp.status_code == 422
    # Nothing was decided or posted by any of it.
    assert Approval.objects.get(pk=approval_id).state == ApprovalState.PENDING
    assert Transaction.objects.count() == 0 and AuditEntry.objects.filter(action__startswith="approval.").count() == 1
