"""Evaluation, complaints, penalties and awards: every write goes through here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from timebank.approvals.actions import AWARD_BONUS_KEY, needs_approval, open_approval
from timebank.approvals.models import Approval, ApprovalKind, ApprovalState
from timebank.audit.actions import record
from timebank.evaluation.models import (
    Assessment,
    AssessmentScore,
    Award,
    AwardBasis,
    AwardKind,
    AwardStatus,
    AwardSubject,
    Complaint,
    ComplaintFollowUp,
    ComplaintStatus,
    EvaluationRules,
    Indicator,
    Penalty,
    PenaltyKind,
    SelfAssessment,
)
from timebank.evaluation.notifications import after_award_confirmed, after_penalty
from timebank.ledger.actions import do_deposit, do_reversal
from timebank.ledger.models import Leg, Transaction, TransactionKind
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Member, MemberStatus
from timebank.ops.idempotency import fingerprint
from timebank.orders.models import Order
from timebank.orgs.access import staff_scope
from timebank.orgs.models import Org, OrgKind, User

MIN_YEAR = 2000
MAX_INDICATORS = 30
MAX_AWARD_KINDS = 30
MAX_WINNERS = 200
MAX_BONUS_MINUTES = 100 * 60
MAX_PENALTY_DAYS = 3 * 366
HUNDRED = Decimal(100)
GRASSROOTS = (OrgKind.SUB_BRANCH, OrgKind.OUTLET)

DEFAULT_INDICATORS = (
    ("operations", _("运行管理"), 40),
    ("service_quality", _("服务品质"), 40),
    ("time_recognition", _("时间认定"), 20),
)
# (code, name, subject, basis, winners, bonus minutes, active)
DEFAULT_AWARD_KINDS = (
    ("most_beautiful_volunteer", _("最美志愿者"), AwardSubject.VOLUNTEER, AwardBasis.COMBINED_SCORE, 10, 600, True),
    ("outstanding_volunteer", _("优秀志愿者"), AwardSubject.VOLUNTEER, AwardBasis.CREDITED_HOURS, 20, 300, True),
    ("outstanding_grassroots_org", _("优秀基层组织奖"), AwardSubject.ORG, AwardBasis.COMBINED_SCORE, 5, 0, True),
    ("welfare_org_participation", _("公益组织参与奖"), AwardSubject.ORG, AwardBasis.CREDITED_HOURS, 5, 0, True),
    ("outstanding_party_member", _("优秀党员志愿者"), AwardSubject.VOLUNTEER, AwardBasis.COMBINED_SCORE, 10, 0, False),
    (
        "outstanding_community_worker",
        _("优秀社区工作者"),
        AwardSubject.VOLUNTEER,
        AwardBasis.CREDITED_HOURS,
        10,
        0,
        False,
    ),
    ("caring_company", _("爱心企业"), AwardSubject.ORG, AwardBasis.CREDITED_HOURS, 5, 0, False),
)


def _user(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def _bank_id(org: Org) -> int:
    assert org.head_office_id is not None
    return org.head_office_id


def check_text(value: str, field: str, *, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if "\x00" in text:
        raise Invalid(_("文字含有无效字符。"), fields={field: "invalid"})
    if required and not text:
        raise Invalid(_("请填写这一项。"), fields={field: "required"})
    if len(text) > max_length:
        raise Invalid(_("文字太长。"), fields={field: "too_long"})
    return text


def check_year(year: object, field: str = "year") -> int:
    if isinstance(year, bool) or not isinstance(year, int) or not MIN_YEAR <= year <= clock.localdate().year:
        raise Invalid(_("年份应在 2000 年到今年之间。"), fields={field: "out_of_range"})
    return year


def check_score(value: object, field: str, *, low: Decimal = Decimal(0), high: Decimal = HUNDRED) -> Decimal:
    try:
        score = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise Invalid(_("分数必须是数字。"), fields={field: "not_number"}) from None
    if not score.is_finite() or not low <= score <= high:
        raise Invalid(_("分数超出范围。"), fields={field: "out_of_range"})
    if score != score.quantize(Decimal("0.1")):
        raise Invalid(_("分数最多一位小数。"), fields={field: "too_precise"})
    return score


def check_int(value: object, field: str, *, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(_("数值超出范围。"), fields={field: "out_of_range"})
    return value


# Rules and defaults -------------------------------------------------------------------------------------------


def _rules_row(bank: Org) -> EvaluationRules:
    rules, _created = EvaluationRules.objects.select_for_update().get_or_create(head_office=bank)
    return rules


@transaction.atomic
def do_seed_defaults(actor: User | None, bank: Org) -> tuple[int, int]:
    """The seeds' indicators and award kinds, for a bank that has none yet. Returns how many were added."""
    _rules_row(bank)
    indicators = kinds = 0
    if not Indicator.objects.filter(bank=bank).exists():
        for position, (code, name, weight) in enumerate(DEFAULT_INDICATORS):
            Indicator.objects.create(bank=bank, code=code, name=str(name), weight=weight, position=position)
            indicators += 1
    if not AwardKind.objects.filter(bank=bank).exists():
        for position, (code, name, subject, basis, winners, bonus, active) in enumerate(DEFAULT_AWARD_KINDS):
            AwardKind.objects.create(
                bank=bank,
                code=code,
                name=str(name),
                subject=subject,
                basis=basis,
                winners=winners,
                bonus_minutes=bonus,
                active=active,
                position=position,
            )
            kinds += 1
    if indicators or kinds:
        record(
            actor, "evaluation.defaults", bank, bank_id=bank.pk, data={"indicators": indicators, "award_kinds": kinds}
        )
    return indicators, kinds


