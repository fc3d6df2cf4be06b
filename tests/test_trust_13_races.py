"""Issue 13: the station's decisions sent at once from the pages, on PostgreSQL (SQLite serialises writers, so these
races never happen there).

- An inter-bank move (跨行转移, /staff/interbank-moves/{id}/approve|reject): both head offices approving at once, or
  one side approving while it is being rejected, ends in exactly one decision per side, one audit row for it, the
  member's credits moved once; the losers get the page with a 409 refusal, never a 500.
- An incident's steps (/safety/incidents/{id}/{step}/): each step posted twice at once (the same form twice, a
  double click; or two forms of two staff) acts once.

Each request is a page's form, sent with the persona's session from its own thread (its own database connection),
all released together by a barrier, as tests/test_trust_08_races.py does.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any

from django.db import connections
from django.test import Client
from django.utils import timezone

from tests.conftest import MODEL_BACKEND, World, make_member
from tests.test_trust_08_races import Answer, postgres_only
from timebank.audit.models import AuditEntry
from timebank.ledger import actions as ledger
from timebank.ledger.interbank import do_approve_move, do_request_move
from timebank.ledger.models import Account, InterBankMove, Transaction
from timebank.members.models import Member
from timebank.safety import actions as safety
from timebank.safety.models import IncidentDecision, IncidentFollowUp, IncidentReport

Form = tuple[str, str, dict[str, Any]]  # persona, url, the form's fields


def send_at_once(w: World, forms: list[Form]) -> list[Answer]:
    """Each form from its own thread and session, released together."""
    barrier = threading.Barrier(len(forms))
    answers: list[Answer | None] = [None] * len(forms)

    def worker(i: int) -> None:
        persona, url, body = forms[i]
        try:
            client = Client(raise_request_exception=False)
            client.force_login(w.users[persona], backend=MODEL_BACKEND)
            barrier.wait(timeout=30)
            resp = client.post(url, body, REMOTE_ADDR=f"10.13.0.{i + 1}")
            answers[i] = Answer(resp.status_code, resp.content, False)
        except BaseException as exc:  # any escape is a failed request, reported as such
            answers[i] = Answer(599, repr(exc).encode(), False)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(len(forms))]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in pool), "a request hung (a lock never released)"
    return [a if a is not None else Answer(599, b"no answer", False) for a in answers]


def statuses(answers: list[Answer]) -> list[int]:
    return sorted(a.status for a in answers)


def audit(action: str, obj: InterBankMove | IncidentReport) -> int:
    return AuditEntry.objects.filter(action=action, object_id=str(obj.pk)).count()


# Inter-bank moves -------------------------------------------------------------------------------------------


def _moving_member(w: World, name: str) -> tuple[Member, InterBankMove]:
    """A member of the first bank with credits in every bucket, and their requested move to the other bank."""
    member = make_member(w.community, name)
    for bucket, minutes in (("earned", 90), ("goods", 30), ("reserve", 120)):
        ledger.do_adjustment(None, member=member, minutes=minutes, bucket=bucket, reason="开户")
    return member, do_request_move(w.users["staff"], member, w.other_community, "搬去女儿家")


def _balances(member: Member) -> dict[str, int]:
    return dict(Account.objects.filter(member=member).values_list("kind", "balance_minutes"))


def _moved_once(move: InterBankMove, old: Member) -> None:
    """Completed once: one new member, the credits left the old accounts and arrived once."""
    move.refresh_from_db()
    assert move.status == "completed" and move.new_member is not None
    assert Member.objects.filter(bank=move.to_org.head_office, name=old.name).count() == 1
    assert _balances(old) == {"earned": 0, "goods": 0, "reserve": 0}
    assert _balances(move.new_member) == {"earned": 90, "goods": 30, "reserve": 120}
    assert Transaction.objects.filter(memo=f"跨行转移 #{move.pk}").count() == 2  # one leaving, one arriving
    assert audit("interbank.complete", move) == 2  # one on each bank's chain


@postgres_only
def test_both_head_offices_approving_at_once_move_the_member_once(world: World) -> None:
    """Three approvals from each head office at once (double clicks and second tabs: each its own form): one
    approval per side, one audit row each, the member and their credits moved once; the others a 409 page."""
    w = world
    member, move = _moving_member(w, "孙桂兰")
    url = f"/staff/interbank-moves/{move.pk}/approve/"
    forms: list[Form] = [
        (persona, url, {"idempotency_key": f"{persona}-{i}"})
        for persona in ("head_office_admin", "other_bank_admin")
        for i in range(3)
    ]
    answers = send_at_once(w, forms)
    assert statuses(answers) == [302, 302, 409, 409, 409, 409], statuses(answers)
    refusals = [a.body.decode() for a in answers if a.status == 409]
    assert all("这一方已经批准过了" in r or "这个跨行转移已经办结" in r for r in refusals)  # the page, with its reason
    assert audit("interbank.approve_source", move) == 1 and audit("interbank.approve_target", move) == 1
    _moved_once(move, member)
    assert (move.source_approved_by_id, move.target_approved_by_id) == (
        w.users["head_office_admin"].pk,
        w.users["other_bank_admin"].pk,
    )


@postgres_only
def test_the_same_approval_form_sent_at_once_acts_once(world: World) -> None:
    """The last approval's form, sent four times at once (one key: a double click): every answer goes where the
    first went, the member moves once."""
    w = world
    member, move = _moving_member(w, "钱玉梅")
    do_approve_move(w.users["head_office_admin"], move, side="source")
    url = f"/staff/interbank-moves/{move.pk}/approve/"
    answers = send_at_once(w, [("other_bank_admin", url, {"idempotency_key": "t" * 32})] * 4)
    assert statuses(answers) == [302] * 4, [(a.status, a.body[:200]) for a in answers]
    assert audit("interbank.approve_target", move) == 1
    _moved_once(move, member)


@postgres_only
def test_approving_and_rejecting_at_once_decide_once(world: World) -> None:
    """The target bank's last approval and its rejection, each sent twice at once (two admins' tabs), for two
    moves: exactly one decision each; an approved move moved the credits once, a rejected one moved nothing."""
    w = world
    outcomes = set()
    for name in ("周凤英", "吴兰芝"):
        member, move = _moving_member(w, name)
        do_approve_move(w.users["head_office_admin"], move, side="source")
        base = f"/staff/interbank-moves/{move.pk}"
        forms: list[Form] = [
            ("other_bank_admin", f"{base}/approve/", {"idempotency_key": f"a{move.pk}-{i}"}) for i in range(2)
        ] + [
            ("other_bank_admin", f"{base}/reject/", {"idempotency_key": f"r{move.pk}-{i}", "reason": "材料不全"})
            for i in range(2)
        ]
        answers = send_at_once(w, forms)
        move.refresh_from_db()
        assert statuses(answers) == [302, 409, 409, 409], (
            move.status,
            [(f[1], a.status) for f, a in zip(forms, answers, strict=True)],
        )
        approvals, rejections = audit("interbank.approve_target", move), audit("interbank.reject_target", move)
        assert approvals + rejections == 1, (approvals, rejections)
        outcomes.add(move.status)
        if move.status == "completed":
            _moved_once(move, member)
        else:
            assert move.status == "rejected" and move.new_member is None and move.target_approved_by_id is None
            assert _balances(member) == {"earned": 90, "goods": 30, "reserve": 120}
            assert not Transaction.objects.filter(memo=f"跨行转移 #{move.pk}").exists()
            assert audit("interbank.complete", move) == 0
            assert Member.objects.get(pk=member.pk).status == "active"
    assert outcomes <= {"completed", "rejected"}


@postgres_only
def test_the_source_rejecting_while_the_target_approves_decides_once(world: World) -> None:
    """Both sides at once on a move nobody approved yet: the source bank rejects while the target bank approves.
    Whichever came first, the move is never both rejected and moved, and nothing moved without both approvals."""
    w = world
    member, move = _moving_member(w, "郑秀珍")
    base = f"/staff/interbank-moves/{move.pk}"
    forms: list[Form] = [
        ("head_office_admin", f"{base}/reject/", {"idempotency_key": "r" * 32, "reason": "会员撤回申请"}),
        ("other_bank_admin", f"{base}/approve/", {"idempotency_key": "a" * 32}),
    ]
    answers = send_at_once(w, forms)
    assert all(a.status in (302, 409) for a in answers), [(a.status, a.body[:200]) for a in answers]
    move.refresh_from_db()
    assert move.status == "rejected" and audit("interbank.reject_source", move) == 1
    assert audit("interbank.approve_target", move) == (1 if answers[1].status == 302 else 0)
    assert move.new_member is None and audit("interbank.complete", move) == 0
    assert _balances(member) == {"earned": 90, "goods": 30, "reserve": 120}


# Incident steps ---------------------------------------------------------------------------------------------


def _incident(w: World, *, injury: bool = False) -> IncidentReport:
    return safety.do_report_incident(
        w.users["staff"],
        order=None,
        volunteer=w.members["volunteer"],
        recipient=w.members["recipient"],
        occurred_at=timezone.now() - dt.timedelta(hours=1),
        what_happened="扶老人起身时滑倒",
        injury=injury,
        injury_description="膝盖擦伤" if injury else "",
    )


_forms = itertools.count(1)


def _twice(w: World, incident: IncidentReport, step: str, body: dict[str, Any], *, same_form: bool) -> list[Answer]:
    """The step posted twice at once: the same form (one key) or two staff's forms (two keys). Each call's keys
    are new: a form's key is used once."""
    url = f"/safety/incidents/{incident.pk}/{step}/"
    n = next(_forms)
    if same_form:
        return send_at_once(w, [("staff", url, {**body, "idempotency_key": f"{step}-{n}"})] * 2)
    return send_at_once(
        w,
        [
            ("staff", url, {**body, "idempotency_key": f"{step}-{n}-a"}),
            ("branch_admin", url, {**body, "idempotency_key": f"{step}-{n}-b"}),
        ],
    )


