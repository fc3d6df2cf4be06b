"""Whole answers pinned while the output schemas move from hand-built dicts to reading the models (issue 15).

Each test makes a known world through the actions and the API, then compares the WHOLE JSON of an answer (keys,
their order, types, nulls, masking per caller) with what the test computes from the rows in the database. The key
order is the answer's promise to integrators (API-CONTRACT.md), so the comparisons are of ordered key lists too.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any
from unittest import mock

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.utils import timezone

from tests.conftest import World
from tests.evaluation_helpers import credit, served_order
from timebank.api.core import LocalTimeEncoder
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.evaluation import actions as evaluation_actions
from timebank.evaluation.models import (
    Assessment,
    Award,
    AwardKind,
    Complaint,
    EvaluationRules,
    Indicator,
    Penalty,
    SelfAssessment,
)
from timebank.evaluation.scoring import org_score, volunteer_score
from timebank.evaluation.stars import star_level
from timebank.federation.models import Peer
from timebank.funds.models import FundEntry
from timebank.hotline.models import CallLog, ReturnVisit, WelfareCheck
from timebank.ledger.models import Account, InterBankMove
from timebank.members.models import Certificate, InsurancePolicy, Member
from timebank.needs.models import Need, NeedFollowUp
from timebank.notices.access import can_manage_notice
from timebank.notices.models import Notice, NoticeRead
from timebank.orders.actions import do_create_order
from timebank.orders.models import Order
from timebank.orgs.models import Rules
from timebank.safety.models import TrainingAttendance, TrainingSession
from timebank.teams.access import can_manage_activity, can_manage_team
from timebank.teams.models import Activity, ActivitySignup, Team, TeamMembership

pytestmark = pytest.mark.django_db


def j(value: Any) -> Any:
    """`value` as the API's renderer writes it (times at +08:00, decimals as the encoder writes them)."""
    return json.loads(json.dumps(value, cls=LocalTimeEncoder, ensure_ascii=False))


def same(answer: Any, expected: Any) -> None:
    """Equal JSON, and the same key order at every level."""
    expected = j(expected)
    assert answer == expected
    assert json.dumps(answer, ensure_ascii=False) == json.dumps(expected, ensure_ascii=False)


# Evaluation -----------------------------------------------------------------------------------------------------

RULE_FIELDS = (
    "third_party_weight",
    "self_weight",
    "satisfaction_weight",
    "complaint_deduction",
    "star_hold_rating_below",
    "star_min_reviews",
    "star_hold_complaints",
)


def _indicator(i: Indicator) -> dict[str, Any]:
    return {
        "id": i.pk,
        "code": i.code,
        "name": i.name,
        "description": i.description,
        "weight": i.weight,
        "active": i.active,
        "position": i.position,
    }


def _assessment(a: Assessment) -> dict[str, Any]:
    return {
        "id": a.pk,
        "org_id": a.org_id,
        "year": a.year,
        "assessor_id": a.assessor_id,
        "total": a.total,
        "note": a.note,
        "scores": [
            {"indicator_id": s.indicator_id, "score": s.score, "weight": s.weight}
            for s in a.scores.order_by("indicator_id")
        ],
        "created_at": a.created_at,
    }


def _complaint(c: Complaint) -> dict[str, Any]:
    return {
        "id": c.pk,
        "org_id": c.org_id,
        "volunteer_id": c.volunteer_id,
        "order_id": c.order_id,
        "complainant": c.complainant,
        "text": c.text,
        "status": c.status,
        "decision_note": c.decision_note,
        "decided_at": c.decided_at,
        "created_at": c.created_at,
        "follow_ups": [
            {"id": f.pk, "note": f.note, "actor_id": f.actor_id, "created_at": f.created_at} for f in c.follow_ups.all()
        ],
    }


def _penalty(p: Penalty) -> dict[str, Any]:
    return {
        "id": p.pk,
        "member_id": p.member_id,
        "kind": p.kind,
        "reason": p.reason,
        "complaint_id": p.complaint_id,
        "starts_on": p.starts_on,
        "ends_on": p.ends_on,
        "in_force": p.in_force_on(timezone.localdate()),
        "lifted_at": p.lifted_at,
        "lift_reason": p.lift_reason,
        "correction_transaction_id": p.correction_id,
        "created_at": p.created_at,
    }


def _kind(k: AwardKind) -> dict[str, Any]:
    return {
        "id": k.pk,
        "code": k.code,
        "name": k.name,
        "subject": k.subject,
        "basis": k.basis,
        "winners": k.winners,
        "bonus_minutes": k.bonus_minutes,
        "min_star_level": k.min_star_level,
        "active": k.active,
        "position": k.position,
    }


def _award(a: Award, approval_id: int | None = None) -> dict[str, Any]:
    return {
        "id": a.pk,
        "kind_id": a.kind_id,
        "year": a.year,
        "member_id": a.member_id,
        "org_id": a.org_id,
        "name": a.member.name if a.member else (a.org.name if a.org else ""),
        "rank": a.rank,
        "score": a.score,
        "status": a.status,
        "confirmed_at": a.confirmed_at,
        "bonus_transaction_id": a.bonus_transaction_id,
        "bonus_approval_id": approval_id,
    }


COMBINED = (
    "third_party",
    "self_score",
    "satisfaction",
    "rating_count",
    "upheld_complaints",
    "weighted",
    "deduction",
    "total",
    "credited_minutes",
)
STAR = (
    "member_id",
    "level",
    "earned_level",
    "credited_minutes",
    "thresholds_hours",
    "next_threshold_hours",
    "minutes_to_next",
    "held_back",
    "average_rating",
    "rating_count",
    "upheld_complaints",
)


