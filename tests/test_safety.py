"""Volunteer safety and skills: insurance, certificates, training and assessment, incident reports."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from tests.conftest import World, error_code, make_member
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.lib.errors import Conflict
from timebank.members.models import Certificate, InsurancePolicy, Member
from timebank.orders.actions import check_volunteer_for, do_create_order
from timebank.orders.models import Order
from timebank.safety.models import (
    IncidentDecision,
    IncidentFollowUp,
    IncidentReport,
    TrainingAttendance,
    TrainingSession,
)


def day(offset: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=offset)


def policy_body(number: str = "PICC-2025-0001", start: int = -30, end: int = 335, **extra: Any) -> dict[str, Any]:
    return {
        "insurer": "中国人民财产保险股份有限公司枣庄分公司",
        "policy_number": number,
        "starts_on": day(start).isoformat(),
        "ends_on": day(end).isoformat(),
        **extra,
    }


def policies_url(member: Member) -> str:
    return f"/api/v1/members/{member.pk}/insurance-policies"


def counts() -> tuple[int, ...]:
    return (
        InsurancePolicy.objects.count(),
        Certificate.objects.count(),
        TrainingSession.objects.count(),
        TrainingAttendance.objects.count(),
        IncidentReport.objects.count(),
        IncidentFollowUp.objects.count(),
        IncidentDecision.objects.count(),
        AuditEntry.objects.count(),
    )


def item(world: World, name: str, cert: str | None = None) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name=name, category="health_care", tier="technical", requires_certificate=cert
    )


def new_order(world: World, service_item: ServiceItem) -> Order:
    return do_create_order(
        None,
        recipient=world.members["recipient"],
        service_item=service_item,
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="subsidy",
        channel="staff",
    )


# Insurance ------------------------------------------------------------------------------------------


def test_staff_register_a_policy_and_the_member_reads_their_own(world: World) -> None:
    volunteer = world.members["volunteer"]
    resp = world.api("staff").post(policies_url(volunteer), policy_body("picc-2025-0001"))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["policy_number"] == "PICC-2025-0001" and body["in_force"] is True
    assert AuditEntry.objects.filter(action="insurance.add", object_id=str(body["id"])).exists()
    # Admins above the community manage too.
    assert world.api("branch_admin").post(policies_url(volunteer), policy_body("PICC-2025-0002")).status_code == 201

    own = world.api("volunteer").get(policies_url(volunteer))
    assert own.status_code == 200 and {p["policy_number"] for p in own.json()["items"]} == {
        "PICC-2025-0001",
        "PICC-2025-0002",
    }
    before = counts()
    for persona in ("neighbour", "relative", "staff_next", "other_bank_staff", "operator", "assessor"):
        assert world.api(persona).get(policies_url(volunteer)).status_code == 403, persona
        resp = world.api(persona).post(policies_url(volunteer), policy_body("PICC-2025-0009"))
        assert resp.status_code == 403, persona
    # A member does not register their own policy: staff do.
    assert world.api("volunteer").post(policies_url(volunteer), policy_body("PICC-2025-0009")).status_code == 403
    assert world.api("anonymous").get(policies_url(volunteer)).status_code == 401
    assert world.api("staff").get("/api/v1/members/999999/insurance-policies").status_code == 404
    assert counts() == before


@pytest.mark.parametrize(
    "change",
    [
        {"ends_on": day(-31).isoformat()},  # ends before it starts
        {"policy_number": "ab"},
        {"policy_number": "保单一二三四"},
        {"policy_number": "P" * 61},
        {"policy_number": "PICC\x000001"},
        {"policy_number": 12345678},
        {"insurer": ""},
        {"insurer": "   "},
        {"insurer": "人"},
        {"insurer": "长" * 101},
        {"starts_on": "2025-02-30"},
        {"starts_on": "1990-01-01"},
        {"ends_on": "9999-12-31"},
        {"ends_on": day(6 * 366).isoformat()},  # longer than five years
        {"starts_on": None},
    ],
)
def test_bad_policy_input_is_refused_and_writes_nothing(world: World, change: dict[str, Any]) -> None:
    before = counts()
    resp = world.api("staff").post(policies_url(world.members["volunteer"]), policy_body(**{}) | change)
    assert resp.status_code in (400, 422), resp.content
    assert "error" in resp.json()
    assert counts() == before


def test_bad_json_bodies_are_400(world: World) -> None:
    before = counts()
    for raw in ("{bad", "[]", "null", '{"x": NaN}'):
        resp = world.api("staff").call("post", policies_url(world.members["volunteer"]), raw=raw)
        assert resp.status_code in (400, 422), raw
    assert counts() == before


def test_duplicate_policy_is_409_and_a_group_policy_shares_its_number(world: World) -> None:
    volunteer, recipient = world.members["volunteer"], world.members["recipient"]
    staff = world.api("staff")
    assert staff.post(policies_url(volunteer), policy_body()).status_code == 201
    again = staff.post(policies_url(volunteer), policy_body())
    assert again.status_code == 409 and error_code(again) == "duplicate_policy"
    # The insurer's name with odd spacing is the same insurer.
    spaced = policy_body(insurer=" 中国人民财产保险股份有限公司枣庄分公司 ")
    assert error_code(staff.post(policies_url(volunteer), spaced)) == "duplicate_policy"
    # The same policy number for another member: one group policy, one period.
    assert staff.post(policies_url(recipient), policy_body()).status_code == 201
    other_period = staff.post(policies_url(recipient), policy_body(end=200) | {"insurer": policy_body()["insurer"]})
    assert other_period.status_code == 409
    newcomer = make_member(world.community, "周阿姨")
    clash = staff.post(policies_url(newcomer), policy_body(end=200))
    assert clash.status_code == 409 and error_code(clash) == "policy_number_conflict"
    # Another insurer may use the same number.
    assert staff.post(policies_url(volunteer), policy_body(insurer="中国平安财产保险股份有限公司")).status_code == 201
    assert InsurancePolicy.objects.filter(policy_number="PICC-2025-0001").count() == 3


def test_group_policy_is_all_or_nothing(world: World) -> None:
    volunteer, recipient, neighbour = (world.members[p] for p in ("volunteer", "recipient", "neighbour"))
    url = "/api/v1/insurance-policies/bulk"
    group = policy_body("GRP-2025-88") | {"member_ids": [volunteer.pk, recipient.pk]}
    before = counts()
    # Someone outside the caller's subtree: nobody is insured.
    outside = world.api("staff").post(url, group | {"member_ids": [volunteer.pk, neighbour.pk]})
    assert outside.status_code == 403 and outside.json()["error"]["fields"]["member_ids"] == [neighbour.pk]
    assert world.api("staff").post(url, group | {"member_ids": [volunteer.pk, 999999]}).status_code == 404
    assert world.api("staff").post(url, group | {"member_ids": [volunteer.pk, volunteer.pk]}).status_code == 422
    assert world.api("staff").post(url, group | {"member_ids": []}).status_code == 422
    assert world.api("staff").post(url, group | {"member_ids": ["1"]}).status_code == 422
    assert world.api("volunteer").post(url, group).status_code == 403
    assert counts() == before

    resp = world.api("staff").post(url, group)
    assert resp.status_code == 201, resp.content
    assert resp.json()["count"] == 2
    assert {p["member_id"] for p in resp.json()["policies"]} == {volunteer.pk, recipient.pk}
    assert AuditEntry.objects.filter(action="insurance.add_group").count() == 1
    # Adding the neighbour later (by an admin above both communities) joins the same policy; a repeat
    # that includes an insured member writes nothing at all.
    admin = world.api("head_office_admin")
    before = counts()
    repeat = admin.post(url, group | {"member_ids": [neighbour.pk, volunteer.pk]})
    assert repeat.status_code == 409 and repeat.json()["error"]["fields"]["member_ids"] == [volunteer.pk]
    assert counts() == before
    assert admin.post(url, group | {"member_ids": [neighbour.pk]}).status_code == 201
    assert InsurancePolicy.objects.filter(policy_number="GRP-2025-88").count() == 3


def test_expiring_and_uninsured_volunteers_are_listed_for_staff_of_the_subtree(world: World) -> None:
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    later = make_member(world.community, "孙大姐")
    uninsured = make_member(world.community, "钱师傅")
    renewed = make_member(world.community, "吴老师")
    not_yet = make_member(world.community, "郑阿姨")

    def insure(m: Member, number: str, start: int, end: int) -> None:
        resp = world.api("head_office_admin").post(policies_url(m), policy_body(number, start, end))
        assert resp.status_code == 201, resp.content

    insure(volunteer, "A-0001", -355, 10)
    insure(later, "A-0002", -265, 100)
    insure(renewed, "A-0003", -360, 5)
    insure(renewed, "A-0004", 6, 370)
    insure(not_yet, "A-0005", 7, 372)  # bought, but cover starts next week
    insure(neighbour, "A-0006", -400, -1)  # expired yesterday

    url = "/api/v1/insurance-policies/expiring"
    rows = world.api("staff").get(url, {"days": 30}).json()["items"]
    by_member = {r["member_id"]: r for r in rows}
    # The recipient is not a volunteer; the neighbour lives in another community.
    assert set(by_member) == {volunteer.pk, uninsured.pk, not_yet.pk}
    assert by_member[volunteer.pk]["status"] == "expiring"
    assert by_member[volunteer.pk]["days_left"] == 10
    assert by_member[volunteer.pk]["policy"]["policy_number"] == "A-0001"
    assert by_member[uninsured.pk] | {"policy": None} == {
        "member_id": uninsured.pk,
        "name": "钱师傅",
        "home_org_id": world.community.pk,
        "status": "uninsured",
        "policy": None,
        "days_left": None,
    }
    wide = {r["member_id"] for r in world.api("staff").get(url, {"days": 120}).json()["items"]}
    assert later.pk in wide and renewed.pk not in wide
    only = world.api("staff").get(url, {"days": 30, "status": "uninsured"}).json()["items"]
    assert {r["member_id"] for r in only} == {uninsured.pk, not_yet.pk}

    # The head office sees every community; the neighbour's expired policy makes them uninsured.
    everyone = {r["member_id"]: r for r in world.api("head_office_admin").get(url).json()["items"]}
    assert everyone[neighbour.pk]["status"] == "uninsured"
    assert world.members["stranger"].pk not in everyone
    narrowed = world.api("head_office_admin").get(url, {"org_id": world.community2.pk}).json()["items"]
    # (The relative lives there too, but is no volunteer.)
    assert {r["member_id"] for r in narrowed} == {neighbour.pk}
    # Pagination walks the whole list.
    first = world.api("staff").get(url, {"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = world.api("staff").get(url, {"limit": 2, "cursor": first["next_cursor"]}).json()
    assert {r["member_id"] for r in first["items"] + rest["items"]} == {volunteer.pk, uninsured.pk, not_yet.pk}

    assert world.api("staff").get(url, {"org_id": world.community2.pk}).status_code == 403
    for persona in ("volunteer", "operator", "assessor"):
        assert world.api(persona).get(url).status_code == 403, persona
    theirs = world.api("other_bank_staff").get(url).json()["items"]
    assert [r["member_id"] for r in theirs] == [world.members["stranger"].pk]
    for bad in ({"days": -1}, {"days": 367}, {"days": "x"}, {"days": 10**30}, {"status": "lapsed"}, {"limit": 0}):
        assert world.api("staff").get(url, bad).status_code == 422, bad


def test_insurance_required_by_the_rules_blocks_dispatch_until_a_valid_policy(world: World) -> None:
    rules = world.api("head_office_admin").patch(
        f"/api/v1/orgs/{world.bank.pk}/rules", {"require_insurance_to_dispatch": True}
    )
    assert rules.status_code == 200, rules.content
    order = new_order(world, item(world, "陪同就医"))
    volunteer = world.members["volunteer"]
    dispatch = f"/api/v1/orders/{order.pk}/dispatch"

    blocked = world.api("staff").post(dispatch, {"volunteer_id": volunteer.pk})
    assert blocked.status_code == 409 and error_code(blocked) == "insurance_required"
    # An expired policy and one that has not started yet do not count.
    world.api("staff").post(policies_url(volunteer), policy_body("OLD-0001", -400, -1))
    world.api("staff").post(policies_url(volunteer), policy_body("NEW-0001", 3, 300))
    assert error_code(world.api("staff").post(dispatch, {"volunteer_id": volunteer.pk})) == "insurance_required"

    assert world.api("staff").post(policies_url(volunteer), policy_body("NOW-0001", 0, 365)).status_code == 201
    ok = world.api("staff").post(dispatch, {"volunteer_id": volunteer.pk})
    assert ok.status_code == 200, ok.content
    assert ok.json()["state"] == "dispatched"


# Certificates ---------------------------------------------------------------------------------------


def cert_body(kind: str = "nursing", start: int = -300, end: int | None = 60, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "issuer": "枣庄市卫生健康委员会",
        "valid_from": day(start).isoformat(),
        "valid_until": day(end).isoformat() if end is not None else None,
        **extra,
    }


def test_certificates_register_list_and_expire(world: World) -> None:
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    url = f"/api/v1/members/{volunteer.pk}/certificates"
    staff = world.api("staff")
    soon = staff.post(url, cert_body("nursing", end=10))
    assert soon.status_code == 201, soon.content
    assert soon.json()["valid_now"] is True
    assert staff.post(url, cert_body("legal", end=None)).status_code == 201  # no end date
    assert staff.post(url, cert_body("first_aid", start=-700, end=20)).status_code == 201
    assert staff.post(url, cert_body("first_aid", start=15, end=1000)).status_code == 201  # renewed
    assert staff.post(url, cert_body("electrician", start=-700, end=-1)).json()["valid_now"] is False
    dup = staff.post(url, cert_body("nursing", end=10))
    assert dup.status_code == 409 and error_code(dup) == "duplicate_certificate"
    admin = world.api("head_office_admin")
    assert admin.post(f"/api/v1/members/{neighbour.pk}/certificates", cert_body("medical", end=5)).status_code == 201

    before = counts()
    for bad in (
        cert_body("astronaut"),
        cert_body(start=10, end=5),
        cert_body(issuer=""),
        cert_body(issuer="发证\x00机关"),
        cert_body(valid_from="2025-13-01"),
        cert_body(valid_from=None),
        {"kind": "nursing"},
    ):
        assert staff.post(url, bad).status_code == 422, bad
    for persona in ("volunteer", "staff_next", "other_bank_admin", "neighbour"):
        assert world.api(persona).post(url, cert_body("counselling")).status_code == 403, persona
    assert counts() == before

    mine = world.api("volunteer").get(url).json()["items"]
    assert len(mine) == 5
    assert world.api("neighbour").get(url).status_code == 403
    assert world.api("other_bank_staff").get(url).status_code == 403

    expiring = "/api/v1/certificates/expiring"
    rows = staff.get(expiring, {"days": 30}).json()["items"]
    assert [(r["kind"], r["days_left"], r["member_name"]) for r in rows] == [("nursing", 10, "王秀英")]
    assert {r["kind"] for r in admin.get(expiring, {"days": 30}).json()["items"]} == {"nursing", "medical"}
    assert staff.get(expiring, {"days": 5}).json()["items"] == []
    assert world.api("volunteer").get(expiring).status_code == 403
    assert staff.get(expiring, {"days": 1000}).status_code == 422


# Training and assessment ----------------------------------------------------------------------------


def training_body(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "org_id": world.community.pk,
        "title": "急救技能培训",
        "topic": "心肺复苏与 AED 使用",
        "held_on": day(-1).isoformat(),
        "place": "顺河社区活动室",
        "trainer": "市红十字会 张医生",
        "kind": "first_aid",
        "grants_certificate": "first_aid",
        "certificate_valid_years": 3,
        **extra,
    }


def test_a_certificate_gained_through_training_passes_matching(world: World) -> None:
    volunteer, other = world.members["volunteer"], make_member(world.community, "冯大哥")
    order = new_order(world, item(world, "急救陪护", cert="first_aid"))
    with pytest.raises(Conflict) as refused:
        check_volunteer_for(order, volunteer)
    assert refused.value.code == "certificate_required"

    created = world.api("staff").post("/api/v1/trainings", training_body(world))
    assert created.status_code == 201, created.content
    tid = created.json()["id"]
    url = f"/api/v1/trainings/{tid}/attendance"
    records = [
        {"member_id": volunteer.pk, "attended": True, "passed": True, "score": 92.5},
        {"member_id": other.pk, "attended": True, "passed": False, "score": 48},
    ]
    resp = world.api("staff").post(url, {"records": records})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["training"]["attended"] == 2 and body["training"]["passed"] == 1
    [granted] = body["certificates_granted"]
    held = day(-1)
    assert granted["member_id"] == volunteer.pk and granted["kind"] == "first_aid"
    assert granted["issuer"] == world.community.name
    assert granted["valid_from"] == held.isoformat()
    assert granted["valid_until"] == (held.replace(year=held.year + 3) - dt.timedelta(days=1)).isoformat()
    assert {r["member_id"]: r["assessment"] for r in body["records"]} == {volunteer.pk: "passed", other.pk: "failed"}
    check_volunteer_for(order, volunteer)  # passes the hard filter now
    with pytest.raises(Conflict):
        check_volunteer_for(order, other)

    # Recording the same results again grants nothing more.
    before = counts()
    again = world.api("staff").post(url, {"records": records})
    assert again.status_code == 200 and again.json()["certificates_granted"] == []
    assert counts()[:4] == before[:4]
    assert Certificate.objects.filter(member=volunteer, kind="first_aid").count() == 1

    mine = world.api("volunteer").get(f"/api/v1/members/{volunteer.pk}/trainings").json()["items"]
    assert mine[0]["title"] == "急救技能培训" and mine[0]["assessment"] == "passed" and mine[0]["score"] == "92.5"
    assert [t["id"] for t in world.api("volunteer").get("/api/v1/trainings").json()["items"]] == [tid]
    own_rows = world.api("volunteer").get(url).json()["items"]
    assert [r["member_id"] for r in own_rows] == [volunteer.pk]
    assert world.api("neighbour").get(f"/api/v1/trainings/{tid}").status_code == 403
    assert world.api("neighbour").get(f"/api/v1/members/{volunteer.pk}/trainings").status_code == 403

    # A corrected result withdraws the certificate the pass granted.
    fix = world.api("staff").post(url, {"records": [{"member_id": volunteer.pk, "attended": True, "passed": False}]})
    assert fix.status_code == 200
    assert not Certificate.objects.filter(member=volunteer, kind="first_aid").exists()
    with pytest.raises(Conflict):
        check_volunteer_for(order, volunteer)


def test_training_access_and_bad_input(world: World) -> None:
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    before = counts()
    assert (
        world.api("staff").post("/api/v1/trainings", training_body(world, org_id=world.community2.pk)).status_code
        == 403
    )
    assert world.api("volunteer").post("/api/v1/trainings", training_body(world)).status_code == 403
    assert world.api("other_bank_admin").post("/api/v1/trainings", training_body(world)).status_code == 403
    for bad in (
        {"title": ""},
        {"kind": "cooking"},
        {"grants_certificate": "astronaut"},
        {"certificate_valid_years": 0},
        {"certificate_valid_years": 11},
        {"certificate_valid_years": "3"},
        {"held_on": "1999-12-31"},
        {"held_on": day(400).isoformat()},
        {"title": "培\x00训"},
        {"org_id": 10**20},
    ):
        assert world.api("staff").post("/api/v1/trainings", training_body(world, **bad)).status_code == 422, bad
    assert world.api("staff").post("/api/v1/trainings", training_body(world, org_id=999999)).status_code == 404
    assert counts() == before

    tid = world.api("staff").post("/api/v1/trainings", training_body(world)).json()["id"]
    url = f"/api/v1/trainings/{tid}/attendance"
    before = counts()
    ok = {"member_id": volunteer.pk, "attended": True, "passed": True, "score": 90}
    for records in (
        [{"member_id": volunteer.pk, "attended": False, "passed": True}],
        [{"member_id": volunteer.pk, "attended": False, "score": 50}],
        [{"member_id": volunteer.pk, "attended": True, "score": 50}],
        [ok | {"score": 101}],
        [ok | {"score": -1}],
        [ok | {"score": 90.25}],
        [ok | {"score": "NaN"}],
        [ok | {"passed": "yes"}],
        [ok | {"attended": 1}],
        [ok | {"note": "x" * 501}],
        [ok, ok],
        [ok, {"member_id": world.members["stranger"].pk, "attended": True}],
        [],
    ):
        resp = world.api("staff").post(url, {"records": records})
        assert resp.status_code in (403, 422), (records, resp.content)
    # A member outside the caller's subtree: the whole list is refused.
    outside = world.api("staff").post(url, {"records": [ok, {"member_id": neighbour.pk, "attended": True}]})
    assert outside.status_code == 403
    assert world.api("staff").post(url, {"records": [ok | {"member_id": 999999}]}).status_code == 404
    assert world.api("staff_next").post(url, {"records": [ok]}).status_code == 403
    assert world.api("volunteer").post(url, {"records": [ok]}).status_code == 403
    assert counts() == before

    future = world.api("staff").post("/api/v1/trainings", training_body(world, held_on=day(7).isoformat())).json()
    not_yet = world.api("staff").post(f"/api/v1/trainings/{future['id']}/attendance", {"records": [ok]})
    assert not_yet.status_code == 409 and error_code(not_yet) == "training_not_held"

    # Sessions of the subtree and above are listed for staff; other communities' staff do not see them.
    assert tid in [t["id"] for t in world.api("branch_admin").get("/api/v1/trainings").json()["items"]]
    assert tid not in [t["id"] for t in world.api("staff_next").get("/api/v1/trainings").json()["items"]]
    assert world.api("staff_next").get(f"/api/v1/trainings/{tid}").status_code == 403


# Incidents ------------------------------------------------------------------------------------------


@pytest.fixture
def served(world: World) -> Order:
    """An order dispatched to the volunteer and in service."""
    order = new_order(world, item(world, "助浴服务"))
    assert (
        world.api("staff")
        .post(f"/api/v1/orders/{order.pk}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
        .status_code
        == 200
    )
    return order


def incident_body(order: Order, **extra: Any) -> dict[str, Any]:
    return {
        "order_id": order.pk,
        "occurred_at": (timezone.now() - dt.timedelta(hours=2)).isoformat(),
        "place": "服务对象家中卫生间",
        "what_happened": "协助洗浴时老人脚下打滑，志愿者扶住时扭伤手腕。",
        "injury": True,
        "injury_description": "志愿者右手腕扭伤，社区卫生室处理。",
        **extra,
    }


def test_incident_lifecycle_with_decision_history_and_claim(world: World, served: Order) -> None:
    volunteer = world.members["volunteer"]
    reported = world.api("volunteer").post("/api/v1/incidents", incident_body(served))
    assert reported.status_code == 201, reported.content
    inc = reported.json()
    assert inc["volunteer_id"] == volunteer.pk and inc["recipient_id"] == world.members["recipient"].pk
    assert inc["status"] == "open" and inc["claim"]["status"] == "none" and inc["decision"] is None
    url = f"/api/v1/incidents/{inc['id']}"
    # Injury details are stored encrypted.
    stored = IncidentReport.objects.get(pk=inc["id"])
    assert "扭伤" not in stored.injury_description_encrypted and "扭伤" in stored.injury_description

    # Lists carry no injury details; opening one shows them and is audited.
    listed = world.api("staff").get("/api/v1/incidents").json()["items"]
    assert [i["id"] for i in listed] == [inc["id"]] and "injury_description" not in listed[0]
    views = AuditEntry.objects.filter(action="incident.view", object_id=str(inc["id"]))
    assert views.count() == 0
    for persona in ("staff", "branch_admin", "recipient", "relative", "volunteer"):
        detail = world.api(persona).get(url)
        assert detail.status_code == 200, persona
        assert detail.json()["injury_description"] == "志愿者右手腕扭伤，社区卫生室处理。"
    assert views.count() == 5
    for persona in ("neighbour", "staff_next", "operator", "assessor", "other_bank_staff", "other_bank_admin"):
        assert world.api(persona).get(url).status_code == 403, persona
    assert world.api("neighbour").get("/api/v1/incidents").json()["items"] == []
    assert views.count() == 5

    # Follow-ups are for staff.
    assert world.api("volunteer").post(f"{url}/follow-ups", {"note": "已好转"}).status_code == 403
    fu = world.api("staff").post(f"{url}/follow-ups", {"note": "电话回访，志愿者已就医。"})
    assert fu.status_code == 201 and fu.json()["kind"] == "note"
    assert world.api("staff").post(f"{url}/follow-ups", {"note": ""}).status_code == 422

    # An injury needs a decision before the case can close.
    early = world.api("staff").post(f"{url}/close", {"note": "结案"})
    assert early.status_code == 409 and error_code(early) == "decision_required"

    # 责任认定: decided once; a change is a new decision with a reason.
    assert world.api("volunteer").post(f"{url}/decision", {"responsibility": "none"}).status_code == 403
    assert world.api("staff_next").post(f"{url}/decision", {"responsibility": "none"}).status_code == 403
    assert world.api("staff").post(f"{url}/decision", {"responsibility": "nobody"}).status_code == 422
    first = world.api("staff").post(f"{url}/decision", {"responsibility": "recipient", "note": "地面湿滑"})
    assert first.status_code == 200, first.content
    assert first.json()["decision"]["responsibility"] == "recipient"
    assert first.json()["decision"]["decided_by_name"] == "staff"
    silent = world.api("branch_admin").post(f"{url}/decision", {"responsibility": "volunteer"})
    assert silent.status_code == 409 and error_code(silent) == "already_decided"
    same = world.api("branch_admin").post(
        f"{url}/decision", {"responsibility": "recipient", "note": "地面湿滑", "reason": "复核"}
    )
    assert same.status_code == 409 and error_code(same) == "same_decision"
    changed = world.api("branch_admin").post(
        f"{url}/decision", {"responsibility": "shared", "note": "防滑垫未铺", "reason": "街道复核：志愿者未铺防滑垫"}
    )
    assert changed.status_code == 200, changed.content
    detail = world.api("staff").get(url).json()
    assert [(d["responsibility"], d["decided_by_name"], d["change_reason"]) for d in detail["decisions"]] == [
        ("recipient", "staff", ""),
        ("shared", "branch_admin", "街道复核：志愿者未铺防滑垫"),
    ]
    assert detail["decision"]["responsibility"] == "shared" and detail["decision"]["decided_at"]
    decided = AuditEntry.objects.filter(action="incident.decide", object_id=str(inc["id"])).order_by("seq")
    assert [(a.data["responsibility"], a.data["previous"]) for a in decided] == [
        ("recipient", None),
        ("shared", "recipient"),
    ]

    # The insurance claim, on the volunteer's policy in force that day.
    expired = InsurancePolicy.objects.create(
        member=volunteer, insurer="某保险公司", policy_number="OLD-1", starts_on=day(-500), ends_on=day(-140)
    )
    policy = world.api("staff").post(policies_url(volunteer), policy_body("PICC-CLAIM-1")).json()
    stranger_policy = InsurancePolicy.objects.create(
        member=world.members["stranger"], insurer="某保险公司", policy_number="S-1", starts_on=day(-5), ends_on=day(5)
    )
    claim = f"{url}/claim"
    assert world.api("staff").post(claim, {"claim_status": "paid"}).status_code == 409
    assert world.api("staff").post(claim, {"claim_status": "filed", "claim_number": "CLM-001"}).status_code == 422
    for pid in (expired.pk, stranger_policy.pk):
        bad = world.api("staff").post(claim, {"claim_status": "filed", "policy_id": pid, "claim_number": "CLM-001"})
        assert bad.status_code == 422, bad.content
    assert (
        world.api("staff")
        .post(claim, {"claim_status": "filed", "policy_id": 999999, "claim_number": "C-9"})
        .status_code
        == 404
    )
    assert world.api("volunteer").post(claim, {"claim_status": "filed", "policy_id": policy["id"]}).status_code == 403
    filed = world.api("staff").post(
        claim, {"claim_status": "filed", "policy_id": policy["id"], "claim_number": "clm-001"}
    )
    assert filed.status_code == 200, filed.content
    assert filed.json()["claim"] == {"policy_id": policy["id"], "claim_number": "CLM-001", "status": "filed"}
    pending = world.api("staff").post(f"{url}/close")
    assert pending.status_code == 409 and error_code(pending) == "claim_pending"
    assert world.api("staff").post(claim, {"claim_status": "paid", "note": "赔付 1200 元"}).status_code == 200
    claims = AuditEntry.objects.filter(action="incident.claim").count()
    assert world.api("staff").post(claim, {"claim_status": "paid"}).status_code == 200  # a replay changes nothing
    assert AuditEntry.objects.filter(action="incident.claim").count() == claims
    assert world.api("staff").post(claim, {"claim_status": "filed"}).status_code == 409

    closed = world.api("staff").post(f"{url}/close", {"note": "已赔付，结案"})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    for path, body in (("follow-ups", {"note": "补充"}), ("decision", {"responsibility": "none", "reason": "再议"})):
        late = world.api("staff").post(f"{url}/{path}", body)
        assert late.status_code == 409 and error_code(late) == "incident_closed"
    assert world.api("staff").post(f"{url}/close").status_code == 409
    assert world.api("staff").post(f"{url}/reopen", {"reason": ""}).status_code == 422
    reopened = world.api("staff").post(f"{url}/reopen", {"reason": "家属申请复核"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"
    kinds = [f["kind"] for f in world.api("staff").get(url).json()["follow_ups"]]
    assert kinds == ["note", "decision", "decision", "claim", "claim", "status", "status"]


def test_who_may_report_an_incident_and_bad_input(world: World, served: Order) -> None:
    before = counts()
    # Not a party to the order.
    for persona in ("neighbour", "staff_next", "other_bank_staff", "operator"):
        resp = world.api(persona).post("/api/v1/incidents", incident_body(served))
        assert resp.status_code == 403, persona
    assert world.api("staff").post("/api/v1/incidents", incident_body(served, order_id=999999)).status_code == 404
    bad_bodies: list[dict[str, Any]] = [
        incident_body(served, occurred_at="2025-01-01T10:00:00"),  # naive
        incident_body(served, occurred_at=(timezone.now() + dt.timedelta(days=1)).isoformat()),
        incident_body(served, occurred_at=(timezone.now() - dt.timedelta(days=400)).isoformat()),
        incident_body(served, occurred_at="not a time"),
        incident_body(served, injury_description=""),
        incident_body(served, injury=False),  # a description without an injury
        incident_body(served, injury="yes"),
        incident_body(served, what_happened=""),
        incident_body(served, what_happened="摔\x00倒"),
        incident_body(served, what_happened="长" * 2001),
        incident_body(served, volunteer_id=world.members["neighbour"].pk),
        incident_body(served, order_id=None),  # a member reports for their order
        incident_body(served, order_id=None, volunteer_id=world.members["volunteer"].pk),
    ]
    for body in bad_bodies:
        resp = world.api("volunteer").post("/api/v1/incidents", body)
        assert resp.status_code == 422, (body, resp.content)
    assert counts() == before

    # The recipient's side may report for their order; a double submit is refused.
    body = incident_body(served, injury=False, injury_description="", what_happened="老人情绪激动，拒绝服务。")
    assert world.api("relative").post("/api/v1/incidents", body).status_code == 201
    dup = world.api("relative").post("/api/v1/incidents", body)
    assert dup.status_code == 409 and error_code(dup) == "duplicate_report"
    # An order not yet dispatched had no service.
    waiting = new_order(world, item(world, "理发"))
    not_served = world.api("recipient").post("/api/v1/incidents", incident_body(waiting))
    assert not_served.status_code == 409 and error_code(not_served) == "order_not_served"

    # Staff may report without an order, for people of their subtree only.
    plain = incident_body(served, order_id=None, recipient_id=world.members["recipient"].pk)
    assert world.api("staff").post("/api/v1/incidents", plain).status_code == 201
    assert world.api("staff_next").post("/api/v1/incidents", plain).status_code == 403
    cross_bank = plain | {"volunteer_id": world.members["stranger"].pk}
    assert world.api("superuser").post("/api/v1/incidents", cross_bank).status_code == 422

    # What each side sees.
    assert len(world.api("relative").get("/api/v1/incidents").json()["items"]) == 2
    assert len(world.api("volunteer").get("/api/v1/incidents").json()["items"]) == 1
    assert len(world.api("staff").get("/api/v1/incidents", {"status": "open"}).json()["items"]) == 2
    assert world.api("staff").get("/api/v1/incidents", {"status": "lost"}).status_code == 422
    assert world.api("other_bank_admin").get("/api/v1/incidents").json()["items"] == []
    assert world.api("staff").get("/api/v1/incidents/999999").status_code == 404
    assert world.api("staff").get("/api/v1/incidents/abc").status_code == 422