RULE_FIELDS = (
    "third_party_weight",
    "self_weight",
    "satisfaction_weight",
    "complaint_deduction",
    "star_hold_rating_below",
    "star_min_reviews",
    "star_hold_complaints",
)


@transaction.atomic
def do_update_rules(actor: User | None, bank: Org, changes: dict[str, Any]) -> EvaluationRules:
    rules = _rules_row(bank)
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in RULE_FIELDS:
            raise Invalid(_("没有这项规则。"), fields={name: "unknown"})
        if name.endswith("_weight"):
            clean[name] = check_int(value, name, low=0, high=100)
        elif name == "complaint_deduction":
            clean[name] = check_score(value, name)
        elif name == "star_hold_rating_below":
            rating = check_score(value, name, low=Decimal(0), high=Decimal(5))
            clean[name] = rating
        else:
            clean[name] = check_int(value, name, low=0, high=100)
    merged = {f: clean.get(f, getattr(rules, f)) for f in ("third_party_weight", "self_weight", "satisfaction_weight")}
    if sum(merged.values()) == 0:
        raise Invalid(_("三项权重不能都为零。"), code="weights_zero", fields={"third_party_weight": "zero"})
    for name, value in clean.items():
        setattr(rules, name, value)
    rules.save()
    record(actor, "evaluation.rules.update", rules, bank_id=bank.pk, data={k: str(v) for k, v in clean.items()})
    return rules


# Indicators -----------------------------------------------------------------------------------------------------


@dataclass
class IndicatorInput:
    code: str | None = None
    name: str | None = None
    description: str | None = None
    weight: int | None = None
    active: bool | None = None
    position: int | None = None


def _apply_indicator(indicator: Indicator, data: IndicatorInput) -> None:
    if data.name is not None:
        indicator.name = check_text(data.name, "name", max_length=50, required=True)
    if data.description is not None:
        indicator.description = check_text(data.description, "description", max_length=500)
    if data.weight is not None:
        indicator.weight = check_int(data.weight, "weight", low=0, high=100)
    if data.active is not None:
        indicator.active = bool(data.active)
    if data.position is not None:
        indicator.position = check_int(data.position, "position", low=0, high=1000)


