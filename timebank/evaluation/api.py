"""Three-way evaluation, complaints, penalties, star levels and awards."""

from __future__ import annotations

from typing import Annotated, Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, paginate
from timebank.evaluation import access, actions
from timebank.evaluation.models import (
    Assessment,
    Award,
    AwardKind,
    AwardStatus,
    Complaint,
    ComplaintStatus,
    EvaluationRules,
    Indicator,
    Penalty,
    SelfAssessment,
)
from timebank.evaluation.rules import evaluation_rules
from timebank.evaluation.schemas import (
    AssessmentIn,
    AssessmentOut,
    AwardKindIn,
    AwardKindOut,
    AwardKindPatch,
    AwardOut,
    CombinedOut,
    ComplaintIn,
    ComplaintOut,
    CorrectionIn,
    DecideIn,
    EvaluationFollowUpIn,
    EvaluationRulesOut,
    EvaluationRulesPatch,
    EvaluationTransactionOut,
    IndicatorIn,
    IndicatorOut,
    IndicatorPatch,
    LiftIn,
    PenaltyIn,
    PenaltyOut,
    RankIn,
    SelfIn,
    SelfOut,
    StarOut,
)
from timebank.evaluation.scoring import Combined, org_score, volunteer_score
from timebank.evaluation.stars import StarLevel, star_level
from timebank.ledger.models import Transaction
from timebank.lib import clock
from timebank.lib.errors import Invalid, NotFound
from timebank.members.access import member_of
from timebank.orders.access import access_order
from timebank.orgs.api import caller

router = Router(tags=["evaluation"])

CursorParam = Annotated[str | None, Query(max_length=100)]
YearParam = Annotated[int | None, Query(ge=2000, le=2100)]


def _year(year: int | None) -> int:
    return year if year is not None else clock.localdate().year


# Rules ----------------------------------------------------------------------------------------------------------


@router.get("/orgs/{org_id}/evaluation-rules", response=EvaluationRulesOut)
def get_rules(request: HttpRequest, org_id: PathId) -> EvaluationRules:
    """The head office's evaluation rules: weights of the three parts, complaint deduction, star hold-back."""
    bank = access.access_bank_settings(caller(request), org_id, write=False)
    return evaluation_rules(bank.pk)


@router.patch("/orgs/{org_id}/evaluation-rules", response=EvaluationRulesOut)
def patch_rules(request: HttpRequest, org_id: PathId, payload: EvaluationRulesPatch) -> EvaluationRules:
    """Head-office admins. Weights are 0..100 each and not all zero."""
    user = caller(request)
    bank = access.access_bank_settings(user, org_id, write=True)
    changes = payload.dict(exclude_unset=True)
    if any(v is None for v in changes.values()):
        raise Invalid(_("规则值不能为空。"), fields={k: "null" for k, v in changes.items() if v is None})
    return actions.do_update_rules(user, bank, changes)


@router.post("/orgs/{org_id}/evaluation-defaults", response=dict[str, int])
def seed_defaults(request: HttpRequest, org_id: PathId) -> dict[str, int]:
    """Add the seeds' indicators and award kinds to a bank that has none yet. Head-office admins."""
    user = caller(request)
    bank = access.access_bank_settings(user, org_id, write=True)
    indicators, kinds = actions.do_seed_defaults(user, bank)
    return {"indicators": indicators, "award_kinds": kinds}


# Indicators -----------------------------------------------------------------------------------------------------


@router.get("/orgs/{org_id}/indicators", response=list[IndicatorOut])
def list_indicators(request: HttpRequest, org_id: PathId) -> QuerySet[Indicator]:
    """The head office's assessment indicators (运行管理, 服务品质, 时间认定 …) with their weights."""
    bank = access.access_bank_settings(caller(request), org_id, write=False)
    return Indicator.objects.filter(bank=bank)


@router.post("/orgs/{org_id}/indicators", response={201: IndicatorOut})
def create_indicator(request: HttpRequest, org_id: PathId, payload: IndicatorIn) -> Status[Indicator]:
    user = caller(request)
    bank = access.access_bank_settings(user, org_id, write=True)
    indicator = actions.do_create_indicator(user, bank, actions.IndicatorInput(**payload.dict()))
    return Status(201, indicator)