def test_evaluation_answers_read_the_rows(world: World) -> None:
    admin, staff, assessor = world.api("head_office_admin"), world.api("staff"), world.api("assessor")
    bank, community, volunteer = world.bank, world.community, world.members["volunteer"]
    year = timezone.localdate().year

    # Rules, read and patched.
    answer = admin.get(f"/api/v1/orgs/{bank.pk}/evaluation-rules").json()
    rules = EvaluationRules.objects.filter(head_office=bank).first() or EvaluationRules(head_office=bank)
    same(answer, {"head_office_id": bank.pk, **{f: getattr(rules, f) for f in RULE_FIELDS}})
    answer = admin.patch(f"/api/v1/orgs/{bank.pk}/evaluation-rules", {"complaint_deduction": "7.5"}).json()
    rules = EvaluationRules.objects.get(head_office=bank)
    same(answer, {"head_office_id": bank.pk, **{f: getattr(rules, f) for f in RULE_FIELDS}})

    # Indicators and award kinds, seeded, created and patched.
    assert admin.post(f"/api/v1/orgs/{bank.pk}/evaluation-defaults").status_code == 200
    answer = staff.get(f"/api/v1/orgs/{bank.pk}/indicators").json()
    same(answer, [_indicator(i) for i in Indicator.objects.filter(bank=bank)])
    created = admin.post(f"/api/v1/orgs/{bank.pk}/indicators", {"code": "extra", "name": "附加", "weight": 3})
    assert created.status_code == 201
    same(created.json(), _indicator(Indicator.objects.get(pk=created.json()["id"])))
    patched = admin.patch(f"/api/v1/indicators/{created.json()['id']}", {"active": False, "position": 9}).json()
    same(patched, _indicator(Indicator.objects.get(pk=created.json()["id"])))
    answer = staff.get(f"/api/v1/orgs/{bank.pk}/award-kinds").json()
    same(answer, [_kind(k) for k in AwardKind.objects.filter(bank=bank)])
    kind = admin.post(
        f"/api/v1/orgs/{bank.pk}/award-kinds",
        {"code": "pin", "name": "测试奖", "subject": "volunteer", "winners": 1, "bonus_minutes": 30},
    )
    assert kind.status_code == 201
    same(kind.json(), _kind(AwardKind.objects.get(pk=kind.json()["id"])))
    patched = admin.patch(f"/api/v1/award-kinds/{kind.json()['id']}", {"position": 4}).json()
    same(patched, _kind(AwardKind.objects.get(pk=kind.json()["id"])))

    # An assessment, listed.
    scores = [{"indicator_id": i.pk, "score": "80.5"} for i in Indicator.objects.filter(bank=bank, active=True)]
    created = assessor.post("/api/v1/assessments", {"org_id": community.pk, "year": year, "scores": scores[::-1]})
    assert created.status_code == 201, created.json()
    same(created.json(), _assessment(Assessment.objects.get(pk=created.json()["id"])))
    answer = staff.get("/api/v1/assessments").json()
    same(answer, {"items": [_assessment(a) for a in Assessment.objects.order_by("-pk")], "next_cursor": None})

    # Self-assessments and the combined scores.
    own = world.api("volunteer").post("/api/v1/self-assessments", {"year": year, "score": "90.0", "summary": "好"})
    s = SelfAssessment.objects.get(pk=own.json()["id"])
    assert own.status_code == 200, own.json()
    same(
        own.json(),
        {"id": s.pk, "member_id": s.member_id, "org_id": None, "year": year, "score": s.score, "summary": "好"},
    )
    answer = staff.get(f"/api/v1/orgs/{community.pk}/evaluation").json()
    c = org_score(community, year)
    same(answer, {"year": year, **{f: getattr(c, f) for f in COMBINED}})
    served_order(world, volunteer, minutes=45, rating=4)
    answer = staff.get(f"/api/v1/members/{volunteer.pk}/evaluation", {"year": year}).json()
    c = volunteer_score(bank.pk, volunteer.pk, year)
    same(answer, {"year": year, **{f: getattr(c, f) for f in COMBINED}})
    answer = staff.get(f"/api/v1/members/{volunteer.pk}/star-level").json()
    star = star_level(volunteer)
    same(answer, {f: getattr(star, f) for f in STAR})

    # A complaint with a follow-up, decided; listed and read.
    filed = staff.post("/api/v1/complaints", {"volunteer_id": volunteer.pk, "text": "迟到", "complainant": "李"})
    assert filed.status_code == 201
    cid = filed.json()["id"]
    same(filed.json(), _complaint(Complaint.objects.get(pk=cid)))
    followed = staff.post(f"/api/v1/complaints/{cid}/follow-ups", {"note": "已回访"})
    same(followed.json(), _complaint(Complaint.objects.get(pk=cid)))
    decided = world.api("branch_admin").post(f"/api/v1/complaints/{cid}/decide", {"outcome": "upheld", "note": "属实"})
    same(decided.json(), _complaint(Complaint.objects.get(pk=cid)))
    same(staff.get(f"/api/v1/complaints/{cid}").json(), _complaint(Complaint.objects.get(pk=cid)))
    same(
        staff.get("/api/v1/complaints").json(),
        {"items": [_complaint(x) for x in Complaint.objects.order_by("-pk")], "next_cursor": None},
    )

    # Penalties: imposed, listed, lifted.
    imposed = world.api("branch_admin").post(
        "/api/v1/penalties", {"member_id": volunteer.pk, "kind": "suspension", "reason": "迟到", "complaint_id": cid}
    )
    assert imposed.status_code == 201, imposed.json()
    pid = imposed.json()["id"]
    same(imposed.json(), _penalty(Penalty.objects.get(pk=pid)))
    assert imposed.json()["in_force"] is True
    same(
        staff.get("/api/v1/penalties", {"member_id": volunteer.pk}).json(),
        {"items": [_penalty(p) for p in Penalty.objects.order_by("-pk")], "next_cursor": None},
    )
    lifted = world.api("branch_admin").post(f"/api/v1/penalties/{pid}/lift", {"reason": "已改正"})
    same(lifted.json(), _penalty(Penalty.objects.get(pk=pid)))
    assert lifted.json()["in_force"] is False