@transaction.atomic
def do_create_indicator(actor: User | None, bank: Org, data: IndicatorInput) -> Indicator:
    code = check_text(data.code or "", "code", max_length=40, required=True)
    if not code.replace("_", "").isalnum() or not code.isascii():
        raise Invalid(_("代码只能用英文字母、数字和下划线。"), fields={"code": "invalid"})
    if data.name is None:
        raise Invalid(_("请填写这一项。"), fields={"name": "required"})
    _rules_row(bank)  # serialises indicator writes per bank
    if Indicator.objects.filter(bank=bank).count() >= MAX_INDICATORS:
        raise Conflict(_("指标太多了。"), code="too_many_indicators")
    if Indicator.objects.filter(bank=bank, code=code).exists():
        raise Conflict(_("这个代码已经有指标在用。"), code="duplicate_code", fields={"code": code})
    indicator = Indicator(bank=bank, code=code)
    _apply_indicator(indicator, data)
    indicator.save()
    record(
        actor,
        "evaluation.indicator.create",
        indicator,
        bank_id=bank.pk,
        data={"code": code, "weight": indicator.weight},
    )
    return indicator


@transaction.atomic
def do_update_indicator(actor: User | None, indicator: Indicator, data: IndicatorInput) -> Indicator:
    indicator = Indicator.objects.select_for_update().get(pk=indicator.pk)
    _apply_indicator(indicator, data)
    indicator.save()
    record(
        actor,
        "evaluation.indicator.update",
        indicator,
        bank_id=indicator.bank_id,
        data={"weight": indicator.weight, "active": indicator.active},
    )
    return indicator


# Assessments ------------------------------------------------------------------------------------------------------


@transaction.atomic
def do_record_assessment(actor: User, org: Org, *, year: int, scores: dict[int, Decimal], note: str = "") -> Assessment:
    """A third-party assessor's scores for every active indicator of the bank. Once per assessor, org and year."""
    bank_id = _bank_id(org)
    check_year(year)
    note = check_text(note, "note", max_length=1000)
    indicators = {i.pk: i for i in Indicator.objects.filter(bank_id=bank_id, active=True)}
    if not indicators:
        raise Conflict(_("总行还没有设置评价指标。"), code="no_indicators")
    unknown = sorted(set(scores) - set(indicators))
    if unknown:
        raise Invalid(_("指标不属于这家时间银行或已停用。"), fields={"scores": {"unknown": unknown}})
    missing = sorted(set(indicators) - set(scores))
    if missing:
        raise Invalid(_("每个指标都要打分。"), code="scores_missing", fields={"scores": {"missing": missing}})
    clean = {iid: check_score(value, f"scores.{iid}") for iid, value in scores.items()}
    weights = sum(indicators[iid].weight for iid in clean)
    if weights == 0:
        raise Conflict(_("指标权重都为零，无法计分。"), code="weights_zero")
    total = (sum((clean[iid] * indicators[iid].weight for iid in clean), Decimal(0)) / weights).quantize(
        Decimal("0.01")
    )
    if Assessment.objects.filter(org=org, year=year, assessor=actor).exists():
        raise Conflict(_("您今年已经评过这个机构了。"), code="already_assessed")
    try:
        with transaction.atomic():
            assessment = Assessment.objects.create(
                bank_id=bank_id, org=org, year=year, assessor=actor, total=total, note=note
            )
    except IntegrityError:
        raise Conflict(_("您今年已经评过这个机构了。"), code="already_assessed") from None
    AssessmentScore.objects.bulk_create(
        [
            AssessmentScore(assessment=assessment, indicator_id=iid, score=score, weight=indicators[iid].weight)
            for iid, score in sorted(clean.items())
        ]
    )
    record(
        actor,
        "evaluation.assessment.create",
        assessment,
        bank_id=bank_id,
        data={"org": org.pk, "year": year, "total": str(total)},
    )
    return assessment


