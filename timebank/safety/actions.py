"""Volunteer safety and skills: every write goes through here.

Insurance policies (人身意外伤害险, single or group), certificates (资质), training and assessment
(培训/考核, a pass may grant a certificate), and incident reports with their follow-ups, insurance claim
and responsibility decision (责任认定).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.catalogue.models import CertificateKind
from timebank.lib import clock, crypto
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Certificate, InsurancePolicy, Member, MemberStatus
from timebank.orders.models import Order
from timebank.orgs.models import Org, User
from timebank.safety.models import (
    Assessment,
    ClaimStatus,
    FollowUpKind,
    IncidentDecision,
    IncidentFollowUp,
    IncidentReport,
    IncidentStatus,
    Responsibility,
    TrainingAttendance,
    TrainingKind,
    TrainingSession,
)

EARLIEST = dt.date(2000, 1, 1)
LATEST = dt.date(2100, 12, 31)
MAX_POLICY_YEARS = 5
MAX_GROUP = 500
MAX_ATTENDANCE = 500
MAX_CERTIFICATE_YEARS = 10
# Policy and claim numbers: letters, digits, '-' and '/', as insurers print them.
NUMBER_RE = re.compile(r"^[A-Z0-9][A-Z0-9\-/]{3,59}$")

CLAIM_TRANSITIONS: dict[str, set[str]] = {
    ClaimStatus.NONE: {ClaimStatus.FILED},
    ClaimStatus.FILED: {ClaimStatus.PAID, ClaimStatus.REJECTED},
    ClaimStatus.REJECTED: {ClaimStatus.FILED},  # an appeal files again
    ClaimStatus.PAID: set(),
}


def _user(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def _bank(org: Org) -> int:
    assert org.head_office_id is not None
    return org.head_office_id


def check_text(value: str, field: str, *, max_length: int, required: bool = False) -> str:
    text = value.strip()
    if "\x00" in text:
        raise Invalid(_("文字含有无效字符。"), fields={field: "invalid"})
    if required and not text:
        raise Invalid(_("请填写这一项。"), fields={field: "required"})
    if len(text) > max_length:
        raise Invalid(_("文字太长。"), fields={field: "too_long"})
    return text


def check_number(value: str, field: str) -> str:
    number = value.strip().upper()
    if not NUMBER_RE.match(number):
        raise Invalid(
            _("编号应为 4 到 60 位字母、数字、“-”或“/”。"),
            fields={field: "invalid_format"},
        )
    return number


def _check_day(day: dt.date, field: str) -> None:
    if not EARLIEST <= day <= LATEST:
        raise Invalid(_("日期不在合理范围内。"), fields={field: "out_of_range"})


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _check_period(start: dt.date, end: dt.date | None, start_field: str, end_field: str) -> None:
    _check_day(start, start_field)
    if end is not None:
        _check_day(end, end_field)
        if end < start:
            raise Invalid(_("结束日期不能早于开始日期。"), fields={end_field: "before_start"})


def _lock_members(members: list[Member]) -> None:
    # Lock in primary-key order (no deadlocks): two submissions of the same policy run one after the other.
    list(Member.objects.select_for_update().filter(pk__in=[m.pk for m in members]).order_by("pk"))


# Insurance policies ---------------------------------------------------------------------------------


def _add_policies(
    actor: User | None,
    members: list[Member],
    *,
    insurer: str,
    policy_number: str,
    starts_on: dt.date,
    ends_on: dt.date,
) -> list[InsurancePolicy]:
    insurer = " ".join(check_text(insurer, "insurer", max_length=100, required=True).split())
    if len(insurer) < 2:
        raise Invalid(_("请填写保险公司的全称。"), fields={"insurer": "too_short"})
    number = check_number(policy_number, "policy_number")
    _check_period(starts_on, ends_on, "starts_on", "ends_on")
    if ends_on > add_years(starts_on, MAX_POLICY_YEARS):
        raise Invalid(_("保险期间不能超过 5 年。"), fields={"ends_on": "too_long"})
    if not members:
        raise Invalid(_("请选择被保险的会员。"), fields={"member_ids": "required"})
    if len({m.pk for m in members}) != len(members):
        raise Invalid(_("名单里有重复的会员。"), fields={"member_ids": "duplicate"})
    bank_id = members[0].bank_id
    if any(m.bank_id != bank_id for m in members):
        raise Invalid(_("被保险的会员必须属于同一家时间银行。"), fields={"member_ids": "other_bank"})
    left = [m.pk for m in members if m.status == MemberStatus.LEFT]
    if left:
        raise Conflict(_("已退出的会员不能再登记保险。"), code="member_left", fields={"member_ids": left})
    _lock_members(members)
    same = InsurancePolicy.objects.filter(member__bank_id=bank_id, insurer=insurer, policy_number=number)
    already = sorted(same.filter(member__in=members).values_list("member_id", flat=True))
    if already:
        raise Conflict(
            _("这张保单已经为这位会员登记过。"),
            code="duplicate_policy",
            fields={"policy_number": "duplicate", "member_ids": already},
        )
    # One policy number names one policy: a group policy adds members, but its period is the policy's.
    if same.exclude(starts_on=starts_on, ends_on=ends_on).exists():
        raise Conflict(
            _("同一保险公司的这个保单号已登记了不同的保险期间。"),
            code="policy_number_conflict",
            fields={"policy_number": "duplicate"},
        )
    policies = InsurancePolicy.objects.bulk_create(
        [
            InsurancePolicy(member=m, insurer=insurer, policy_number=number, starts_on=starts_on, ends_on=ends_on)
            for m in members
        ]
    )
    return policies


@transaction.atomic
def do_add_insurance_policy(
    actor: User | None, member: Member, *, insurer: str, policy_number: str, starts_on: dt.date, ends_on: dt.date
) -> InsurancePolicy:
    [policy] = _add_policies(
        actor, [member], insurer=insurer, policy_number=policy_number, starts_on=starts_on, ends_on=ends_on
    )
    record(
        actor,
        "insurance.add",
        policy,
        bank_id=member.bank_id,
        data={
            "member": member.pk,
            "insurer": policy.insurer,
            "policy_number": policy.policy_number,
            "starts_on": starts_on.isoformat(),
            "ends_on": ends_on.isoformat(),
        },
    )
    return policy


@transaction.atomic
def do_add_group_policy(
    actor: User | None,
    members: list[Member],
    *,
    insurer: str,
    policy_number: str,
    starts_on: dt.date,
    ends_on: dt.date,
) -> list[InsurancePolicy]:
    """团体意外险: one policy covering many volunteers, one row per member, all or nothing."""
    if len(members) > MAX_GROUP:
        raise Invalid(_("一次最多登记 500 人。"), fields={"member_ids": "too_many"})
    policies = _add_policies(
        actor, members, insurer=insurer, policy_number=policy_number, starts_on=starts_on, ends_on=ends_on
    )
    first = policies[0]
    record(
        actor,
        "insurance.add_group",
        first,
        bank_id=members[0].bank_id,
        data={
            "members": [p.member_id for p in policies],
            "policies": [p.pk for p in policies],
            "insurer": first.insurer,
            "policy_number": first.policy_number,
            "starts_on": starts_on.isoformat(),
            "ends_on": ends_on.isoformat(),
        },
    )
    return policies


# Certificates ---------------------------------------------------------------------------------------


def _check_kind(kind: str, field: str) -> None:
    if kind not in CertificateKind.values:
        raise Invalid(_("未知的资质类型。"), fields={field: "invalid"})


@transaction.atomic
def do_add_certificate(
    actor: User | None,
    member: Member,
    *,
    kind: str,
    issuer: str,
    valid_from: dt.date,
    valid_until: dt.date | None,
) -> Certificate:
    _check_kind(kind, "kind")
    issuer = " ".join(check_text(issuer, "issuer", max_length=100, required=True).split())
    _check_period(valid_from, valid_until, "valid_from", "valid_until")
    if member.status == MemberStatus.LEFT:
        raise Conflict(_("已退出的会员不能再登记证书。"), code="member_left")
    _lock_members([member])
    if Certificate.objects.filter(member=member, kind=kind, issuer=issuer, valid_from=valid_from).exists():
        raise Conflict(_("这张证书已经登记过。"), code="duplicate_certificate")
    cert = Certificate.objects.create(
        member=member, kind=kind, issuer=issuer, valid_from=valid_from, valid_until=valid_until
    )
    record(
        actor,
        "certificate.add",
        cert,
        bank_id=member.bank_id,
        data={
            "member": member.pk,
            "kind": kind,
            "issuer": issuer,
            "valid_from": valid_from.isoformat(),
            "valid_until": valid_until.isoformat() if valid_until else None,
        },
    )
    return cert


# Training and assessment ----------------------------------------------------------------------------


@transaction.atomic
def do_create_training(
    actor: User | None,
    *,
    org: Org,
    title: str,
    held_on: dt.date,
    kind: str = TrainingKind.GENERAL,
    topic: str = "",
    place: str = "",
    trainer: str = "",
    grants_certificate: str | None = None,
    certificate_valid_years: int = 3,
) -> TrainingSession:
    title = check_text(title, "title", max_length=100, required=True)
    topic = check_text(topic, "topic", max_length=500)
    place = check_text(place, "place", max_length=200)
    trainer = check_text(trainer, "trainer", max_length=50)
    if kind not in TrainingKind.values:
        raise Invalid(_("未知的培训类型。"), fields={"kind": "invalid"})
    if grants_certificate:
        _check_kind(grants_certificate, "grants_certificate")
    if not 1 <= certificate_valid_years <= MAX_CERTIFICATE_YEARS:
        raise Invalid(_("证书有效期应为 1 到 10 年。"), fields={"certificate_valid_years": "out_of_range"})
    _check_day(held_on, "held_on")
    if held_on > clock.localdate() + dt.timedelta(days=366):
        raise Invalid(_("培训日期应在一年之内。"), fields={"held_on": "out_of_range"})
    session = TrainingSession.objects.create(
        bank_id=_bank(org),
        org=org,
        title=title,
        topic=topic,
        held_on=held_on,
        place=place,
        trainer=trainer,
        kind=kind,
        grants_certificate=grants_certificate or "",
        certificate_valid_years=certificate_valid_years,
        created_by=_user(actor),
    )
    record(
        actor,
        "training.create",
        session,
        bank_id=session.bank_id,
        data={"org": org.pk, "title": title, "held_on": held_on.isoformat(), "grants": session.grants_certificate},
    )
    return session


@dataclass(frozen=True)
class AttendanceInput:
    member: Member
    attended: bool
    passed: bool | None = None  # None: not assessed
    score: Decimal | None = None
    note: str = ""


def _check_attendance(session: TrainingSession, rows: list[AttendanceInput]) -> None:
    if not rows:
        raise Invalid(_("请至少登记一位会员。"), fields={"records": "required"})
    if len(rows) > MAX_ATTENDANCE:
        raise Invalid(_("一次最多登记 500 人。"), fields={"records": "too_many"})
    seen: set[int] = set()
    for i, row in enumerate(rows):
        where = f"records.{i}"
        if row.member.pk in seen:
            raise Invalid(_("名单里有重复的会员。"), fields={f"{where}.member_id": "duplicate"})
        seen.add(row.member.pk)
        if row.member.bank_id != session.bank_id:
            raise Invalid(_("这位会员属于另一家时间银行。"), fields={f"{where}.member_id": "other_bank"})
        if not row.attended and (row.passed is not None or row.score is not None):
            raise Invalid(_("没有参加培训的人不能有考核结果。"), fields={f"{where}.passed": "not_attended"})
        if row.score is not None:
            if row.passed is None:
                raise Invalid(_("有分数就要写明考核是否通过。"), fields={f"{where}.passed": "required"})
            if not (Decimal(0) <= row.score <= Decimal(100)) or row.score != row.score.quantize(Decimal("0.1")):
                raise Invalid(_("分数应在 0 到 100 之间，最多一位小数。"), fields={f"{where}.score": "out_of_range"})
        check_text(row.note, f"{where}.note", max_length=500)


@transaction.atomic
def do_record_attendance(
    actor: User | None, session: TrainingSession, rows: list[AttendanceInput]
) -> tuple[list[TrainingAttendance], list[Certificate]]:
    """Record attendance and assessment results, all or nothing. A pass at a session that grants a
    certificate creates it (once); changing a pass to anything else withdraws the certificate it granted.
    Recording the same results again changes nothing."""
    _check_attendance(session, rows)
    # of=("self",): the session only, not its org (the members are locked next, in order).
    session = TrainingSession.objects.select_for_update(of=("self",)).select_related("org").get(pk=session.pk)
    if session.held_on > clock.localdate():
        raise Conflict(_("培训还没有举行，不能登记出勤和考核。"), code="training_not_held")
    _lock_members([r.member for r in rows])
    existing = {a.member_id: a for a in TrainingAttendance.objects.filter(session=session)}
    if len(existing.keys() | {r.member.pk for r in rows}) > MAX_ATTENDANCE:
        raise Invalid(_("一次培训最多登记 500 人。"), fields={"records": "too_many"})
    granted: list[Certificate] = []
    withdrawn: list[int] = []
    saved: list[TrainingAttendance] = []
    for row in rows:
        assessment = Assessment.NONE if row.passed is None else (Assessment.PASSED if row.passed else Assessment.FAILED)
        att = existing.get(row.member.pk) or TrainingAttendance(session=session, member=row.member)
        att.attended = row.attended
        att.assessment = assessment
        att.score = row.score
        att.note = row.note.strip()
        att.recorded_by = _user(actor)
        if assessment == Assessment.PASSED and session.grants_certificate and att.certificate_id is None:
            att.certificate = Certificate.objects.create(
                member=row.member,
                kind=session.grants_certificate,
                issuer=session.org.name[:100],
                valid_from=session.held_on,
                valid_until=add_years(session.held_on, session.certificate_valid_years) - dt.timedelta(days=1),
            )
            granted.append(att.certificate)
        elif assessment != Assessment.PASSED and att.certificate_id is not None:
            # A corrected result: the certificate it granted no longer stands (matching must not use it).
            withdrawn.append(att.certificate_id)
            Certificate.objects.filter(pk=att.certificate_id).delete()
            att.certificate = None
        if att.pk is None:
            att.save(force_insert=True)
        else:
            att.save(
                update_fields=["attended", "assessment", "score", "note", "certificate", "recorded_by", "updated_at"]
            )
        saved.append(att)
    record(
        actor,
        "training.attendance",
        session,
        bank_id=session.bank_id,
        data={
            "records": [
                {"member": a.member_id, "attended": a.attended, "assessment": a.assessment, "score": str(a.score)}
                for a in saved
            ],
            "certificates_granted": [c.pk for c in granted],
            "certificates_withdrawn": withdrawn,
        },
    )
    return saved, granted


# Incidents ------------------------------------------------------------------------------------------


def _lock_incident(incident: IncidentReport) -> IncidentReport:
    locked = IncidentReport.objects.select_for_update().get(pk=incident.pk)
    if locked.status != IncidentStatus.OPEN:
        raise Conflict(_("事件已结案；如需继续处理，请先重新打开。"), code="incident_closed")
    return locked


def _history(actor: User | None, incident: IncidentReport, kind: str, note: str) -> IncidentFollowUp:
    return IncidentFollowUp.objects.create(incident=incident, kind=kind, note=note[:1000], created_by=_user(actor))


@transaction.atomic
def do_report_incident(
    actor: User | None,
    *,
    order: Order | None,
    volunteer: Member | None,
    recipient: Member | None,
    occurred_at: dt.datetime,
    what_happened: str,
    place: str = "",
    injury: bool = False,
    injury_description: str = "",
) -> IncidentReport:
    what_happened = check_text(what_happened, "what_happened", max_length=2000, required=True)
    place = check_text(place, "place", max_length=200)
    injury_description = check_text(injury_description, "injury_description", max_length=1000)
    if injury and not injury_description:
        raise Invalid(_("有人受伤时请写明伤情。"), fields={"injury_description": "required"})
    if not injury and injury_description:
        raise Invalid(_("没有受伤时不要填写伤情。"), fields={"injury_description": "no_injury"})
    if timezone.is_naive(occurred_at):
        raise Invalid(_("时间必须带时区。"), fields={"occurred_at": "naive"})
    now = clock.now()
    if not now - dt.timedelta(days=366) <= occurred_at <= now + dt.timedelta(minutes=10):
        raise Invalid(_("发生时间应在过去一年之内，且不能晚于现在。"), fields={"occurred_at": "out_of_range"})
    if order is not None:
        if volunteer is not None and volunteer.pk != order.volunteer_id:
            raise Invalid(_("志愿者与订单不符。"), fields={"volunteer_id": "not_on_order"})
        if recipient is not None and recipient.pk != order.recipient_id:
            raise Invalid(_("服务对象与订单不符。"), fields={"recipient_id": "not_on_order"})
        if order.volunteer_id is None:
            raise Conflict(_("这个订单还没有派给志愿者，没有发生服务。"), code="order_not_served")
        order = (
            Order.objects.select_for_update(of=("self",))
            .select_related("org", "volunteer", "recipient")
            .get(pk=order.pk)
        )
        volunteer, recipient, org = order.volunteer, order.recipient, order.org
    else:
        if volunteer is None and recipient is None:
            raise Invalid(_("请写明涉及的志愿者或服务对象。"), fields={"volunteer_id": "required"})
        people = [m for m in (recipient, volunteer) if m is not None]
        if len(people) == 2 and people[0].pk == people[1].pk:
            raise Invalid(_("志愿者和服务对象不能是同一个人。"), fields={"volunteer_id": "same_person"})
        if len(people) == 2 and people[0].bank_id != people[1].bank_id:
            raise Invalid(_("涉及的会员属于不同的时间银行。"), fields={"volunteer_id": "other_bank"})
        org = people[0].home_org
        _lock_members(people)
    # A double submit (the same report twice) is refused rather than filed twice.
    if IncidentReport.objects.filter(
        order=order,
        volunteer=volunteer,
        recipient=recipient,
        occurred_at=occurred_at,
        what_happened=what_happened,
        status=IncidentStatus.OPEN,
    ).exists():
        raise Conflict(_("这份事件报告已经提交过。"), code="duplicate_report")
    incident = IncidentReport.objects.create(
        bank_id=_bank(org),
        org=org,
        order=order,
        volunteer=volunteer,
        recipient=recipient,
        occurred_at=occurred_at,
        place=place,
        what_happened=what_happened,
        injury=injury,
        injury_description_encrypted=crypto.encrypt(injury_description) if injury_description else "",
        reported_by=_user(actor),
    )
    # The audit chain is not encrypted: no health details in it.
    record(
        actor,
        "incident.report",
        incident,
        bank_id=incident.bank_id,
        data={
            "order": order.pk if order else None,
            "volunteer": volunteer.pk if volunteer else None,
            "recipient": recipient.pk if recipient else None,
            "injury": injury,
        },
    )
    return incident


@transaction.atomic
def do_view_incident_injury(actor: User | None, incident: IncidentReport) -> str:
    """Injury details are shown only through here, and every showing is on the audit chain."""
    record(actor, "incident.view", incident, bank_id=incident.bank_id, data={"injury_details": True})
    return incident.injury_description


@transaction.atomic
def do_add_incident_follow_up(actor: User | None, incident: IncidentReport, note: str) -> IncidentFollowUp:
    note = check_text(note, "note", max_length=1000, required=True)
    incident = _lock_incident(incident)
    follow_up = _history(actor, incident, FollowUpKind.NOTE, note)
    incident.save(update_fields=["updated_at"])
    record(actor, "incident.follow_up", incident, bank_id=incident.bank_id, data={"follow_up": follow_up.pk})
    return follow_up


@transaction.atomic
def do_decide_responsibility(
    actor: User | None, incident: IncidentReport, *, responsibility: str, note: str = "", reason: str = ""
) -> IncidentReport:
    """责任认定. Once decided it is not silently changed: a change is a new decision that gives its
    reason, and every decision stays in the history."""
    if responsibility not in Responsibility.values:
        raise Invalid(_("未知的责任认定结果。"), fields={"responsibility": "invalid"})
    note = check_text(note, "note", max_length=500)
    reason = check_text(reason, "reason", max_length=500)
    incident = _lock_incident(incident)
    previous = incident.responsibility
    if previous:
        if not reason:
            raise Conflict(
                _("已经做过责任认定；如需更改，请写明更改理由。"), code="already_decided", fields={"reason": "required"}
            )
        if previous == responsibility and incident.decision_note == note:
            raise Conflict(_("新的认定与现有认定相同。"), code="same_decision")
    now = clock.now()
    decision = IncidentDecision.objects.create(
        incident=incident,
        responsibility=responsibility,
        note=note,
        change_reason=reason,
        decided_by=_user(actor),
        decided_at=now,
    )
    incident.responsibility = responsibility
    incident.decision_note = note
    incident.decided_by = _user(actor)
    incident.decided_at = now
    incident.save(update_fields=["responsibility", "decision_note", "decided_by", "decided_at", "updated_at"])
    label = str(Responsibility(responsibility).label)
    _history(actor, incident, FollowUpKind.DECISION, f"{label}：{reason}" if reason else label)
    record(
        actor,
        "incident.decide",
        incident,
        bank_id=incident.bank_id,
        data={
            "decision": decision.pk,
            "responsibility": responsibility,
            "previous": previous or None,
            "reason": reason,
        },
    )
    return incident


@transaction.atomic
def do_update_claim(
    actor: User | None,
    incident: IncidentReport,
    *,
    claim_status: str,
    policy: InsurancePolicy | None = None,
    claim_number: str | None = None,
    note: str = "",
) -> IncidentReport:
    """The insurance claim (理赔) of an incident: filed, then paid or rejected; a rejected claim may be
    filed again. Sending the current state again changes nothing."""
    if claim_status not in ClaimStatus.values or claim_status == ClaimStatus.NONE:
        raise Invalid(_("理赔状态只能是 filed、paid 或 rejected。"), fields={"claim_status": "invalid"})
    number = check_number(claim_number, "claim_number") if claim_number else None
    note = check_text(note, "note", max_length=500)
    incident = _lock_incident(incident)
    current = incident.claim_status
    if (
        claim_status == current
        and (policy is None or policy.pk == incident.claim_policy_id)
        and (number is None or number == incident.claim_number)
    ):
        return incident
    if claim_status not in CLAIM_TRANSITIONS[current]:
        raise Conflict(
            _("理赔当前状态下不能这样变更。"),
            code="invalid_claim_transition",
            fields={"claim_status": current},
        )
    fields = ["claim_status", "updated_at"]
    if claim_status == ClaimStatus.FILED:
        if policy is None:
            raise Invalid(_("报案要写明保单。"), fields={"policy_id": "required"})
        if number is None:
            raise Invalid(_("报案要写明理赔编号。"), fields={"claim_number": "required"})
        if policy.member_id not in (incident.volunteer_id, incident.recipient_id):
            raise Invalid(_("这张保单不属于事件涉及的会员。"), fields={"policy_id": "not_a_party"})
        day = timezone.localtime(incident.occurred_at).date()
        if not policy.in_force_on(day):
            raise Invalid(_("事件发生时这张保单不在保险期间内。"), fields={"policy_id": "not_in_force"})
        incident.claim_policy = policy
        incident.claim_number = number
        fields += ["claim_policy", "claim_number"]
    elif (policy is not None and policy.pk != incident.claim_policy_id) or (
        number is not None and number != incident.claim_number
    ):
        raise Invalid(_("报案后保单和理赔编号不能更改。"), fields={"claim_number": "fixed_after_filing"})
    incident.claim_status = claim_status
    incident.save(update_fields=fields)
    label = str(ClaimStatus(claim_status).label)
    _history(actor, incident, FollowUpKind.CLAIM, f"{label} {incident.claim_number}" + (f"：{note}" if note else ""))
    record(
        actor,
        "incident.claim",
        incident,
        bank_id=incident.bank_id,
        data={
            "from": current,
            "to": claim_status,
            "policy": incident.claim_policy_id,
            "claim_number": incident.claim_number,
        },
    )
    return incident


@transaction.atomic
def do_close_incident(actor: User | None, incident: IncidentReport, note: str = "") -> IncidentReport:
    note = check_text(note, "note", max_length=500)
    incident = _lock_incident(incident)
    if incident.injury and not incident.responsibility:
        raise Conflict(_("有人受伤的事件要先做责任认定才能结案。"), code="decision_required")
    if incident.claim_status == ClaimStatus.FILED:
        raise Conflict(_("理赔还在处理中，暂不能结案。"), code="claim_pending")
    incident.status = IncidentStatus.CLOSED
    incident.closed_at = clock.now()
    incident.save(update_fields=["status", "closed_at", "updated_at"])
    _history(actor, incident, FollowUpKind.STATUS, f"{IncidentStatus.CLOSED.label}" + (f"：{note}" if note else ""))
    record(actor, "incident.close", incident, bank_id=incident.bank_id, data={"note": note[:200]})
    return incident


@transaction.atomic
def do_reopen_incident(actor: User | None, incident: IncidentReport, reason: str) -> IncidentReport:
    reason = check_text(reason, "reason", max_length=500, required=True)
    incident = IncidentReport.objects.select_for_update().get(pk=incident.pk)
    if incident.status != IncidentStatus.CLOSED:
        raise Conflict(_("事件还在处理中。"), code="incident_open")
    incident.status = IncidentStatus.OPEN
    incident.closed_at = None
    incident.save(update_fields=["status", "closed_at", "updated_at"])
    _history(actor, incident, FollowUpKind.STATUS, f"{IncidentStatus.OPEN.label}：{reason}")
    record(actor, "incident.reopen", incident, bank_id=incident.bank_id, data={"reason": reason[:200]})
    return incident