@postgres_only
def test_each_incident_step_posted_twice_at_once_acts_once(world: World) -> None:
    """The same form twice at once (a double click): a follow-up, a decision, a claim, closing and reopening each
    happen once, both answers go to the incident's page."""
    w = world
    incident = _incident(w, injury=True)
    policy = safety.do_add_insurance_policy(
        None,
        w.members["volunteer"],
        insurer="人保",
        policy_number="PA-2026-013",
        starts_on=timezone.localdate() - dt.timedelta(days=30),
        ends_on=timezone.localdate() + dt.timedelta(days=300),
    )
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("follow_up", {"note": "已联系家属"}, "incident.follow_up"),
        ("decision", {"responsibility": "none", "note": "意外", "reason": ""}, "incident.decide"),
        (
            "claim",
            {"claim_status": "filed", "policy_id": str(policy.pk), "claim_number": "C-13-1", "note": ""},
            "incident.claim",
        ),
        ("claim", {"claim_status": "paid", "policy_id": "", "claim_number": "", "note": "已赔付"}, "incident.claim"),
        ("close", {"note": "处理完毕"}, "incident.close"),
        ("reopen", {"reason": "家属有新情况"}, "incident.reopen"),
    ]
    expected: dict[str, int] = {}
    for step, body, action in steps:
        answers = _twice(w, incident, step, body, same_form=True)
        assert statuses(answers) == [302, 302], (step, [(a.status, a.body[:300]) for a in answers])
        expected[action] = expected.get(action, 0) + 1
        assert audit(action, incident) == expected[action], step
    incident.refresh_from_db()
    assert (incident.status, incident.claim_status, incident.responsibility) == ("open", "paid", "none")
    assert IncidentFollowUp.objects.filter(incident=incident, kind="note").count() == 1
    assert IncidentDecision.objects.filter(incident=incident).count() == 1