@transaction.atomic
def do_self_assess(
    actor: User | None,
    *,
    year: int,
    score: object,
    summary: str = "",
    member: Member | None = None,
    org: Org | None = None,
) -> SelfAssessment:
    """Record (or correct) the year's self-assessment of a volunteer or an org."""
    check_year(year)
    value = check_score(score, "score")
    summary = check_text(summary, "summary", max_length=2000)
    if (member is None) == (org is None):
        raise Invalid(_("自评对象只能是志愿者或机构之一。"), fields={"member_id": "invalid"})
    if member is not None:
        if not member.is_volunteer:
            raise Conflict(_("只有志愿者可以填写自评。"), code="not_a_volunteer")
        row, created = SelfAssessment.objects.select_for_update().get_or_create(
            member=member, year=year, defaults={"bank_id": member.bank_id, "score": value}
        )
        bank_id = member.bank_id
    else:
        assert org is not None
        bank_id = _bank_id(org)
        row, created = SelfAssessment.objects.select_for_update().get_or_create(
            org=org, year=year, defaults={"bank_id": bank_id, "score": value}
        )
    row.score = value
    row.summary = summary
    row.recorded_by = _user(actor)
    row.save()
    record(
        actor,
        "evaluation.self_assessment.save",
        row,
        bank_id=bank_id,
        data={
            "member": member.pk if member else None,
            "org": org.pk if org else None,
            "year": year,
            "score": str(value),
            "created": created,
        },
    )
    return row


# Complaints -------------------------------------------------------------------------------------------------------


@transaction.atomic
def do_file_complaint(
    actor: User | None,
    *,
    org: Org | None,
    volunteer: Member | None = None,
    order: Order | None = None,
    complainant: str = "",
    text: str,
) -> Complaint:
    """Record a complaint about an org or a volunteer (an order's volunteer when only the order is named).

    It is filed under the org complained about (the volunteer's home org for a volunteer) and, as `filed_in`,
    the org of the staff login that took it: both subtrees follow it up (evaluation.access.visible_complaints)."""
    text = check_text(text, "text", max_length=2000, required=True)
    complainant = check_text(complainant, "complainant", max_length=50)
    if order is not None and volunteer is None:
        volunteer = order.volunteer
    if volunteer is not None and order is not None and order.volunteer_id != volunteer.pk:
        raise Invalid(_("这个订单不是该志愿者服务的。"), fields={"order_id": "other_volunteer"})
    if org is None:
        if volunteer is not None:
            org = volunteer.home_org
        elif order is not None:
            org = order.org
        else:
            raise Invalid(_("请说明投诉的是哪个机构或哪位志愿者。"), fields={"org_id": "required"})
    bank_id = _bank_id(org)
    if volunteer is not None and volunteer.bank_id != bank_id:
        raise Invalid(_("志愿者属于另一家时间银行。"), fields={"volunteer_id": "other_bank"})
    if order is not None and order.bank_id != bank_id:
        raise Invalid(_("订单属于另一家时间银行。"), fields={"order_id": "other_bank"})
    scope = staff_scope(actor) if actor is not None and actor.pk else None
    filed_in = scope if scope is not None and scope.head_office_id == bank_id else None
    complaint = Complaint.objects.create(
        bank_id=bank_id,
        org=org,
        volunteer=volunteer,
        order=order,
        complainant=complainant,
        text=text,
        received_by=_user(actor),
        filed_in=filed_in,
    )
    record(
        actor,
        "evaluation.complaint.file",
        complaint,
        bank_id=bank_id,
        data={
            "org": org.pk,
            "volunteer": volunteer.pk if volunteer else None,
            "order": order.pk if order else None,
            "filed_in": filed_in.pk if filed_in else None,
        },
    )
    return complaint