@router.patch("/indicators/{indicator_id}", response=IndicatorOut)
def patch_indicator(request: HttpRequest, indicator_id: PathId, payload: IndicatorPatch) -> Indicator:
    user = caller(request)
    indicator = access.access_indicator(user, indicator_id, write=True)
    changes = payload.dict(exclude_unset=True)
    return actions.do_update_indicator(user, indicator, actions.IndicatorInput(**changes))


# Assessments -----------------------------------------------------------------------------------------------------


@router.post("/assessments", response={201: AssessmentOut})
def create_assessment(request: HttpRequest, payload: AssessmentIn) -> Status[Assessment]:
    """A third-party assessor scores a sub-branch or outlet of their subtree on every active indicator
    (0..100, one decimal). Once per assessor, org and year (409 `already_assessed`)."""
    user = caller(request)
    org = access.access_assess(user, payload.org_id)
    ids = [s.indicator_id for s in payload.scores]
    if len(set(ids)) != len(ids):
        raise Invalid(_("同一个指标只能打一次分。"), fields={"scores": "duplicate"})
    assessment = actions.do_record_assessment(
        user, org, year=payload.year, scores={s.indicator_id: s.score for s in payload.scores}, note=payload.note
    )
    return Status(201, assessment)


@router.get("/assessments", response=Page[AssessmentOut])
def list_assessments(
    request: HttpRequest,
    org_id: PathId | None = None,
    year: YearParam = None,
    limit: int = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    """Assessments in the caller's subtree, newest first (staff and assessors)."""
    user = caller(request)
    qs = access.visible_assessments(user).prefetch_related("scores")
    if org_id is not None:
        qs = qs.filter(org=access.access_org_evaluation(user, org_id))
    if year is not None:
        qs = qs.filter(year=year)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}


# Self-assessments and combined scores -------------------------------------------------------------------------------


@router.post("/self-assessments", response=SelfOut)
def save_self_assessment(request: HttpRequest, payload: SelfIn) -> SelfAssessment:
    """自我评估 for a year: a volunteer's own (their login), or an org's (`org_id`, staff of it). Saving again
    corrects it."""
    user = caller(request)
    if payload.org_id is not None:
        org = access.access_org_self_assessment(user, payload.org_id)
        row = actions.do_self_assess(user, org=org, year=payload.year, score=payload.score, summary=payload.summary)
    else:
        me = member_of(user)
        if me is None:
            raise Invalid(_("请选择机构，或用志愿者本人的账号填写。"), fields={"org_id": "required"})
        row = actions.do_self_assess(user, member=me, year=payload.year, score=payload.score, summary=payload.summary)
    return row


@router.get("/orgs/{org_id}/evaluation", response=CombinedOut)
def org_evaluation(request: HttpRequest, org_id: PathId, year: YearParam = None) -> Combined:
    """An org's combined score for a year (default: this year), part by part."""
    org = access.access_org_evaluation(caller(request), org_id)
    y = _year(year)
    return org_score(org, y)


@router.get("/members/{member_id}/evaluation", response=CombinedOut)
def member_evaluation(request: HttpRequest, member_id: PathId, year: YearParam = None) -> Combined:
    """A volunteer's combined score for a year: the volunteer, and staff of their home subtree."""
    member = access.access_member_evaluation(caller(request), member_id)
    y = _year(year)
    return volunteer_score(member.bank_id, member.pk, y)


@router.get("/members/{member_id}/star-level", response=StarOut)
def member_star_level(request: HttpRequest, member_id: PathId) -> StarLevel:
    """星级: the level by credited hours against the head office's thresholds, and any hold-back."""
    member = access.access_member_evaluation(caller(request), member_id)
    return star_level(member)


# Complaints --------------------------------------------------------------------------------------------------------


