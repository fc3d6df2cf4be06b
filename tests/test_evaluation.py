"""Three-way evaluation: assessments, self-assessments and satisfaction combined with the head office's
weights (hand-computed), complaints with follow-up, penalties (suspension blocks dispatch and matching,
balances never change), and who may do what."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import World, error_code
from tests.evaluation_helpers import credit, new_order, served_order
from timebank.evaluation import actions
from timebank.evaluation.dispatch import is_dispatch_blocked
from timebank.evaluation.models import Complaint, Indicator, Penalty
from timebank.evaluation.scoring import combine, org_score, volunteer_score
from timebank.hotline.actions import do_record_return_visit
from timebank.ledger.models import Account, Transaction
from timebank.lib.errors import Conflict
from timebank.orders import actions as order_actions
from timebank.orgs.actions import do_create_staff

YEAR = timezone.localdate().year


def _indicators(world: World) -> dict[str, int]:
    actions.do_seed_defaults(None, world.bank)  # 运行管理 40, 服务品质 40, 时间认定 20
    return dict(Indicator.objects.filter(bank=world.bank).values_list("code", "pk"))


def _assess(world: World, persona: str, org_id: int, values: dict[str, str], **extra: Any) -> Any:
    ids = _indicators(world)
    body = {
        "org_id": org_id,
        "year": YEAR,
        "scores": [{"indicator_id": ids[code], "score": score} for code, score in values.items()],
        **extra,
    }
    return world.api(persona).post("/api/v1/assessments", body)


def test_combine_is_a_weighted_mean_of_the_parts_present() -> None:
    d = Decimal
    assert combine([(d(80), 40), (d(90), 20), (d(70), 40)], upheld=0, per_complaint=d(5)) == (
        d("78.00"),
        d("0.00"),
        d("78.00"),
    )
    # A missing part is left out and the others re-weighed: (90×20 + 70×40) / 60 = 76.666… → 76.67.
    assert combine([(None, 40), (d(90), 20), (d(70), 40)], upheld=1, per_complaint=d("2.5")) == (
        d("76.67"),
        d("2.50"),
        d("74.17"),
    )
    assert combine([(d(3), 1)], upheld=1, per_complaint=d(5))[2] == d(0)  # never below zero
    assert combine([(None, 40)], upheld=2, per_complaint=d(5)) == (None, d("10.00"), None)


def test_combined_scores_on_a_built_scenario(world: World) -> None:
    """Hand-computed:
    assessor A: 80, 90, 70 → (80×40 + 90×40 + 70×20) / 100 = 82.00
    assessor B: 90, 85, 75.5 → (3600 + 3400 + 1510) / 100 = 85.10; third party = (82.00 + 85.10) / 2 = 83.55
    org self-assessment 90; satisfaction: reviews 5 and 4, return visit 3 → mean 4 × 20 = 80.00
    org: (83.55×40 + 90×20 + 80×40) / 100 = 83.42, one upheld complaint −5 → 78.42
    volunteer: self 70, satisfaction 80, no third party → (70×20 + 80×40) / 60 = 76.67, −5 → 71.67
    """
    second = do_create_staff(
        world.users["superuser"],
        org=world.branch,
        username="assessor2",
        password="pass-word-1",
        name="评估二",
        role="assessor",
    )
    world.users["assessor2"] = second
    resp = _assess(
        world, "assessor", world.community.pk, {"operations": "80", "service_quality": "90", "time_recognition": "70"}
    )
    assert resp.status_code == 201, resp.content
    assert resp.json()["total"] == "82.00"
    resp = _assess(
        world,
        "assessor2",
        world.community.pk,
        {"operations": "90", "service_quality": "85", "time_recognition": "75.5"},
    )
    assert resp.json()["total"] == "85.10"
    staff = world.api("staff")
    assert (
        staff.post("/api/v1/self-assessments", {"year": YEAR, "score": "90", "org_id": world.community.pk}).status_code
        == 200
    )
    volunteer = world.members["volunteer"]
    assert (
        world.api("volunteer")
        .post("/api/v1/self-assessments", {"year": YEAR, "score": "70", "summary": "按时到"})
        .status_code
        == 200
    )
    first = served_order(world, volunteer, rating=5)
    served_order(world, volunteer, rating=4)
    do_record_return_visit(None, order=first, outcome="reached", satisfaction=3)
    upheld = actions.do_file_complaint(None, org=None, volunteer=volunteer, text="服务时间不足")
    actions.do_follow_up_complaint(world.users["staff"], upheld, "已电话核实")
    actions.do_decide_complaint(None, upheld, upheld=True, note="成立")
    dismissed = actions.do_file_complaint(None, org=world.community, text="排队太久")
    actions.do_decide_complaint(None, dismissed, upheld=False, note="不成立")

    org = org_score(world.community, YEAR)
    assert (org.third_party, org.self_score, org.satisfaction) == (Decimal("83.55"), Decimal("90"), Decimal("80.00"))
    assert (org.weighted, org.deduction, org.total, org.upheld_complaints) == (
        Decimal("83.42"),
        Decimal("5.00"),
        Decimal("78.42"),
        1,
    )
    v = volunteer_score(world.bank.pk, volunteer.pk, YEAR)
    assert (v.third_party, v.self_score, v.satisfaction, v.rating_count) == (None, Decimal("70"), Decimal("80.00"), 3)
    assert (v.weighted, v.total) == (Decimal("76.67"), Decimal("71.67"))
    # The parent branch rolls up satisfaction and complaints but has no assessment or self-assessment of its own.
    branch = org_score(world.branch, YEAR)
    assert (branch.third_party, branch.self_score, branch.total) == (None, None, Decimal("75.00"))

    # Through the API, and after the head office changes the weights: (83.55×50 + 90×50) / 100 = 86.775 → 86.78.
    resp = world.api("branch_admin").get(f"/api/v1/orgs/{world.community.pk}/evaluation")
    assert resp.status_code == 200 and resp.json()["total"] == "78.42"
    admin = world.api("head_office_admin")
    patch = {"third_party_weight": 50, "self_weight": 50, "satisfaction_weight": 0}
    assert admin.patch(f"/api/v1/orgs/{world.bank.pk}/evaluation-rules", patch).status_code == 200
    body = world.api("branch_admin").get(f"/api/v1/orgs/{world.community.pk}/evaluation", {"year": YEAR}).json()
    assert (body["weighted"], body["total"]) == ("86.78", "81.78")
    mine = world.api("volunteer").get(f"/api/v1/members/{volunteer.pk}/evaluation").json()
    assert (mine["weighted"], mine["total"]) == ("70.00", "65.00")


def test_assessment_input_is_checked(world: World) -> None:
    ok = {"operations": "80", "service_quality": "90", "time_recognition": "70"}
    missing = _assess(world, "assessor", world.community.pk, {"operations": "80"})
    assert missing.status_code == 422 and error_code(missing) == "scores_missing"
    assert _assess(world, "assessor", world.community.pk, {**ok, "operations": "100.5"}).status_code == 422
    assert _assess(world, "assessor", world.community.pk, {**ok, "operations": "-1"}).status_code == 422
    assert _assess(world, "assessor", world.community.pk, ok).status_code == 201
    again = _assess(world, "assessor", world.community.pk, ok)
    assert again.status_code == 409 and error_code(again) == "already_assessed"
    assert _assess(world, "assessor", world.other_community.pk, ok).status_code == 404
    other_indicator = world.api("assessor").post(
        "/api/v1/assessments",
        {"org_id": world.outlet.pk, "year": YEAR, "scores": [{"indicator_id": 2**40, "score": "1"}]},
    )
    assert other_indicator.status_code == 422


@pytest.mark.parametrize(
    ("persona", "target", "status"),
    [
        ("assessor", "community", 201),
        ("assessor", "outlet", 201),
        ("assessor", "community2", 201),
        ("assessor", "branch", 403),  # only sub-branches and outlets are assessed
        ("assessor", "other_community", 404),
        ("branch_assessor", "community", 201),
        ("branch_assessor", "community2", 403),  # outside their subtree
        ("branch_assessor", "other_community", 404),
        ("head_office_admin", "community", 403),  # admins do not score: third parties do
        ("staff", "community", 403),
        ("volunteer", "community", 403),
        ("other_bank_admin", "community", 404),
        ("other_bank_staff", "community", 404),
    ],
)
def test_who_may_score_an_org(world: World, persona: str, target: str, status: int) -> None:
    world.users["branch_assessor"] = do_create_staff(
        world.users["superuser"],
        org=world.branch,
        username="ba",
        password="pass-word-1",
        name="运河评估",
        role="assessor",
    )
    org = getattr(world, target)
    resp = _assess(world, persona, org.pk, {"operations": "80", "service_quality": "90", "time_recognition": "70"})
    assert resp.status_code == status, resp.content


def test_assessment_lists_follow_the_subtree(world: World) -> None:
    ok = {"operations": "80", "service_quality": "90", "time_recognition": "70"}
    _assess(world, "assessor", world.community.pk, ok)
    _assess(world, "assessor", world.community2.pk, ok)
    seen = {
        p: len(world.api(p).get("/api/v1/assessments").json()["items"])
        for p in ("assessor", "staff", "staff_next", "other_bank_admin")
    }
    assert seen == {"assessor": 2, "staff": 1, "staff_next": 1, "other_bank_admin": 0}
    assert world.api("other_bank_admin").get(f"/api/v1/orgs/{world.community.pk}/evaluation").status_code == 404
    assert world.api("staff").get(f"/api/v1/orgs/{world.community2.pk}/evaluation").status_code == 403
    assert world.api("other_bank_admin").get(f"/api/v1/orgs/{world.bank.pk}/indicators").status_code == 404
    assert world.api("assessor").get(f"/api/v1/orgs/{world.bank.pk}/indicators").status_code == 200


# Complaints --------------------------------------------------------------------------------------------------------


def test_complaint_with_follow_up_and_decision(world: World) -> None:
    volunteer = world.members["volunteer"]
    op = world.api("operator")
    resp = op.post(
        "/api/v1/complaints", {"volunteer_id": volunteer.pk, "complainant": "李大爷", "text": "服务时间不足"}
    )
    assert resp.status_code == 201, resp.content
    cid = resp.json()["id"]
    assert resp.json()["org_id"] == world.community.pk
    resp = world.api("staff").post(f"/api/v1/complaints/{cid}/follow-ups", {"note": "已上门核实"})
    assert resp.status_code == 201 and [f["note"] for f in resp.json()["follow_ups"]] == ["已上门核实"]
    denied = world.api("staff").post(f"/api/v1/complaints/{cid}/decide", {"outcome": "upheld", "note": "成立"})
    assert denied.status_code == 403 and error_code(denied) == "not_admin"
    assert world.api("staff_next").get(f"/api/v1/complaints/{cid}").status_code == 403
    assert world.api("other_bank_admin").get(f"/api/v1/complaints/{cid}").status_code == 404
    decided = world.api("branch_admin").post(f"/api/v1/complaints/{cid}/decide", {"outcome": "upheld", "note": "成立"})
    assert decided.status_code == 200 and decided.json()["status"] == "upheld"
    again = world.api("branch_admin").post(f"/api/v1/complaints/{cid}/decide", {"outcome": "dismissed", "note": "改判"})
    assert again.status_code == 409 and error_code(again) == "complaint_decided"
    assert (
        world.api("other_bank_staff")
        .post("/api/v1/complaints", {"volunteer_id": volunteer.pk, "text": "x"})
        .status_code
        == 404
    )
    assert world.api("staff").post("/api/v1/complaints", {"text": "没有对象"}).status_code == 422


# Penalties ---------------------------------------------------------------------------------------------------------


def _balances() -> dict[int, int]:
    return dict(Account.objects.values_list("pk", "balance_minutes"))


def test_suspension_blocks_dispatch_and_matching_until_lifted(world: World) -> None:
    volunteer = world.members["volunteer"]
    order = new_order(world)
    staff = world.api("staff")
    listed = [c["volunteer_id"] for c in staff.get(f"/api/v1/orders/{order.pk}/candidates").json()["items"]]
    assert volunteer.pk in listed
    resp = world.api("branch_admin").post(
        "/api/v1/penalties", {"member_id": volunteer.pk, "kind": "suspension", "reason": "多次爽约"}
    )
    assert resp.status_code == 201, resp.content
    penalty_id = resp.json()["id"]
    assert resp.json()["in_force"] is True
    refused = staff.post(f"/api/v1/orders/{order.pk}/dispatch", {"volunteer_id": volunteer.pk})
    assert refused.status_code == 409 and error_code(refused) == "volunteer_suspended"
    with pytest.raises(Conflict):
        order_actions.do_take(None, order, volunteer)
    listed = [c["volunteer_id"] for c in staff.get(f"/api/v1/orders/{order.pk}/candidates").json()["items"]]
    assert volunteer.pk not in listed and world.members["neighbour"].pk in listed
    lifted = world.api("branch_admin").post(f"/api/v1/penalties/{penalty_id}/lift", {"reason": "已整改"})
    assert lifted.status_code == 200 and lifted.json()["in_force"] is False
    listed = [c["volunteer_id"] for c in staff.get(f"/api/v1/orders/{order.pk}/candidates").json()["items"]]
    assert volunteer.pk in listed
    assert staff.post(f"/api/v1/orders/{order.pk}/dispatch", {"volunteer_id": volunteer.pk}).status_code == 200
    again = world.api("branch_admin").post(f"/api/v1/penalties/{penalty_id}/lift", {"reason": "再次"})
    assert again.status_code == 409 and error_code(again) == "already_lifted"


def test_suspension_period_and_kinds(world: World) -> None:
    volunteer = world.members["volunteer"]
    today = timezone.localdate()
    actions.do_impose_penalty(None, volunteer, kind="warning", reason="提醒")
    assert not is_dispatch_blocked(volunteer.pk)
    actions.do_impose_penalty(
        None,
        volunteer,
        kind="suspension",
        reason="将来",
        starts_on=today + dt.timedelta(days=3),
        ends_on=today + dt.timedelta(days=10),
    )
    assert not is_dispatch_blocked(volunteer.pk)
    assert is_dispatch_blocked(volunteer.pk, today + dt.timedelta(days=3))
    assert not is_dispatch_blocked(volunteer.pk, today + dt.timedelta(days=11))
    actions.do_impose_penalty(None, volunteer, kind="removal", reason="严重违规")
    assert is_dispatch_blocked(volunteer.pk, today + dt.timedelta(days=400))


def test_penalties_never_change_balances(world: World) -> None:
    volunteer = world.members["volunteer"]
    credit(world, volunteer, 300)
    before, count = _balances(), Transaction.objects.count()
    admin = world.api("branch_admin")
    complaint = actions.do_file_complaint(None, org=None, volunteer=volunteer, text="私收财物")
    actions.do_decide_complaint(None, complaint, upheld=True, note="成立")
    ids = []
    for kind in ("warning", "suspension", "removal"):
        resp = admin.post(
            "/api/v1/penalties",
            {"member_id": volunteer.pk, "kind": kind, "reason": "违规", "complaint_id": complaint.pk},
        )
        assert resp.status_code == 201, resp.content
        ids.append(resp.json()["id"])
    for pid in ids[1:]:
        assert admin.post(f"/api/v1/penalties/{pid}/lift", {"reason": "整改完成"}).status_code == 200
    assert _balances() == before and Transaction.objects.count() == count
    assert Penalty.objects.filter(member=volunteer).count() == 3


def test_a_correction_is_a_reversal_with_its_reason(world: World) -> None:
    volunteer = world.members["volunteer"]
    credit(world, volunteer, 90)
    original = Transaction.objects.filter(kind="service_record").latest("pk")
    penalty = actions.do_impose_penalty(None, volunteer, kind="warning", reason="虚报时长")
    earned = Account.objects.get(member=volunteer, kind="earned")
    admin = world.api("branch_admin")
    resp = admin.post(
        f"/api/v1/penalties/{penalty.pk}/correction", {"transaction_id": original.pk, "reason": "虚报时长，冲正"}
    )
    assert resp.status_code == 201, resp.content
    assert resp.json()["kind"] == "reversal" and resp.json()["reverses_id"] == original.pk
    earned.refresh_from_db()
    assert earned.balance_minutes == 0
    assert Transaction.objects.filter(pk=original.pk).exists()  # nothing deleted
    assert Transaction.objects.get(pk=resp.json()["transaction_id"]).memo == "虚报时长，冲正"
    again = admin.post(f"/api/v1/penalties/{penalty.pk}/correction", {"transaction_id": original.pk, "reason": "再冲"})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("branch_admin", 201),
        ("head_office_admin", 201),
        ("staff", 403),
        ("operator", 403),
        ("assessor", 403),
        ("volunteer", 403),
        ("other_bank_admin", 404),
    ],
)
def test_who_may_impose_a_penalty(world: World, persona: str, status: int) -> None:
    body = {"member_id": world.members["volunteer"].pk, "kind": "warning", "reason": "提醒"}
    assert world.api(persona).post("/api/v1/penalties", body).status_code == status


def test_penalty_input_is_checked(world: World) -> None:
    admin = world.api("branch_admin")
    vid = world.members["volunteer"].pk
    today = timezone.localdate()
    bad = [
        {"member_id": vid, "kind": "fine", "reason": "x"},
        {"member_id": vid, "kind": "warning", "reason": ""},
        {
            "member_id": vid,
            "kind": "suspension",
            "reason": "x",
            "starts_on": str(today),
            "ends_on": str(today - dt.timedelta(days=1)),
        },
        {"member_id": vid, "kind": "suspension", "reason": "x", "starts_on": "2999-01-01"},
    ]
    for body in bad:
        assert admin.post("/api/v1/penalties", body).status_code == 422, body
    open_complaint = actions.do_file_complaint(None, org=world.community, text="x")
    resp = admin.post(
        "/api/v1/penalties", {"member_id": vid, "kind": "warning", "reason": "x", "complaint_id": open_complaint.pk}
    )
    assert resp.status_code == 409 and error_code(resp) == "complaint_not_upheld"
    assert Penalty.objects.count() == 0 and Complaint.objects.count() == 1


def test_star_level_endpoint_access(world: World) -> None:
    vid = world.members["volunteer"].pk
    expected = {
        "volunteer": 200,
        "staff": 200,
        "branch_admin": 200,
        "staff_next": 403,
        "neighbour": 403,
        "other_bank_admin": 404,
    }
    got = {p: world.api(p).get(f"/api/v1/members/{vid}/star-level").status_code for p in expected}
    assert got == expected
    body = world.api("volunteer").get(f"/api/v1/members/{vid}/star-level").json()
    assert body["level"] == 0 and body["next_threshold_hours"] == 100


# Pages ---------------------------------------------------------------------------------------------------------------


def test_pages_for_each_role(world: World) -> None:
    from tests.conftest import web_client

    actions.do_seed_defaults(None, world.bank)
    complaint = actions.do_file_complaint(None, org=world.community, text="排队太久")
    bank = world.bank.pk
    cases = [
        ("head_office_admin", "/evaluation/", 200),
        ("head_office_admin", f"/evaluation/settings/{bank}/", 200),
        ("head_office_admin", f"/evaluation/awards/{bank}/", 200),
        ("branch_admin", f"/evaluation/settings/{bank}/", 403),
        ("branch_admin", f"/evaluation/awards/{bank}/", 200),
        ("other_bank_admin", f"/evaluation/awards/{bank}/", 404),
        ("assessor", "/evaluation/", 200),
        ("assessor", f"/evaluation/assess/{world.community.pk}/", 200),
        ("assessor", f"/evaluation/assess/{world.other_community.pk}/", 404),
        ("staff", f"/evaluation/assess/{world.community.pk}/", 403),
        ("staff", "/evaluation/complaints/", 200),
        ("staff", f"/evaluation/complaints/{complaint.pk}/", 200),
        ("staff_next", f"/evaluation/complaints/{complaint.pk}/", 403),
        ("staff", "/evaluation/penalties/", 200),
        ("staff", "/evaluation/assessments/", 200),
        ("volunteer", "/evaluation/me/", 200),
        ("volunteer", "/evaluation/", 403),
        ("recipient", "/evaluation/me/", 403),
    ]
    for persona, url, status in cases:
        assert web_client(world.users[persona]).get(url).status_code == status, (persona, url)
    assert web_client(None).get("/evaluation/").status_code == 302


def test_pages_do_the_work(world: World) -> None:
    from tests.conftest import web_client

    ids = _indicators(world)
    assessor = web_client(world.users["assessor"])
    form = {"year": YEAR, "note": "", **{f"score_{pk}": "80" for pk in ids.values()}}
    assert assessor.post(f"/evaluation/assess/{world.community.pk}/", form).status_code == 302
    again = assessor.post(f"/evaluation/assess/{world.community.pk}/", form)
    assert again.status_code == 422 and "已经评过" in again.content.decode()
    bad = assessor.post(f"/evaluation/assess/{world.outlet.pk}/", {**form, f"score_{ids['operations']}": "101"})
    assert bad.status_code == 422 and 'value="101"' in bad.content.decode()

    volunteer = world.members["volunteer"]
    admin = web_client(world.users["branch_admin"])
    resp = admin.post("/evaluation/penalties/", {"volunteer": volunteer.pk, "kind": "suspension", "reason": "爽约"})
    assert resp.status_code == 302
    assert is_dispatch_blocked(volunteer.pk)
    penalty = Penalty.objects.get(member=volunteer)
    assert admin.post(f"/evaluation/penalties/{penalty.pk}/lift/", {"reason": "已整改"}).status_code == 302
    assert not is_dispatch_blocked(volunteer.pk)

    me = web_client(world.users["volunteer"])
    home = me.get("/volunteer/")
    assert home.status_code == 200 and "星志愿者" in home.content.decode()
    assert me.post("/evaluation/me/", {"year": YEAR, "score": "88", "summary": "认真"}).status_code == 302
    page = me.get("/evaluation/me/").content.decode()
    assert "88" in page and "0 星志愿者" in page

    credit(world, volunteer, 60)
    head = web_client(world.users["head_office_admin"])
    from timebank.evaluation.models import Award, AwardKind

    kind = AwardKind.objects.get(bank=world.bank, code="outstanding_volunteer")
    url = f"/evaluation/awards/{world.bank.pk}/"
    assert head.post(url, {"form": "rank", "kind": kind.pk, "year": YEAR}).status_code == 302
    award = Award.objects.get(kind=kind, year=YEAR, member=volunteer)
    for _ in range(2):
        assert head.post(url, {"form": "confirm", "award": award.pk, "year": YEAR}).status_code == 302
    award.refresh_from_db()
    assert award.status == "confirmed"
    assert Transaction.objects.filter(idempotency_key=f"award-bonus-{award.pk}").count() == 1
    assert (
        web_client(world.users["branch_admin"])
        .post(url, {"form": "confirm", "award": award.pk, "year": YEAR})
        .status_code
        == 403
    )