@transaction.atomic
def do_follow_up_complaint(actor: User | None, complaint: Complaint, note: str) -> ComplaintFollowUp:
    note = check_text(note, "note", max_length=1000, required=True)
    complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
    follow_up = ComplaintFollowUp.objects.create(complaint=complaint, note=note, actor=_user(actor))
    record(
        actor, "evaluation.complaint.follow_up", complaint, bank_id=complaint.bank_id, data={"follow_up": follow_up.pk}
    )
    return follow_up


@transaction.atomic
def do_decide_complaint(actor: User | None, complaint: Complaint, *, upheld: bool, note: str) -> Complaint:
    """投诉成立 / 不成立. Decided once; an upheld complaint lowers the combined score and may hold back a star."""
    note = check_text(note, "note", max_length=1000, required=True)
    complaint = Complaint.objects.select_for_update().get(pk=complaint.pk)
    if complaint.status != ComplaintStatus.OPEN:
        raise Conflict(_("这条投诉已经有结论了。"), code="complaint_decided", fields={"status": complaint.status})
    complaint.status = ComplaintStatus.UPHELD if upheld else ComplaintStatus.DISMISSED
    complaint.decision_note = note
    complaint.decided_by = _user(actor)
    complaint.decided_at = clock.now()
    complaint.save(update_fields=["status", "decision_note", "decided_by", "decided_at"])
    record(
        actor, "evaluation.complaint.decide", complaint, bank_id=complaint.bank_id, data={"status": complaint.status}
    )
    return complaint


# Penalties ----------------------------------------------------------------------------------------------------------


@transaction.atomic
def do_impose_penalty(
    actor: User | None,
    member: Member,
    *,
    kind: str,
    reason: str,
    complaint: Complaint | None = None,
    starts_on: dt.date | None = None,
    ends_on: dt.date | None = None,
) -> Penalty:
    """A warning, a suspension from dispatch or a removal, after an upheld complaint or misconduct.
    Balances are never touched."""
    if kind not in PenaltyKind.values:
        raise Invalid(_("处理方式只能是警告、暂停派单或清退。"), fields={"kind": "invalid"})
    reason = check_text(reason, "reason", max_length=1000, required=True)
    today = clock.localdate()
    starts_on = starts_on or today
    if abs((starts_on - today).days) > MAX_PENALTY_DAYS:
        raise Invalid(_("日期不合理。"), fields={"starts_on": "out_of_range"})
    if kind != PenaltyKind.SUSPENSION:
        ends_on = None  # a warning has no period; a removal lasts until lifted
    elif ends_on is not None and (ends_on < starts_on or (ends_on - starts_on).days > MAX_PENALTY_DAYS):
        raise Invalid(_("结束日期应在开始日期之后，且不超过三年。"), fields={"ends_on": "out_of_range"})
    if not member.is_volunteer:
        raise Conflict(_("这位会员不是志愿者。"), code="not_a_volunteer")
    if complaint is not None:
        complaint = Complaint.objects.get(pk=complaint.pk)  # its latest decision, not the caller's copy
        if complaint.bank_id != member.bank_id:
            raise Invalid(_("投诉属于另一家时间银行。"), fields={"complaint_id": "other_bank"})
        if complaint.status != ComplaintStatus.UPHELD:
            raise Conflict(_("只有成立的投诉才能作为处理依据。"), code="complaint_not_upheld")
        if complaint.volunteer_id is not None and complaint.volunteer_id != member.pk:
            raise Invalid(_("这条投诉不是针对该志愿者的。"), fields={"complaint_id": "other_volunteer"})
    penalty = Penalty.objects.create(
        bank_id=member.bank_id,
        member=member,
        kind=kind,
        reason=reason,
        complaint=complaint,
        starts_on=starts_on,
        ends_on=ends_on,
        created_by=_user(actor),
    )
    record(
        actor,
        "evaluation.penalty.impose",
        penalty,
        bank_id=member.bank_id,
        data={"member": member.pk, "kind": kind, "complaint": complaint.pk if complaint else None},
    )
    after_penalty("penalty.imposed", penalty)
    return penalty