@router.post("/complaints", response={201: ComplaintOut})
def file_complaint(request: HttpRequest, payload: ComplaintIn) -> Status[Complaint]:
    """Record a complaint about an org, a volunteer or an order's service. Staff and operators of the
    subtree concerned."""
    user = caller(request)
    order = access_order(user, payload.order_id)[0] if payload.order_id is not None else None
    volunteer = (
        access.access_complaint_volunteer(user, payload.volunteer_id) if payload.volunteer_id is not None else None
    )
    org = access.access_complaint_org(user, payload.org_id) if payload.org_id is not None else None
    if org is None:
        home = volunteer.home_org if volunteer is not None else (order.org if order is not None else None)
        if home is None:
            raise Invalid(_("请说明投诉的是哪个机构或哪位志愿者。"), fields={"org_id": "required"})
        access.access_complaint_org(user, home.pk)
    complaint = actions.do_file_complaint(
        user, org=org, volunteer=volunteer, order=order, complainant=payload.complainant, text=payload.text
    )
    return Status(201, complaint)


@router.get("/complaints", response=Page[ComplaintOut])
def list_complaints(
    request: HttpRequest,
    status: ComplaintStatus | None = None,
    volunteer_id: PathId | None = None,
    limit: int = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    qs = access.visible_complaints(caller(request)).prefetch_related("follow_ups")
    if status:
        qs = qs.filter(status=status)
    if volunteer_id is not None:
        qs = qs.filter(volunteer_id=volunteer_id)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}


@router.get("/complaints/{complaint_id}", response=ComplaintOut)
def get_complaint(request: HttpRequest, complaint_id: PathId) -> Complaint:
    return access.access_complaint(caller(request), complaint_id)


@router.post("/complaints/{complaint_id}/follow-ups", response={201: ComplaintOut})
def follow_up(request: HttpRequest, complaint_id: PathId, payload: EvaluationFollowUpIn) -> Status[Complaint]:
    user = caller(request)
    complaint = access.access_complaint(user, complaint_id)
    actions.do_follow_up_complaint(user, complaint, payload.note)
    return Status(201, Complaint.objects.get(pk=complaint.pk))


@router.post("/complaints/{complaint_id}/decide", response=ComplaintOut)
def decide(request: HttpRequest, complaint_id: PathId, payload: DecideIn) -> Complaint:
    """投诉成立 / 不成立: branch and head-office admins. Once (409 `complaint_decided`)."""
    user = caller(request)
    complaint = access.access_complaint(user, complaint_id, decide=True)
    return actions.do_decide_complaint(user, complaint, upheld=payload.outcome == "upheld", note=payload.note)


# Penalties ---------------------------------------------------------------------------------------------------------


@router.post("/penalties", response={201: PenaltyOut})
def impose_penalty(request: HttpRequest, payload: PenaltyIn) -> Status[Penalty]:
    """奖惩: a warning, a suspension from dispatch (until `ends_on`, or until lifted) or a removal. Admins of
    the volunteer's home subtree. Credits are never touched."""
    user = caller(request)
    member = access.access_member_to_penalise(user, payload.member_id)
    complaint = None
    if payload.complaint_id is not None:
        complaint = Complaint.objects.filter(pk=payload.complaint_id, bank_id=member.bank_id).first()
        if complaint is None:
            raise NotFound(_("找不到这条投诉。"), code="complaint_not_found")
    penalty = actions.do_impose_penalty(
        user,
        member,
        kind=payload.kind,
        reason=payload.reason,
        complaint=complaint,
        starts_on=payload.starts_on,
        ends_on=payload.ends_on,
    )
    return Status(201, penalty)


@router.get("/penalties", response=Page[PenaltyOut])
def list_penalties(
    request: HttpRequest, member_id: PathId | None = None, limit: int = 50, cursor: CursorParam = None
) -> dict[str, Any]:
    qs = access.visible_penalties(caller(request))
    if member_id is not None:
        qs = qs.filter(member_id=member_id)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}


@router.post("/penalties/{penalty_id}/lift", response=PenaltyOut)
def lift_penalty(request: HttpRequest, penalty_id: PathId, payload: LiftIn) -> Penalty:
    """End a suspension or removal early: dispatch and matching include the volunteer again."""
    user = caller(request)
    penalty = access.access_penalty(user, penalty_id, manage=True)
    return actions.do_lift_penalty(user, penalty, reason=payload.reason)


