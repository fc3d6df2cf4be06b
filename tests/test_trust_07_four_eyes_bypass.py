"""Finding 7 of issue 12, the two ways around four eyes (四眼原则) that remained.

1. Splitting: the threshold was per call, so 20 service records (or adjustments) of 599 minutes each to one
   volunteer never waited. Now what one member was credited outside orders in the last 24 hours (positive
   adjustments, service records, activity credits and award bonuses, posted or still waiting) counts with
   the call: above the head office's `approval_threshold_minutes`, the call waits. Two parallel calls to the
   same member are decided one after the other (the member's row is locked first).
2. Award bonuses: a head-office admin confirming an award alone minted its bonus. A bonus above the
   threshold (same cumulative rule) now waits as an `award_bonus` approval for a second person.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from tests.conftest import World, error_code, web_client
from timebank.approvals.models import Approval, ApprovalState
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.evaluation import actions as evaluation
from timebank.evaluation.models import Award, AwardKind, AwardStatus
from timebank.ledger.models import Account, Transaction
from timebank.ledger.verify import verify
from timebank.members.models import Member
from timebank.orders.models import ServiceRecord
from timebank.orders.records import do_service_record
from timebank.orgs.actions import do_create_staff, do_issue_token
from timebank.orgs.models import Rules, User

ADJUST = "/api/v1/ledger/adjustments"
RECORDS = "/api/v1/service-records"


@contextmanager
def later(*, hours: int) -> Iterator[None]:
    """The clock moved on by `hours` (every reader of django.utils.timezone.now, the database rows' times too)."""
    real = timezone.now
    with mock.patch.object(timezone, "now", lambda: real() + dt.timedelta(hours=hours)):
        yield


def earned(member: Member) -> int:
    return Account.objects.get(member=member, kind="earned").balance_minutes


@pytest.fixture
def cleaning(world: World) -> ServiceItem:
    return do_create_service_item(None, head_office=world.bank, name="清洁日", category="environment", tier="ordinary")


def record_body(w: World, item: ServiceItem, *, minutes: int, key: str, member: str = "volunteer") -> dict[str, Any]:
    return {
        "volunteer_id": w.members[member].pk,
        "service_item_id": item.pk,
        "minutes": minutes,
        "served_at": (timezone.now() - dt.timedelta(hours=3)).isoformat(),
        "memo": "社区清洁日",
        "idempotency_key": key,
    }


def adjustment_body(w: World, *, minutes: int, key: str, member: str = "volunteer") -> dict[str, Any]:
    return {
        "member_id": w.members[member].pk,
        "minutes": minutes,
        "bucket": "earned",
        "reason": "纸质台账补录",
        "idempotency_key": key,
    }


def second_head_office_admin(w: World) -> User:
    return do_create_staff(
        w.users["superuser"],
        org=w.bank,
        username="ho_two",
        password="pass-word-1",
        name="ho_two",
        role="head_office_admin",
    )


# --- 1. splitting ----------------------------------------------------------------------------------------------


def test_finding_7_twenty_service_records_of_599_minutes_do_not_dodge_the_threshold(
    world: World, cleaning: ServiceItem
) -> None:
    w = world
    volunteer = w.members["volunteer"]
    bodies = [record_body(w, cleaning, minutes=599, key=f"s{i}") for i in range(20)]
    answers = [w.api("staff").post(RECORDS, b) for b in bodies]
    # The first fits under the 600-minute threshold; from the second on, the day's total is above it.
    assert [a.status_code for a in answers] == [201] + [202] * 19, [a.content for a in answers[:3]]
    assert earned(volunteer) == 599 and ServiceRecord.objects.count() == 1
    body = answers[1].json()
    assert body == {
        "approval_id": body["approval_id"],
        "state": "pending_approval",
        "kind": "service_record",
        "member_id": volunteer.pk,
        "minutes": 599,
    }
    assert Approval.objects.filter(state=ApprovalState.PENDING, member=volunteer).count() == 19
    # Another member's credit is counted apart: it posts.
    other = w.api("head_office_admin").post(RECORDS, record_body(w, cleaning, minutes=599, key="n", member="neighbour"))
    assert other.status_code == 201, other.content
    # A replay answers exactly what it answered the first time, before and after the approval.
    assert w.api("staff").post(RECORDS, bodies[1]).json() == body
    assert w.api("branch_admin").post(f"/api/v1/approvals/{body['approval_id']}/approve").status_code == 200
    replay = w.api("staff").post(RECORDS, bodies[1])
    assert replay.status_code == 202 and replay.json() == body
    replay = w.api("staff").post(RECORDS, bodies[0])
    assert replay.status_code == 201 and earned(volunteer) == 2 * 599
    assert verify([w.bank.pk]).ok


def test_finding_7_split_adjustments_and_mixed_credits_wait_too(world: World, cleaning: ServiceItem) -> None:
    w = world
    volunteer = w.members["volunteer"]
    staff = w.api("staff")
    assert staff.post(ADJUST, adjustment_body(w, minutes=300, key="a1")).status_code == 201
    assert staff.post(RECORDS, record_body(w, cleaning, minutes=300, key="r1")).status_code == 201  # 600: at it
    late = staff.post(ADJUST, adjustment_body(w, minutes=1, key="a2"))
    assert late.status_code == 202 and late.json()["kind"] == "adjustment" and late.json()["minutes"] == 1
    # Another person's credit counts as well: the total is the member's, not the maker's.
    other = w.api("branch_admin").post(RECORDS, record_body(w, cleaning, minutes=30, key="r2"))
    assert other.status_code == 202
    # A debit is not a credit: it posts and does not make room for more.
    assert staff.post(ADJUST, adjustment_body(w, minutes=-500, key="neg")).status_code == 201
    assert staff.post(ADJUST, adjustment_body(w, minutes=10, key="a3")).status_code == 202
    assert earned(volunteer) == 100
    # Orders are not counted: their minutes are measured on the clock and confirmed by the recipient.


def test_the_window_is_the_last_24_hours(world: World, cleaning: ServiceItem) -> None:
    w = world
    staff = w.api("staff")
    assert staff.post(ADJUST, adjustment_body(w, minutes=599, key="old")).status_code == 201
    assert staff.post(ADJUST, adjustment_body(w, minutes=599, key="waits")).status_code == 202
    # 25 hours later the old credit and the waiting one are out of the window: a new credit of 599 posts.
    with later(hours=25):
        assert staff.post(ADJUST, adjustment_body(w, minutes=599, key="next-day")).status_code == 201
        assert staff.post(RECORDS, record_body(w, cleaning, minutes=2, key="r")).status_code == 202


def test_threshold_off_or_the_system_is_not_held(world: World, cleaning: ServiceItem) -> None:
    w = world
    volunteer = w.members["volunteer"]
    for i in range(3):  # the system (imports, settlement) is not a person
        made, _r = do_service_record(
            None,
            volunteer=volunteer,
            service_item=cleaning,
            minutes=599,
            served_at=timezone.now(),
            idempotency_key=f"x{i}",
        )
        assert isinstance(made, ServiceRecord)
    assert w.api("staff").post(ADJUST, adjustment_body(w, minutes=1, key="p")).status_code == 202
    Rules.objects.filter(head_office=w.bank).update(approval_threshold_minutes=None)
    assert w.api("staff").post(ADJUST, adjustment_body(w, minutes=1, key="q")).status_code == 201


def test_an_activity_credit_counts_with_the_days_records(world: World, cleaning: ServiceItem) -> None:
    """Activity credits go through the same service-record action and the same count."""
    from timebank.approvals.models import ApprovalKind

    w = world
    volunteer = w.members["volunteer"]
    assert w.api("staff").post(RECORDS, record_body(w, cleaning, minutes=500, key="r")).status_code == 201
    made, _r = do_service_record(
        w.users["staff"],
        volunteer=volunteer,
        service_item=cleaning,
        minutes=120,
        served_at=timezone.now() - dt.timedelta(hours=1),
        idempotency_key="activity:9:member:1",
        approval_kind=ApprovalKind.ACTIVITY_CLOSE,
        approval_context={"activity_id": 9},
    )
    assert isinstance(made, Approval) and made.kind == "activity_close" and made.minutes == 120
    assert earned(volunteer) == 500


# --- 2. award bonuses ------------------------------------------------------------------------------------------


def ranked_award(w: World, code: str = "most_beautiful_volunteer") -> Award:
    """The volunteer, nominated for an award with a bonus (most_beautiful_volunteer: 600 minutes)."""
    from tests.evaluation_helpers import served_order

    evaluation.do_seed_defaults(None, w.bank)
    kind = AwardKind.objects.get(bank=w.bank, code=code)
    served_order(w, w.members["volunteer"], minutes=30, rating=5)
    ranked = evaluation.do_rank_awards(None, kind, timezone.localdate().year)
    assert [a.member_id for a in ranked] == [w.members["volunteer"].pk]
    return ranked[0]


def test_finding_7_an_award_bonus_above_the_threshold_waits_for_a_second_admin(world: World) -> None:
    w = world
    volunteer = w.members["volunteer"]
    award = ranked_award(w)
    AwardKind.objects.filter(pk=award.kind_id).update(bonus_minutes=700)
    two = second_head_office_admin(w)  # there before the request: a login made later may not approve it
    before = earned(volunteer)
    resp = w.api("head_office_admin").post(f"/api/v1/awards/{award.pk}/confirm")
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "confirmed" and resp.json()["bonus_transaction_id"] is None
    assert earned(volunteer) == before
    approval = Approval.objects.get(kind="award_bonus")
    assert resp.json()["bonus_approval_id"] == approval.pk
    assert (approval.state, approval.member_id, approval.minutes) == ("pending_approval", volunteer.pk, 700)
    assert approval.maker == w.users["head_office_admin"] and approval.org_id == w.bank.pk
    # Confirming again opens nothing more.
    assert w.api("head_office_admin").post(f"/api/v1/awards/{award.pk}/confirm").status_code == 200
    assert Approval.objects.filter(kind="award_bonus").count() == 1
    # The award page says the bonus waits.
    page = web_client(w.users["head_office_admin"]).get(f"/evaluation/awards/{w.bank.pk}/").content.decode()
    assert "奖励时间待审核" in page
    # Not the maker, not a community's staff (a head-office bonus is the head office's to approve).
    own = w.api("head_office_admin").post(f"/api/v1/approvals/{approval.pk}/approve")
    assert own.status_code == 403 and error_code(own) == "own_request"
    assert w.api("staff").post(f"/api/v1/approvals/{approval.pk}/approve").status_code == 403
    assert w.api("branch_admin").post(f"/api/v1/approvals/{approval.pk}/approve").status_code == 403
    assert earned(volunteer) == before
    # A second head-office admin approves: the bonus is credited once, under the award's key.
    resp = Client().post(f"/api/v1/approvals/{approval.pk}/approve", HTTP_AUTHORIZATION=f"Bearer {do_issue_token(two)}")
    assert resp.status_code == 200, resp.content
    award.refresh_from_db()
    assert award.bonus_transaction_id == resp.json()["transaction_id"]
    listed = w.api("head_office_admin").get("/api/v1/awards", {"status": "confirmed"}).json()["items"]
    assert [(a["bonus_transaction_id"], a["bonus_approval_id"]) for a in listed] == [(award.bonus_transaction_id, None)]
    assert earned(volunteer) == before + 700
    assert Transaction.objects.filter(idempotency_key=f"award-bonus-{award.pk}").count() == 1
    page = web_client(two).get(f"/evaluation/awards/{w.bank.pk}/").content.decode()
    assert "奖励时间待审核" not in page
    assert verify([w.bank.pk]).ok


def test_page_a_second_admin_approves_a_waiting_bonus_and_the_winner_is_told(
    world: World, django_capture_on_commit_callbacks: Any
) -> None:
    from timebank.notify.models import Notification

    w = world
    volunteer = w.members["volunteer"]
    award = ranked_award(w)
    AwardKind.objects.filter(pk=award.kind_id).update(bonus_minutes=700)
    two = second_head_office_admin(w)  # there before the request: a login made later may not approve it
    head = web_client(w.users["head_office_admin"])
    url = f"/evaluation/awards/{w.bank.pk}/"
    with django_capture_on_commit_callbacks(execute=True):
        assert head.post(url, {"form": "confirm", "award": award.pk, "year": award.year}).status_code == 302
    approval = Approval.objects.get(kind="award_bonus")
    before = earned(volunteer)
    page = web_client(two).get("/staff/approvals/").content.decode()
    assert f"/staff/approvals/{approval.pk}/approve/" in page and "表彰奖励时间" in page
    assert "已记入和待审核的时间：700 分钟" in page
    # The community's staff do not see a head-office bonus; the maker sees it without the approve button.
    assert f"approval-{approval.pk}" not in web_client(w.users["staff"]).get("/staff/approvals/").content.decode()
    assert f"/staff/approvals/{approval.pk}/approve/" not in head.get("/staff/approvals/").content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        resp = web_client(two).post(f"/staff/approvals/{approval.pk}/approve/", {"next": "/staff/approvals/"})
    assert resp.status_code == 302
    assert earned(volunteer) == before + 700
    told = [n.template for n in Notification.objects.filter(member=volunteer).order_by("pk")]
    assert told[-1] == "award.confirmed_bonus" and told.count("award.confirmed_bonus") == 1


def test_an_award_bonus_counts_with_the_days_credits(world: World, cleaning: ServiceItem) -> None:
    """A 300-minute bonus alone would post; after 400 minutes of service records today it waits."""
    w = world
    award = ranked_award(w, code="outstanding_volunteer")  # 300-minute bonus
    assert w.api("staff").post(RECORDS, record_body(w, cleaning, minutes=400, key="r")).status_code == 201
    confirmed, new = evaluation.do_confirm_award(w.users["head_office_admin"], award)
    assert new and confirmed.status == AwardStatus.CONFIRMED and confirmed.bonus_transaction_id is None
    assert Approval.objects.get(kind="award_bonus").minutes == 300


def test_a_small_award_bonus_posts_at_once(world: World) -> None:
    w = world
    award = ranked_award(w, code="outstanding_volunteer")  # 300 minutes, nothing else credited today
    confirmed, _new = evaluation.do_confirm_award(w.users["head_office_admin"], award)
    assert confirmed.bonus_transaction_id is not None and Approval.objects.count() == 0
    # The bonus counts for the next credit of the day: 300 + 301 is above 600.
    assert w.api("staff").post(ADJUST, adjustment_body(w, minutes=301, key="after")).status_code == 202


# --- PostgreSQL: parallel credits to one member ---------------------------------------------------------------


def _fire(w: World, bodies: list[tuple[str, str, dict[str, Any]]]) -> list[int]:
    """Send each (persona, path, body) at once from its own thread and connection."""
    tokens = [do_issue_token(w.users[p]) for p, _path, _b in bodies]
    barrier = threading.Barrier(len(bodies))
    statuses = [0] * len(bodies)

    def worker(i: int) -> None:
        try:
            client = Client(raise_request_exception=False)
            barrier.wait(timeout=30)
            _p, path, body = bodies[i]
            resp = client.post(path, body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {tokens[i]}")
            statuses[i] = resp.status_code
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return statuses


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_finding_7_parallel_400_minute_records_do_not_both_post(world: World, cleaning: ServiceItem) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row locks under contention: a PostgreSQL test")
    w = world
    volunteer = w.members["volunteer"]
    for round_ in range(3):
        Approval.objects.all().delete()
        bodies = [
            ("staff", RECORDS, record_body(w, cleaning, minutes=400, key=f"p{round_}-1")),
            ("branch_admin", RECORDS, record_body(w, cleaning, minutes=400, key=f"p{round_}-2")),
        ]
        before = earned(volunteer)
        with later(hours=48 * round_):  # each round on another day for this member
            statuses = _fire(w, bodies)
        assert sorted(statuses) == [201, 202], statuses
        assert earned(volunteer) == before + 400


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_mixed_credits_to_two_members_neither_deadlock_nor_overshoot(
    world: World, cleaning: ServiceItem
) -> None:
    """Ten calls at once, adjustments and records, to two members: each member ends at most at the threshold
    (plus what waits), no 500, and the ledger verifies."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks under contention: a PostgreSQL test")
    w = world
    bodies: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(10):
        member = "volunteer" if i % 2 else "neighbour"
        persona = "head_office_admin" if i % 3 else "superuser"
        if i % 4 < 2:
            bodies.append((persona, RECORDS, record_body(w, cleaning, minutes=250, key=f"m{i}", member=member)))
        else:
            bodies.append((persona, ADJUST, adjustment_body(w, minutes=250, key=f"m{i}", member=member)))
    statuses = _fire(w, bodies)
    assert sorted(set(statuses)) <= [201, 202], statuses
    assert statuses.count(201) == 4  # two credits of 250 fit under 600 for each member
    for who in ("volunteer", "neighbour"):
        assert earned(w.members[who]) == 500
    assert Approval.objects.filter(state=ApprovalState.PENDING).count() == 6
    assert verify([w.bank.pk]).ok


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_activity_close_racing_service_records_to_its_attendees_does_not_deadlock(world: World) -> None:
    """The close locks all its attendees (in key order) before its first credit locks ledger accounts, so
    service records to the same members at the same moment wait their turn: no deadlock, no 409/500."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks under contention: a PostgreSQL test")
    from tests.conftest import make_member
    from timebank.teams import actions as teams

    w = world
    item = do_create_service_item(None, head_office=w.bank, name="健康讲座", category="health_talks", tier="ordinary")
    start = timezone.now() + dt.timedelta(minutes=10)
    activity = teams.do_publish_activity(
        w.users["staff"],
        org=w.community,
        team=None,
        data=teams.ActivityInput(
            title="讲座",
            service_item=item,
            place="顺河社区活动室",
            starts_at=start,
            ends_at=start + dt.timedelta(hours=1),
            places=20,
        ),
    )
    people = [make_member(w.community, f"听众{i}") for i in range(8)]
    for person in people:
        teams.do_mark_attendance(w.users["staff"], activity, person, attended=True, minutes=60)
    later_people = sorted(people, key=lambda m: m.pk)[4:]  # the close reaches them last
    bodies: list[tuple[str, str, dict[str, Any]]] = [("staff", f"/api/v1/activities/{activity.pk}/close", {})]
    for i, person in enumerate(later_people):
        body = {
            "volunteer_id": person.pk,
            "service_item_id": item.pk,
            "minutes": 400,
            "served_at": (timezone.now() - dt.timedelta(hours=3)).isoformat(),
            "idempotency_key": f"race-{i}",
        }
        bodies.append(("staff" if i % 2 else "branch_admin", RECORDS, body))
    with later(hours=2):
        statuses = _fire(w, bodies)
    assert statuses == [200] + [201] * len(later_people), statuses
    for person in people:
        assert earned(person) == (460 if person in later_people else 60)
    assert Approval.objects.count() == 0
    assert verify([w.bank.pk]).ok