@transaction.atomic
def do_lift_penalty(actor: User | None, penalty: Penalty, *, reason: str) -> Penalty:
    reason = check_text(reason, "reason", max_length=500, required=True)
    penalty = Penalty.objects.select_for_update().get(pk=penalty.pk)
    if penalty.kind == PenaltyKind.WARNING:
        raise Conflict(_("警告不需要解除。"), code="not_liftable")
    if penalty.lifted_at is not None:
        raise Conflict(_("这项处理已经解除了。"), code="already_lifted")
    penalty.lifted_at = clock.now()
    penalty.lifted_by = _user(actor)
    penalty.lift_reason = reason
    penalty.save(update_fields=["lifted_at", "lifted_by", "lift_reason"])
    record(actor, "evaluation.penalty.lift", penalty, bank_id=penalty.bank_id, data={"member": penalty.member_id})
    after_penalty("penalty.lifted", penalty)
    return penalty


@transaction.atomic
def do_correct_credit(actor: User | None, penalty: Penalty, original: Transaction, *, reason: str) -> Transaction:
    """When misconduct means a credit was wrongly given: reverse that transaction (the ledger's reversal,
    with its reason). Nothing is deleted; one correction per penalty."""
    reason = check_text(reason, "reason", max_length=500, required=True)
    penalty = Penalty.objects.select_for_update().get(pk=penalty.pk)
    if penalty.correction_id is not None:
        raise Conflict(_("这项处理已经做过冲正了。"), code="already_corrected")
    if original.bank_id != penalty.bank_id or original.kind not in (
        TransactionKind.DEPOSIT,
        TransactionKind.SERVICE_RECORD,
    ):
        raise Invalid(_("只能冲正该志愿者获得的存入。"), fields={"transaction_id": "invalid"})
    if not Leg.objects.filter(transaction=original, account__member_id=penalty.member_id, minutes__gt=0).exists():
        raise Invalid(_("只能冲正该志愿者获得的存入。"), fields={"transaction_id": "other_member"})
    tx, _replayed = do_reversal(
        actor, original=original, reason=reason, idempotency_key=f"penalty-correction-{penalty.pk}"
    )
    penalty.correction = tx
    penalty.save(update_fields=["correction"])
    record(
        actor,
        "evaluation.penalty.correct",
        penalty,
        bank_id=penalty.bank_id,
        data={"reverses": original.pk, "transaction": tx.pk, "reason": reason},
    )
    return tx


# Awards ---------------------------------------------------------------------------------------------------------------


@dataclass
class AwardKindInput:
    code: str | None = None
    name: str | None = None
    subject: str | None = None
    basis: str | None = None
    winners: int | None = None
    bonus_minutes: int | None = None
    min_star_level: int | None = None
    active: bool | None = None
    position: int | None = None


def _apply_kind(kind: AwardKind, data: AwardKindInput) -> None:
    if data.name is not None:
        kind.name = check_text(data.name, "name", max_length=50, required=True)
    if data.basis is not None:
        if data.basis not in AwardBasis.values:
            raise Invalid(_("排名依据无效。"), fields={"basis": "invalid"})
        kind.basis = data.basis
    if data.winners is not None:
        kind.winners = check_int(data.winners, "winners", low=1, high=MAX_WINNERS)
    if data.bonus_minutes is not None:
        kind.bonus_minutes = check_int(data.bonus_minutes, "bonus_minutes", low=0, high=MAX_BONUS_MINUTES)
    if data.min_star_level is not None:
        kind.min_star_level = check_int(data.min_star_level, "min_star_level", low=0, high=10)
    if data.active is not None:
        kind.active = bool(data.active)
    if data.position is not None:
        kind.position = check_int(data.position, "position", low=0, high=1000)