def test_award_answers_read_the_rows_with_the_bonus_waiting_for_approval(world: World) -> None:
    admin = world.api("head_office_admin")
    bank, volunteer = world.bank, world.members["volunteer"]
    year = timezone.localdate().year
    credit(world, volunteer, 120, when=timezone.now() - dt.timedelta(minutes=1))
    kind = admin.post(
        f"/api/v1/orgs/{bank.pk}/award-kinds",
        {"code": "pin", "name": "测试奖", "subject": "volunteer", "basis": "credited_hours", "bonus_minutes": 6000},
    ).json()
    ranked = admin.post(f"/api/v1/award-kinds/{kind['id']}/rank", {"year": year}).json()
    awards = list(Award.objects.filter(kind_id=kind["id"]).select_related("member", "org").order_by("rank"))
    assert awards
    same(ranked, {"items": [_award(a) for a in awards], "next_cursor": None})

    confirmed = admin.post(f"/api/v1/awards/{awards[0].pk}/confirm")
    assert confirmed.status_code == 200, confirmed.json()
    waiting = evaluation_actions.waiting_bonuses(awards)
    assert waiting, "a bonus of 100 hours waits for a second person"
    award = Award.objects.select_related("member", "org").get(pk=awards[0].pk)
    same(confirmed.json(), _award(award, waiting.get(award.pk)))

    listed = world.api("staff").get("/api/v1/awards", {"kind_id": kind["id"]}).json()
    rows = list(Award.objects.filter(kind_id=kind["id"]).select_related("member", "org").order_by("pk"))
    same(listed, {"items": [_award(a, waiting.get(a.pk)) for a in rows], "next_cursor": None})


# Safety ---------------------------------------------------------------------------------------------------------


def _policy(p: InsurancePolicy) -> dict[str, Any]:
    return {
        "id": p.pk,
        "member_id": p.member_id,
        "insurer": p.insurer,
        "policy_number": p.policy_number,
        "starts_on": p.starts_on,
        "ends_on": p.ends_on,
        "in_force": p.starts_on <= timezone.localdate() <= p.ends_on,
        "created_at": p.created_at,
    }


def _certificate(c: Certificate) -> dict[str, Any]:
    today = timezone.localdate()
    return {
        "id": c.pk,
        "member_id": c.member_id,
        "kind": c.kind,
        "issuer": c.issuer,
        "valid_from": c.valid_from,
        "valid_until": c.valid_until,
        "valid_now": (c.valid_from is None or c.valid_from <= today)
        and (c.valid_until is None or today <= c.valid_until),
        "created_at": c.created_at,
    }


def _training(s: TrainingSession) -> dict[str, Any]:
    rows = TrainingAttendance.objects.filter(session=s)
    return {
        "id": s.pk,
        "org_id": s.org_id,
        "title": s.title,
        "topic": s.topic,
        "held_on": s.held_on,
        "place": s.place,
        "trainer": s.trainer,
        "kind": s.kind,
        "grants_certificate": s.grants_certificate or None,
        "certificate_valid_years": s.certificate_valid_years,
        "attended": rows.filter(attended=True).count(),
        "passed": rows.filter(assessment="passed").count(),
        "created_at": s.created_at,
    }


def _attendance(a: TrainingAttendance) -> dict[str, Any]:
    return {
        "member_id": a.member_id,
        "member_name": a.member.name,
        "attended": a.attended,
        "assessment": a.assessment,
        "score": a.score,
        "note": a.note,
        "certificate_id": a.certificate_id,
    }