@router.post("/penalties/{penalty_id}/correction", response={201: EvaluationTransactionOut})
def correct_credit(request: HttpRequest, penalty_id: PathId, payload: CorrectionIn) -> Status[dict[str, Any]]:
    """A credit wrongly earned (the misconduct behind the penalty) is reversed through the ledger, with its
    reason. Once per penalty."""
    user = caller(request)
    penalty = access.access_penalty(user, penalty_id, manage=True)
    original = Transaction.objects.filter(pk=payload.transaction_id, bank_id=penalty.bank_id).first()
    if original is None:
        raise NotFound(_("找不到这笔交易。"), code="transaction_not_found")
    tx = actions.do_correct_credit(user, penalty, original, reason=payload.reason)
    return Status(
        201,
        {
            "transaction_id": tx.pk,
            "kind": tx.kind,
            "minutes": tx.minutes,
            "created_at": tx.created_at,
            "reverses_id": tx.reverses_id,
        },
    )


# Awards ------------------------------------------------------------------------------------------------------------


@router.get("/orgs/{org_id}/award-kinds", response=list[AwardKindOut])
def list_award_kinds(request: HttpRequest, org_id: PathId) -> QuerySet[AwardKind]:
    bank = access.access_bank_settings(caller(request), org_id, write=False)
    return AwardKind.objects.filter(bank=bank)


@router.post("/orgs/{org_id}/award-kinds", response={201: AwardKindOut})
def create_award_kind(request: HttpRequest, org_id: PathId, payload: AwardKindIn) -> Status[AwardKind]:
    """A kind of yearly award. `bonus_minutes` (volunteer awards only) are credited to each confirmed winner."""
    user = caller(request)
    bank = access.access_bank_settings(user, org_id, write=True)
    return Status(201, actions.do_create_award_kind(user, bank, actions.AwardKindInput(**payload.dict())))


@router.patch("/award-kinds/{kind_id}", response=AwardKindOut)
def patch_award_kind(request: HttpRequest, kind_id: PathId, payload: AwardKindPatch) -> AwardKind:
    user = caller(request)
    kind = access.access_award_kind(user, kind_id, write=True)
    return actions.do_update_award_kind(user, kind, actions.AwardKindInput(**payload.dict(exclude_unset=True)))


@router.post("/award-kinds/{kind_id}/rank", response=Page[AwardOut])
def rank_awards(request: HttpRequest, kind_id: PathId, payload: RankIn) -> dict[str, Any]:
    """Rank the year's candidates from the data: the best (twice the number of winners) become nominations,
    replacing earlier unconfirmed ones. Head-office admins."""
    user = caller(request)
    kind = access.access_award_kind(user, kind_id, write=True)
    rows = actions.do_rank_awards(user, kind, payload.year)
    rows = list(Award.objects.filter(pk__in=[a.pk for a in rows]).select_related("member", "org").order_by("rank"))
    return {"items": rows, "next_cursor": None}


@router.get("/awards", response=Page[AwardOut])
def list_awards(
    request: HttpRequest,
    kind_id: PathId | None = None,
    year: YearParam = None,
    status: AwardStatus | None = None,
    limit: int = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    qs = access.visible_awards(caller(request)).select_related("member", "org")
    if kind_id is not None:
        qs = qs.filter(kind_id=kind_id)
    if year is not None:
        qs = qs.filter(year=year)
    if status:
        qs = qs.filter(status=status)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": actions.mark_waiting_bonuses(list(rows)), "next_cursor": nxt}


@router.post("/awards/{award_id}/confirm", response=AwardOut)
def confirm_award(request: HttpRequest, award_id: PathId) -> Award:
    """The head office confirms a winner; any bonus is credited once through the ledger (its idempotency key
    is the award's). A bonus above the approval threshold (with the member's other credits of the last 24
    hours) waits for a second person: `bonus_approval_id`. Confirming again answers the same award."""
    user = caller(request)
    award = access.access_award(user, award_id, confirm=True)
    award, _new = actions.do_confirm_award(user, award)
    return actions.mark_waiting_bonuses([Award.objects.select_related("member", "org").get(pk=award.pk)])[0]