@transaction.atomic
def do_create_award_kind(actor: User | None, bank: Org, data: AwardKindInput) -> AwardKind:
    code = check_text(data.code or "", "code", max_length=40, required=True)
    if not code.replace("_", "").isalnum() or not code.isascii():
        raise Invalid(_("代码只能用英文字母、数字和下划线。"), fields={"code": "invalid"})
    if data.subject not in AwardSubject.values:
        raise Invalid(_("表彰对象只能是志愿者或组织。"), fields={"subject": "invalid"})
    if data.name is None:
        raise Invalid(_("请填写这一项。"), fields={"name": "required"})
    _rules_row(bank)
    if AwardKind.objects.filter(bank=bank).count() >= MAX_AWARD_KINDS:
        raise Conflict(_("表彰类别太多了。"), code="too_many_award_kinds")
    if AwardKind.objects.filter(bank=bank, code=code).exists():
        raise Conflict(_("这个代码已经有表彰类别在用。"), code="duplicate_code", fields={"code": code})
    kind = AwardKind(bank=bank, code=code, subject=data.subject)
    _apply_kind(kind, data)
    if kind.subject == AwardSubject.ORG:
        kind.bonus_minutes = 0  # credits go to members, not orgs
    kind.save()
    record(actor, "evaluation.award_kind.create", kind, bank_id=bank.pk, data={"code": code})
    return kind


@transaction.atomic
def do_update_award_kind(actor: User | None, kind: AwardKind, data: AwardKindInput) -> AwardKind:
    kind = AwardKind.objects.select_for_update().get(pk=kind.pk)
    _apply_kind(kind, data)
    if kind.subject == AwardSubject.ORG:
        kind.bonus_minutes = 0
    kind.save()
    record(
        actor,
        "evaluation.award_kind.update",
        kind,
        bank_id=kind.bank_id,
        data={"winners": kind.winners, "bonus_minutes": kind.bonus_minutes},
    )
    return kind


@transaction.atomic
def do_rank_awards(actor: User | None, kind: AwardKind, year: int) -> list[Award]:
    """Rank the year's candidates from the data and keep the best (twice the number of winners) as
    nominations. Confirmed winners stay as they are, rank included; earlier unconfirmed nominations are replaced
    and take the other ranks (1, 2, 3, ... skipping the winners'), in the new order: one rank each, no two alike."""
    from timebank.evaluation.ranking import candidates

    check_year(year)
    kind = AwardKind.objects.select_for_update().get(pk=kind.pk)
    if not kind.active:
        raise Conflict(_("这个表彰类别已停用。"), code="award_kind_inactive")
    Award.objects.filter(kind=kind, year=year, status=AwardStatus.NOMINATED).delete()
    confirmed = Award.objects.filter(kind=kind, year=year)
    taken_members = set(confirmed.exclude(member=None).values_list("member_id", flat=True))
    taken_orgs = set(confirmed.exclude(org=None).values_list("org_id", flat=True))
    taken_ranks = set(confirmed.values_list("rank", flat=True))
    rows = []
    rank = 0
    for c in candidates(kind, year):
        if c.member_id in taken_members or c.org_id in taken_orgs:
            continue
        rank += 1
        while rank in taken_ranks:
            rank += 1
        rows.append(
            Award(
                bank_id=kind.bank_id,
                kind=kind,
                year=year,
                member_id=c.member_id,
                org_id=c.org_id,
                rank=rank,
                score=c.score,
            )
        )
        if len(rows) >= kind.winners * 2:
            break
    Award.objects.bulk_create(rows)
    record(actor, "evaluation.award.rank", kind, bank_id=kind.bank_id, data={"year": year, "nominated": len(rows)})
    return list(Award.objects.filter(kind=kind, year=year).order_by("rank", "pk"))