def test_safety_answers_read_the_rows(world: World) -> None:
    staff, volunteer = world.api("staff"), world.members["volunteer"]
    today = timezone.localdate()
    base = f"/api/v1/members/{volunteer.pk}"

    # Policies: one in force, one ending soon for another member through a group policy; the alert list.
    body = {"insurer": "中国人保", "policy_number": "PICC-0001", "starts_on": str(today - dt.timedelta(days=30))}
    added = staff.post(f"{base}/insurance-policies", {**body, "ends_on": str(today + dt.timedelta(days=10))})
    assert added.status_code == 201, added.json()
    same(added.json(), _policy(InsurancePolicy.objects.get(pk=added.json()["id"])))
    old = {**body, "policy_number": "PICC-0000", "starts_on": str(today - dt.timedelta(days=400))}
    expired = staff.post(f"{base}/insurance-policies", {**old, "ends_on": str(today - dt.timedelta(days=40))})
    assert expired.status_code == 201, expired.json()
    for persona in ("staff", "volunteer", "head_office_admin"):
        same(
            world.api(persona).get(f"{base}/insurance-policies").json(),
            {
                "items": [_policy(p) for p in InsurancePolicy.objects.filter(member=volunteer).order_by("-pk")],
                "next_cursor": None,
            },
        )
    recipient = world.members["recipient"]
    group = staff.post(
        "/api/v1/insurance-policies/bulk",
        {
            **body,
            "policy_number": "GRP-0001",
            "ends_on": str(today + dt.timedelta(days=5)),
            "member_ids": [recipient.pk],
        },
    )
    assert group.status_code == 201, group.json()
    policies = list(InsurancePolicy.objects.filter(policy_number="GRP-0001").order_by("pk"))
    same(
        group.json(),
        {
            "insurer": "中国人保",
            "policy_number": "GRP-0001",
            "starts_on": policies[0].starts_on,
            "ends_on": policies[0].ends_on,
            "count": 1,
            "policies": [_policy(p) for p in policies],
        },
    )
    alerts = staff.get("/api/v1/insurance-policies/expiring", {"days": 30}).json()["items"]
    mine = next(a for a in alerts if a["member_id"] == volunteer.pk)
    current = InsurancePolicy.objects.get(policy_number="PICC-0001")
    same(
        mine,
        {
            "member_id": volunteer.pk,
            "name": volunteer.name,
            "home_org_id": volunteer.home_org_id,
            "status": "expiring",
            "policy": _policy(current),
            "days_left": (current.ends_on - today).days,
        },
    )

    # Certificates, and the expiring list.
    cert = staff.post(
        f"{base}/certificates",
        {
            "kind": "first_aid",
            "issuer": "红十字会",
            "valid_from": str(today - dt.timedelta(days=3)),
            "valid_until": str(today + dt.timedelta(days=9)),
        },
    )
    assert cert.status_code == 201, cert.json()
    same(cert.json(), _certificate(Certificate.objects.get(pk=cert.json()["id"])))
    same(
        world.api("volunteer").get(f"{base}/certificates").json(),
        {
            "items": [_certificate(c) for c in Certificate.objects.filter(member=volunteer).order_by("-pk")],
            "next_cursor": None,
        },
    )
    expiring = staff.get("/api/v1/certificates/expiring", {"days": 30}).json()
    c = Certificate.objects.get(pk=cert.json()["id"])
    assert c.valid_until is not None
    same(
        expiring,
        {
            "items": [
                {
                    **_certificate(c),
                    "member_name": volunteer.name,
                    "home_org_id": volunteer.home_org_id,
                    "days_left": (c.valid_until - today).days,
                }
            ],
            "next_cursor": None,
        },
    )

    # A training: created, attendance recorded (a pass grants a certificate), read and listed.
    made = staff.post(
        "/api/v1/trainings",
        {
            "org_id": world.community.pk,
            "title": "急救",
            "held_on": str(today - dt.timedelta(days=1)),
            "kind": "first_aid",
            "grants_certificate": "first_aid",
        },
    )
    assert made.status_code == 201, made.json()
    session = TrainingSession.objects.get(pk=made.json()["id"])
    same(made.json(), _training(session))
    records = [
        {"member_id": volunteer.pk, "attended": True, "passed": True, "score": "92.5"},
        {"member_id": recipient.pk, "attended": True, "passed": False, "note": "补考"},
    ]
    result = staff.post(f"/api/v1/trainings/{session.pk}/attendance", {"records": records})
    assert result.status_code == 200, result.json()
    rows = list(TrainingAttendance.objects.filter(session=session).select_related("member").order_by("pk"))
    granted = Certificate.objects.filter(pk__in=[r.certificate_id for r in rows if r.certificate_id])
    same(
        result.json(),
        {
            "training": _training(session),
            "records": [_attendance(a) for a in rows],
            "certificates_granted": [_certificate(c) for c in granted],
        },
    )
    same(staff.get(f"/api/v1/trainings/{session.pk}").json(), _training(session))
    listed = staff.get("/api/v1/trainings").json()
    same(listed, {"items": [_training(s) for s in TrainingSession.objects.order_by("-pk")], "next_cursor": None})
    same(
        staff.get(f"/api/v1/trainings/{session.pk}/attendance").json(),
        {"items": [_attendance(a) for a in rows], "next_cursor": None},
    )
    # A member sees only their own row, and their training record.
    same(
        world.api("volunteer").get(f"/api/v1/trainings/{session.pk}/attendance").json(),
        {"items": [_attendance(a) for a in rows if a.member_id == volunteer.pk], "next_cursor": None},
    )
    own = TrainingAttendance.objects.get(session=session, member=volunteer)
    same(
        world.api("volunteer").get(f"{base}/trainings").json(),
        {
            "items": [
                {
                    **_attendance(own),
                    "training_id": session.pk,
                    "title": "急救",
                    "kind": "first_aid",
                    "held_on": session.held_on,
                }
            ],
            "next_cursor": None,
        },
    )


# Hotline ----------------------------------------------------------------------------------------------------------


def _call(c: CallLog) -> dict[str, Any]:
    phone = c.phone
    return {
        "id": c.pk,
        "org_id": c.org_id,
        "kind": c.kind,
        "summary": c.summary,
        "member_id": c.member_id,
        "member_name": c.member.name if c.member else None,
        "phone": phone[:3] + "****" + phone[-4:],
        "operator_id": c.operator_id,
        "operator": (c.operator.display_name or c.operator.username) if c.operator else None,
        "started_at": c.started_at,
        "ended_at": c.ended_at,
        "order_id": c.order_id,
        "need_id": c.need_id,
        "created_at": c.created_at,
    }


def _by(user: Any) -> str | None:
    return (user.display_name or user.username) if user is not None else None