@postgres_only
def test_two_staff_sending_the_same_incident_step_at_once_act_once(world: World) -> None:
    """Two staff's forms at once (two keys): a first decision, closing and reopening happen once and the other
    gets the incident's page with its refusal (409), never a 500; a claim already filed is not filed twice."""
    w = world
    incident = _incident(w, injury=True)
    policy = safety.do_add_insurance_policy(
        None,
        w.members["recipient"],
        insurer="平安",
        policy_number="PA-2026-113",
        starts_on=timezone.localdate() - dt.timedelta(days=30),
        ends_on=timezone.localdate() + dt.timedelta(days=300),
    )
    decided = _twice(
        w, incident, "decision", {"responsibility": "volunteer", "note": "", "reason": ""}, same_form=False
    )
    assert statuses(decided) == [302, 409], [(a.status, a.body[:300]) for a in decided]
    assert "已经做过责任认定" in next(a.body.decode() for a in decided if a.status == 409)
    assert IncidentDecision.objects.filter(incident=incident).count() == 1 and audit("incident.decide", incident) == 1
    # Filing the claim twice: the second sends the state it already has, which changes nothing.
    claim = {"claim_status": "filed", "policy_id": str(policy.pk), "claim_number": "C-13-2", "note": ""}
    filed = _twice(w, incident, "claim", claim, same_form=False)
    assert statuses(filed) == [302, 302], [(a.status, a.body[:300]) for a in filed]
    assert audit("incident.claim", incident) == 1
    paid = {"claim_status": "paid", "policy_id": "", "claim_number": "", "note": ""}
    assert statuses(_twice(w, incident, "claim", paid, same_form=False)) == [302, 302]
    assert audit("incident.claim", incident) == 2
    closed = _twice(w, incident, "close", {"note": ""}, same_form=False)
    assert statuses(closed) == [302, 409], [(a.status, a.body[:300]) for a in closed]
    assert "事件已结案" in next(a.body.decode() for a in closed if a.status == 409)
    assert audit("incident.close", incident) == 1
    reopened = _twice(w, incident, "reopen", {"reason": "家属有新情况"}, same_form=False)
    assert statuses(reopened) == [302, 409], [(a.status, a.body[:300]) for a in reopened]
    assert "事件还在处理中" in next(a.body.decode() for a in reopened if a.status == 409)
    assert audit("incident.reopen", incident) == 1
    # Two follow-ups from two staff are two notes: each is its own.
    noted = _twice(w, incident, "follow_up", {"note": "回访"}, same_form=False)
    assert statuses(noted) == [302, 302] and audit("incident.follow_up", incident) == 2
    incident.refresh_from_db()
    assert (incident.status, incident.claim_status, incident.responsibility) == ("open", "paid", "volunteer")
    history = IncidentFollowUp.objects.filter(incident=incident).values_list("kind", flat=True)
    assert sorted(history) == sorted(["decision", "claim", "claim", "status", "status", "note", "note"])