@transaction.atomic
def do_confirm_award(actor: User | None, award: Award) -> tuple[Award, bool]:
    """The head office confirms a winner. Confirming again changes nothing (the bonus is credited once:
    the award is locked, and the deposit's idempotency key is the award's). Returns (award, newly confirmed)."""
    award = Award.objects.select_for_update(of=("self",)).select_related("kind", "member").get(pk=award.pk)
    if award.status == AwardStatus.CONFIRMED:
        return award, False
    kind = award.kind
    if Award.objects.filter(kind=kind, year=award.year, status=AwardStatus.CONFIRMED).count() >= kind.winners:
        raise Conflict(_("这个表彰的名额已满。"), code="winners_full", fields={"winners": kind.winners})
    award.status = AwardStatus.CONFIRMED
    award.confirmed_by = _user(actor)
    award.confirmed_at = clock.now()
    fields = ["status", "confirmed_by", "confirmed_at"]
    bonus_approval = None
    if kind.bonus_minutes and award.member is not None:
        if award.member.status != MemberStatus.ACTIVE:
            raise Conflict(_("会员不是正常状态，不能发放奖励时间。"), code="member_not_active")
        if needs_approval(actor, award.member, kind.bonus_minutes):
            # Four eyes: above the threshold (with the member's other credits of the day) the bonus waits for
            # a second person of the head office; approving it credits it (post_award_bonus).
            bonus_approval, _replayed = open_approval(
                actor,
                kind=ApprovalKind.AWARD_BONUS,
                member=award.member,
                minutes=kind.bonus_minutes,
                payload={"award_id": award.pk, "award": kind.name, "year": award.year, "memo": _bonus_memo(award)},
                fp=fingerprint("award_bonus", {"award": award.pk}),
                idempotency_key=None,
                org=award.bank,
            )
        else:
            award.bonus_transaction = _credit_bonus(award, kind.bonus_minutes)
            fields.append("bonus_transaction")
    award.save(update_fields=fields)
    record(
        actor,
        "evaluation.award.confirm",
        award,
        bank_id=award.bank_id,
        data={
            "kind": kind.code,
            "year": award.year,
            "member": award.member_id,
            "org": award.org_id,
            "bonus_minutes": kind.bonus_minutes if award.bonus_transaction_id else 0,
            "bonus_approval": bonus_approval.pk if bonus_approval is not None else None,
        },
    )
    after_award_confirmed(award)
    return award, True


def _bonus_memo(award: Award) -> str:
    return f"{award.kind.name} {award.year}"


def _credit_bonus(award: Award, minutes: int) -> Transaction:
    """Deposit an award's bonus. System scope: the key is the award's whoever confirms or approves, so it is
    credited once."""
    assert award.member is not None
    tx, _replayed = do_deposit(
        None,
        volunteer=award.member,
        minutes=minutes,
        payer="subsidy",
        memo=_bonus_memo(award),
        idempotency_key=f"{AWARD_BONUS_KEY}{award.pk}",
    )
    return tx


def post_award_bonus(award_id: int, minutes: int) -> Transaction:
    """The approved bonus of a confirmed award (timebank.approvals): credited once, linked to the award."""
    award = Award.objects.select_for_update(of=("self",)).select_related("kind", "member").get(pk=award_id)
    if award.bonus_transaction is not None:
        return award.bonus_transaction
    award.bonus_transaction = _credit_bonus(award, minutes)
    award.save(update_fields=["bonus_transaction"])
    after_award_confirmed(award)  # now the winner's message says the bonus arrived
    return award.bonus_transaction


def waiting_bonuses(awards: list[Award]) -> dict[int, int]:
    """Award id -> id of the approval its bonus waits for."""
    waiting = Approval.objects.filter(
        kind=ApprovalKind.AWARD_BONUS,
        state=ApprovalState.PENDING,
        payload__award_id__in=[a.pk for a in awards],
    ).values_list("pk", "payload")
    return {int(payload["award_id"]): pk for pk, payload in waiting}


def mark_waiting_bonuses(awards: list[Award]) -> list[Award]:
    """Set `waiting_approval_id` on each award (None when no bonus waits): what `AwardOut` answers as
    `bonus_approval_id`."""
    waiting = waiting_bonuses(awards)
    for award in awards:
        award.waiting_approval_id = waiting.get(award.pk)  # type: ignore[attr-defined]
    return awards