def test_hotline_answers_read_the_rows_with_phones_masked(world: World) -> None:
    operator = world.api("operator")
    recipient = world.members["recipient"]
    logged = operator.post(
        "/api/v1/hotline/calls",
        {"kind": "order", "summary": "要保洁", "member_id": recipient.pk, "phone": "13912345678"},
    )
    assert logged.status_code == 201, logged.json()
    call = CallLog.objects.select_related("member", "operator").get(pk=logged.json()["id"])
    same(logged.json(), _call(call))
    assert logged.json()["phone"] == "139****5678"
    anonymous = operator.post("/api/v1/hotline/calls", {"kind": "other", "summary": "问问", "phone": "13700001111"})
    assert anonymous.status_code == 201, anonymous.json()
    same(anonymous.json(), _call(CallLog.objects.select_related("member", "operator").get(pk=anonymous.json()["id"])))
    for persona in ("operator", "staff", "head_office_admin"):
        same(world.api(persona).get(f"/api/v1/hotline/calls/{call.pk}").json(), _call(call))
    patched = operator.patch(f"/api/v1/hotline/calls/{call.pk}", {"summary": "要保洁，下周二"})
    call.refresh_from_db()
    same(patched.json(), _call(call))
    calls = CallLog.objects.select_related("member", "operator")
    same(
        operator.get("/api/v1/hotline/calls").json(),
        {"items": [_call(c) for c in calls.order_by("-pk")], "next_cursor": None},
    )

    # A welfare check, and a return visit of a served order.
    check = operator.post(
        "/api/v1/hotline/welfare-checks", {"member_id": recipient.pk, "method": "phone", "found_ok": True, "note": "好"}
    )
    assert check.status_code == 201, check.json()

    def _check(w: WelfareCheck) -> dict[str, Any]:
        return {
            "id": w.pk,
            "member_id": w.member_id,
            "method": w.method,
            "found_ok": w.found_ok,
            "health_changed": w.health_changed,
            "note": w.note,
            "need_id": w.need_id,
            "call_id": w.call_id,
            "checked_at": w.checked_at,
            "created_by": _by(w.created_by),
            "created_at": w.created_at,
        }

    same(check.json(), _check(WelfareCheck.objects.get(pk=check.json()["id"])))
    same(
        world.api("staff").get("/api/v1/hotline/welfare-checks").json(),
        {"items": [_check(w) for w in WelfareCheck.objects.order_by("-pk")], "next_cursor": None},
    )
    order = served_order(world, world.members["volunteer"], minutes=30)
    visit = operator.post(
        "/api/v1/hotline/return-visits", {"order_id": order.pk, "outcome": "reached", "satisfaction": 4, "note": "满意"}
    )
    assert visit.status_code == 201, visit.json()

    def _visit(v: ReturnVisit) -> dict[str, Any]:
        return {
            "id": v.pk,
            "order_id": v.order_id,
            "outcome": v.outcome,
            "satisfaction": v.satisfaction,
            "note": v.note,
            "call_id": v.call_id,
            "created_by": _by(v.created_by),
            "created_at": v.created_at,
        }

    same(visit.json(), _visit(ReturnVisit.objects.get(pk=visit.json()["id"])))
    same(
        operator.get("/api/v1/hotline/return-visits").json(),
        {"items": [_visit(v) for v in ReturnVisit.objects.order_by("-pk")], "next_cursor": None},
    )


# Funds ------------------------------------------------------------------------------------------------------------


def _entry(e: FundEntry) -> dict[str, Any]:
    reversal = FundEntry.objects.filter(reverses=e).first()
    label = e.get_source_display() if e.source else e.get_kind_display()
    return {
        "id": e.pk,
        "org_id": e.org_id,
        "org_name": e.org.name,
        "direction": e.direction,
        "source": e.source,
        "kind": e.kind,
        "category_label": str(label),
        "fund": e.fund,
        "amount": f"{e.amount:.2f}",
        "occurred_on": e.occurred_on,
        "description": e.description,
        "donor_name": e.donor_name,
        "provider": e.provider,
        "in_kind": e.in_kind,
        "item_description": e.item_description,
        "goods_id": e.goods_id,
        "order_id": e.order_id,
        "reverses_id": e.reverses_id,
        "reversed_by_id": reversal.pk if reversal else None,
        "reason": e.reason,
        "created_by": (e.created_by.display_name or e.created_by.username) if e.created_by else None,
        "created_at": e.created_at,
    }


def test_fund_entry_answers_read_the_rows(world: World) -> None:
    admin = world.api("head_office_admin")
    day = str(timezone.localdate())
    body = {"org_id": world.community.pk, "direction": "income", "source": "enterprise", "occurred_on": day}
    booked = admin.post("/api/v1/funds/entries", {**body, "amount": "1200.5", "donor_name": "张三"})
    assert booked.status_code == 201, booked.json()
    same(booked.json(), _entry(FundEntry.objects.get(pk=booked.json()["id"])))
    spent = {"org_id": world.community.pk, "direction": "expense", "kind": "operations", "occurred_on": day}
    assert admin.post("/api/v1/funds/entries", {**spent, "amount": "30"}).status_code == 201
    reversed_ = admin.post(f"/api/v1/funds/entries/{booked.json()['id']}/reverse", {"reason": "记错了"})
    assert reversed_.status_code == 201, reversed_.json()
    same(reversed_.json(), _entry(FundEntry.objects.get(pk=reversed_.json()["id"])))
    same(
        admin.get(f"/api/v1/funds/entries/{booked.json()['id']}").json(),
        _entry(FundEntry.objects.get(pk=booked.json()["id"])),
    )
    same(
        world.api("staff").get("/api/v1/funds/entries").json(),
        {"items": [_entry(e) for e in FundEntry.objects.order_by("-pk")], "next_cursor": None},
    )


# Ledger: inter-bank moves -----------------------------------------------------------------------------------------


def _move(m: InterBankMove) -> dict[str, Any]:
    return {
        "id": m.pk,
        "member_id": m.member_id,
        "to_org_id": m.to_org_id,
        "status": m.status,
        "new_member_id": m.new_member_id,
        "source_approved": m.source_approved_by_id is not None,
        "target_approved": m.target_approved_by_id is not None,
        "earned_minutes": m.earned_minutes,
        "goods_minutes": m.goods_minutes,
        "reserve_minutes": m.reserve_minutes,
    }


def test_interbank_move_answers_read_the_row(world: World) -> None:
    volunteer = world.members["volunteer"]
    credit(world, volunteer, 90)
    asked = world.api("volunteer").post(
        "/api/v1/interbank-moves", {"member_id": volunteer.pk, "to_org_id": world.other_community.pk}
    )
    assert asked.status_code == 201, asked.json()
    mid = asked.json()["id"]
    same(asked.json(), _move(InterBankMove.objects.get(pk=mid)))
    first = world.api("head_office_admin").post(f"/api/v1/interbank-moves/{mid}/approve")
    same(first.json(), _move(InterBankMove.objects.get(pk=mid)))
    assert first.json()["source_approved"] is True and first.json()["target_approved"] is False
    for persona in ("head_office_admin", "other_bank_admin"):
        same(world.api(persona).get(f"/api/v1/interbank-moves/{mid}").json(), _move(InterBankMove.objects.get(pk=mid)))
    done = world.api("other_bank_admin").post(f"/api/v1/interbank-moves/{mid}/approve")
    same(done.json(), _move(InterBankMove.objects.get(pk=mid)))
    assert done.json()["target_approved"] is True and done.json()["new_member_id"] is not None


# Federation: peers ------------------------------------------------------------------------------------------------


def test_peer_answers_read_the_row_and_its_clearing_account(world: World, settings: Any) -> None:
    settings.FEDERATION_NODE_ID = "node-here"
    settings.FEDERATION_SIGNING_KEY = "A" * 43 + "="
    key = base64.b64encode(
        Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    ).decode()
    body = {
        "node_id": "qingdao",
        "name": "青岛市时间银行",
        "url": "https://127.0.0.1:9",
        "public_key": key,
        "bank_id": world.bank.pk,
        "limit_minutes": 6000,
    }
    made = world.api("superuser").post("/api/v1/federation/peers", body)
    assert made.status_code == 201, made.json()

    def _peer(p: Peer) -> dict[str, Any]:
        return {
            "id": p.pk,
            "node_id": p.node_id,
            "name": p.name,
            "url": p.url,
            "bank_id": p.bank_id,
            "limit_minutes": p.limit_minutes,
            "balance_minutes": Account.objects.get(pk=p.clearing_account_id).balance_minutes,
        }

    peer = Peer.objects.get(pk=made.json()["id"])
    same(made.json(), _peer(peer))
    for persona in ("superuser", "head_office_admin"):
        same(world.api(persona).get(f"/api/v1/federation/peers/{peer.pk}").json(), _peer(peer))
        same(world.api(persona).get("/api/v1/federation/peers").json(), {"items": [_peer(peer)], "next_cursor": None})


# Notices ----------------------------------------------------------------------------------------------------------


def _notice(n: Notice, user: Any) -> dict[str, Any]:
    """A notice as `user` sees it: unread until they read it; withdrawable while live by its org's managers."""
    return {
        "id": n.pk,
        "org_id": n.org_id,
        "org_name": n.org.name,
        "title": n.title,
        "body": n.body,
        "audience": n.audience,
        "pinned": n.pinned,
        "expires_on": n.expires_on,
        "source": n.source,
        "published_at": n.published_at,
        "withdrawn_at": n.withdrawn_at,
        "unread": not NoticeRead.objects.filter(user=user, notice=n).exists(),
        "can_withdraw": n.withdrawn_at is None and can_manage_notice(user, n),
    }


def test_notice_answers_read_the_row_and_the_caller(world: World) -> None:
    staff = world.api("staff")
    body = {"org_id": world.community.pk, "title": "停水通知", "body": "明天停水", "pinned": True}
    made = staff.post("/api/v1/notices", {**body, "expires_on": str(timezone.localdate() + dt.timedelta(days=3))})
    assert made.status_code == 201, made.json()
    nid = made.json()["id"]
    same(made.json(), _notice(Notice.objects.get(pk=nid), world.users["staff"]))
    bank_wide = {"org_id": world.bank.pk, "title": "总行", "body": "x"}
    other = world.api("head_office_admin").post("/api/v1/notices", bank_wide)
    assert other.status_code == 201, other.json()
    # The reader's own flags: unread and can_withdraw differ per caller.
    for persona in ("volunteer", "recipient", "staff", "head_office_admin", "branch_admin"):
        same(
            world.api(persona).get(f"/api/v1/notices/{nid}").json(),
            _notice(Notice.objects.get(pk=nid), world.users[persona]),
        )
    read = world.api("volunteer").post(f"/api/v1/notices/{nid}/read")
    same(read.json(), _notice(Notice.objects.get(pk=nid), world.users["volunteer"]))
    assert read.json()["unread"] is False
    for persona, params in (
        ("volunteer", {}),
        ("volunteer", {"unread": "true"}),
        ("volunteer", {"unread": "false"}),
        ("recipient", {}),
        ("staff", {"scope": "managed"}),
        ("head_office_admin", {"scope": "managed"}),
    ):
        answer = world.api(persona).get("/api/v1/notices", params).json()
        ids = [n["id"] for n in answer["items"]]
        assert ids == sorted(ids, reverse=True) and ids
        rows = [Notice.objects.get(pk=i) for i in ids]
        same(answer, {"items": [_notice(n, world.users[persona]) for n in rows], "next_cursor": None})
    gone = world.api("head_office_admin").post(f"/api/v1/notices/{nid}/withdraw")
    same(gone.json(), _notice(Notice.objects.get(pk=nid), world.users["head_office_admin"]))
    assert gone.json()["can_withdraw"] is False and gone.json()["withdrawn_at"] is not None


# Catalogue --------------------------------------------------------------------------------------------------------


def _item(i: ServiceItem) -> dict[str, Any]:
    return {
        "id": i.pk,
        "name": i.name,
        "category": i.category,
        "tier": i.tier,
        "multiplier": float(Rules.objects.get(head_office_id=i.head_office_id).multipliers[i.tier]),
        "requires_certificate": i.requires_certificate or None,
        "description": i.description,
        "head_office_id": i.head_office_id,
        "active": i.active,
    }


def test_catalogue_item_answers_read_the_row_and_the_bank_multipliers(world: World) -> None:
    Rules.objects.filter(head_office=world.bank).update(
        multipliers={"ordinary": 1, "technical": 1.5, "professional": 3}
    )
    admin = world.api("head_office_admin")
    made = admin.post("/api/v1/catalogue/items", {"name": "陪诊", "category": "mutual_care", "tier": "technical"})
    assert made.status_code == 201, made.json()
    same(made.json(), _item(ServiceItem.objects.get(pk=made.json()["id"])))
    body = {"name": "护理", "category": "mutual_care", "tier": "professional", "description": "上门护理"}
    made = admin.post("/api/v1/catalogue/items", {**body, "requires_certificate": "nursing"})
    assert made.status_code == 201, made.json()
    same(made.json(), _item(ServiceItem.objects.get(pk=made.json()["id"])))
    other = world.api("other_bank_admin").post(
        "/api/v1/catalogue/items", {"name": "理发", "category": "mutual_care", "tier": "ordinary"}
    )
    assert other.status_code == 201, other.json()
    org = world.bank
    for persona in ("head_office_admin", "staff", "volunteer"):
        same(
            world.api(persona).get("/api/v1/catalogue/items").json(),
            {"items": [_item(i) for i in ServiceItem.objects.filter(head_office=org).order_by("pk")], "next_cursor": None},
        )
    org = world.other_bank
    same(
        world.api("superuser").get("/api/v1/catalogue/items", {"head_office_id": org.pk}).json(),
        {"items": [_item(i) for i in ServiceItem.objects.filter(head_office=org).order_by("pk")], "next_cursor": None},
    )


# Needs ------------------------------------------------------------------------------------------------------------


def _need(n: Need, *, detail: bool = False) -> dict[str, Any]:
    recipient = Member.objects.get(pk=n.recipient_id)
    items = ServiceItem.objects.filter(needs=n).order_by("pk")
    out = {
        "id": n.pk,
        "recipient_id": n.recipient_id,
        "recipient_name": recipient.name,
        "recipient_phone": recipient.phone[:3] + "****" + recipient.phone[-4:],
        "home_org_id": recipient.home_org_id,
        "level": n.level,
        "found_by": n.found_by,
        "status": n.status,
        "item_ids": [i.pk for i in items],
        "items": [{"id": i.pk, "name": i.name} for i in items],
        "notes": n.notes,
        "order_ids": [o.pk for o in Order.objects.filter(needs=n).order_by("pk")],
        "census_import_id": n.census_import_id,
        "created_by": _by(n.created_by),
        "created_at": n.created_at,
        "updated_at": n.updated_at,
        "met_at": n.met_at,
        "closed_at": n.closed_at,
        "close_reason": n.close_reason,
    }
    if detail:
        out["follow_ups"] = [
            {
                "id": f.pk,
                "note": f.note,
                "from_status": f.from_status,
                "to_status": f.to_status,
                "created_by": _by(f.created_by),
                "created_at": f.created_at,
            }
            for f in NeedFollowUp.objects.filter(need=n).order_by("pk")
        ]
    return out


def test_need_answers_read_the_rows_with_phones_masked(world: World) -> None:
    meals = do_create_service_item(None, head_office=world.bank, name="餐饮配送", category="mutual_care", tier="ordinary")
    wash = do_create_service_item(None, head_office=world.bank, name="助浴", category="mutual_care", tier="ordinary")
    grandpa = world.members["recipient"]
    body = {"recipient_id": grandpa.pk, "level": "essential", "found_by": "phone_call", "notes": "午饭没人做"}
    made = world.api("operator").post("/api/v1/needs", {**body, "item_ids": [wash.pk, meals.pk]})
    assert made.status_code == 201, made.json()
    nid = made.json()["id"]
    same(made.json(), _need(Need.objects.get(pk=nid), detail=True))
    bare = world.api("staff").post("/api/v1/needs", {"recipient_id": grandpa.pk, "found_by": "survey"})
    assert bare.status_code == 201, bare.json()
    same(bare.json(), _need(Need.objects.get(pk=bare.json()["id"]), detail=True))
    staff = world.api("staff")
    step = staff.post(f"/api/v1/needs/{nid}/follow-ups", {"note": "上门看过", "status": "in_progress"})
    assert step.status_code == 201, step.json()
    same(step.json(), _need(Need.objects.get(pk=nid), detail=True))
    patched = staff.patch(f"/api/v1/needs/{nid}", {"notes": "每周一三五送餐", "item_ids": [meals.pk]})
    same(patched.json(), _need(Need.objects.get(pk=nid), detail=True))
    order = do_create_order(
        world.users["operator"],
        recipient=grandpa,
        service_item=meals,
        scheduled_start=timezone.now() + dt.timedelta(days=1),
        planned_minutes=60,
        payer="subsidy",
        channel="hotline",
    )
    linked = world.api("operator").post(f"/api/v1/needs/{bare.json()['id']}/orders", {"order_id": order.pk})
    same(linked.json(), _need(Need.objects.get(pk=bare.json()["id"]), detail=True))
    closed = staff.post(f"/api/v1/needs/{nid}/close", {"reason": "老人已搬去女儿家"})
    same(closed.json(), _need(Need.objects.get(pk=nid), detail=True))
    for persona in ("staff", "operator", "head_office_admin"):
        same(world.api(persona).get(f"/api/v1/needs/{nid}").json(), _need(Need.objects.get(pk=nid), detail=True))
        same(
            world.api(persona).get("/api/v1/needs").json(),
            {"items": [_need(n) for n in Need.objects.order_by("-pk")], "next_cursor": None},
        )


# Teams ------------------------------------------------------------------------------------------------------------


def _team(t: Team, user: Any) -> dict[str, Any]:
    """A team as `user` sees it: whether they are in it, and whether they may manage it."""
    return {
        "id": t.pk,
        "org_id": t.org_id,
        "name": t.name,
        "kind": t.kind,
        "description": t.description,
        "active": t.active,
        "members": TeamMembership.objects.filter(team=t, active=True).count(),
        "is_mine": TeamMembership.objects.filter(team=t, member__user=user, active=True).exists(),
        "may_manage": can_manage_team(user, t),
    }


def test_team_answers_read_the_row_and_the_caller(world: World) -> None:
    staff = world.api("staff")
    made = staff.post("/api/v1/teams", {"org_id": world.community.pk, "name": "顺河医疗队", "kind": "medical"})
    assert made.status_code == 201, made.json()
    tid = made.json()["id"]
    same(made.json(), _team(Team.objects.get(pk=tid), world.users["staff"]))
    other = staff.post("/api/v1/teams", {"org_id": world.community.pk, "name": "顺河志愿队", "kind": "residents"})
    assert other.status_code == 201, other.json()
    joined = staff.post(f"/api/v1/teams/{tid}/members", {"member_id": world.members["volunteer"].pk, "role": "leader"})
    assert joined.status_code == 200, joined.json()
    patched = staff.patch(f"/api/v1/teams/{tid}", {"description": "上门问诊"})
    same(patched.json(), _team(Team.objects.get(pk=tid), world.users["staff"]))
    for persona in ("volunteer", "recipient", "staff", "branch_admin", "head_office_admin"):
        user = world.users[persona]
        same(world.api(persona).get(f"/api/v1/teams/{tid}").json(), _team(Team.objects.get(pk=tid), user))
        answer = world.api(persona).get("/api/v1/teams").json()
        rows = [Team.objects.get(pk=t["id"]) for t in answer["items"]]
        assert [t.pk for t in rows] == sorted(t.pk for t in rows)
        same(answer, {"items": [_team(t, user) for t in rows], "next_cursor": None})
    mine = world.api("volunteer").get("/api/v1/teams", {"mine": "true"}).json()
    same(mine, {"items": [_team(Team.objects.get(pk=tid), world.users["volunteer"])], "next_cursor": None})
    assert mine["items"][0]["is_mine"] is True and mine["items"][0]["may_manage"] is True


def _activity(a: Activity, user: Any) -> dict[str, Any]:
    """An activity as `user` sees it: their own sign-up, and whether they may manage it."""
    mine = ActivitySignup.objects.filter(activity=a, member__user=user).first()
    signups = ActivitySignup.objects.filter(activity=a)
    return {
        "id": a.pk,
        "org_id": a.org_id,
        "team_id": a.team_id,
        "title": a.title,
        "description": a.description,
        "service_item_id": a.service_item_id,
        "service_item_name": a.service_item.name,
        "tier": a.service_item.tier,
        "multiplier": float(Rules.objects.get(head_office_id=a.bank_id).multipliers[a.service_item.tier]),
        "place": a.place,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "signup_deadline": a.signup_deadline,
        "places": a.places,
        "confirmed": signups.filter(status="confirmed").count(),
        "waiting": signups.filter(status="waiting").count(),
        "requires_certificate": a.requires_certificate,
        "min_age": a.min_age,
        "max_age": a.max_age,
        "team_only": a.team_only,
        "state": a.state,
        "cancel_reason": a.cancel_reason,
        "closed_at": a.closed_at,
        "my_status": mine.status if mine else None,
        "my_attendance": mine.attendance if mine else None,
        "may_manage": can_manage_activity(user, a),
    }


def test_activity_answers_read_the_row_and_the_caller(world: World) -> None:
    item = do_create_service_item(
        None, head_office=world.bank, name="健康讲座", category="health_talks", tier="professional"
    )
    staff = world.api("staff")
    start = timezone.now() + dt.timedelta(minutes=30)
    body = {
        "org_id": world.community.pk,
        "title": "健康讲座：冬季养生",
        "service_item_id": item.pk,
        "place": "顺河社区活动室",
        "starts_at": start.isoformat(),
        "ends_at": (start + dt.timedelta(hours=1)).isoformat(),
        "places": 1,
        "min_age": 18,
    }
    made = staff.post("/api/v1/activities", body)
    assert made.status_code == 201, made.json()
    aid = made.json()["id"]
    same(made.json(), _activity(Activity.objects.get(pk=aid), world.users["staff"]))
    for persona in ("volunteer", "neighbour"):
        assert world.api(persona).post(f"/api/v1/activities/{aid}/signup").status_code == 200
    patched = staff.patch(f"/api/v1/activities/{aid}", {"place": "礼堂", "max_age": 90})
    assert patched.status_code == 200, patched.json()
    same(patched.json(), _activity(Activity.objects.get(pk=aid), world.users["staff"]))
    other = staff.post("/api/v1/activities", {**body, "title": "取消的讲座"})
    assert other.status_code == 201, other.json()
    cancelled = staff.post(f"/api/v1/activities/{other.json()['id']}/cancel", {"reason": "下雨"})
    assert cancelled.status_code == 200, cancelled.json()
    same(cancelled.json(), _activity(Activity.objects.get(pk=other.json()["id"]), world.users["staff"]))
    for persona in ("volunteer", "neighbour", "recipient", "staff", "head_office_admin"):
        user = world.users[persona]
        same(world.api(persona).get(f"/api/v1/activities/{aid}").json(), _activity(Activity.objects.get(pk=aid), user))
        answer = world.api(persona).get("/api/v1/activities").json()
        rows = [Activity.objects.get(pk=a["id"]) for a in answer["items"]]
        same(answer, {"items": [_activity(a, user) for a in rows], "next_cursor": None})
    with mock.patch("django.utils.timezone.now", return_value=start + dt.timedelta(hours=2)):
        closed = staff.post(f"/api/v1/activities/{aid}/close")
        assert closed.status_code == 200, closed.json()
        assert list(closed.json()) == ["activity", "already_closed", "credited", "pending", "no_shows", "skipped"]
        same(closed.json()["activity"], _activity(Activity.objects.get(pk=aid), world.users["staff"]))
        again = staff.post(f"/api/v1/activities/{aid}/close")
        same(again.json()["activity"], _activity(Activity.objects.get(pk=aid), world.users["staff"]))
