"""The schemas of the evaluation API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

from ninja import Schema
from pydantic import Field, StringConstraints

from timebank.api.types import Id, NoNul
from timebank.evaluation import actions
from timebank.evaluation.models import AwardBasis, AwardStatus, AwardSubject, ComplaintStatus, PenaltyKind
from timebank.lib import clock

if TYPE_CHECKING:
    from timebank.evaluation.models import Assessment, AssessmentScore, Award, Complaint, ComplaintFollowUp, Penalty

Year = Annotated[int, Field(strict=True, ge=2000, le=2100)]

Score = Annotated[Decimal, Field(ge=0, le=100, max_digits=4, decimal_places=1, allow_inf_nan=False)]
Weight = Annotated[int, Field(strict=True, ge=0, le=100)]
Code = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=40, pattern=r"^[a-z0-9_]+$")]
StrictBool = Annotated[bool, Field(strict=True)]


def _text(max_length: int, min_length: int = 0) -> StringConstraints:
    return StringConstraints(strict=True, max_length=max_length, min_length=min_length)


Name = Annotated[str, _text(50, 1), NoNul]
Short = Annotated[str, _text(500), NoNul]
Note = Annotated[str, _text(1000), NoNul]
RequiredNote = Annotated[str, _text(1000, 1), NoNul]
LongText = Annotated[str, _text(2000), NoNul]
RequiredLongText = Annotated[str, _text(2000, 1), NoNul]
Reason = Annotated[str, _text(500, 1), NoNul]


class EvaluationRulesOut(Schema):
    head_office_id: int
    third_party_weight: int
    self_weight: int
    satisfaction_weight: int
    complaint_deduction: Decimal
    star_hold_rating_below: Decimal
    star_min_reviews: int
    star_hold_complaints: int


class EvaluationRulesPatch(Schema):
    third_party_weight: Weight | None = None
    self_weight: Weight | None = None
    satisfaction_weight: Weight | None = None
    complaint_deduction: Score | None = None
    star_hold_rating_below: (
        Annotated[Decimal, Field(ge=0, le=5, max_digits=3, decimal_places=2, allow_inf_nan=False)] | None
    ) = None
    star_min_reviews: Annotated[int, Field(strict=True, ge=0, le=100)] | None = None
    star_hold_complaints: Annotated[int, Field(strict=True, ge=0, le=100)] | None = None


class IndicatorOut(Schema):
    id: int
    code: str
    name: str
    description: str
    weight: int
    active: bool
    position: int


class IndicatorIn(Schema):
    code: Code
    name: Name
    description: Short = ""
    weight: Weight = 1
    active: StrictBool = True
    position: Annotated[int, Field(strict=True, ge=0, le=1000)] = 0


class IndicatorPatch(Schema):
    name: Name | None = None
    description: Short | None = None
    weight: Weight | None = None
    active: StrictBool | None = None
    position: Annotated[int, Field(strict=True, ge=0, le=1000)] | None = None


class ScoreIn(Schema):
    indicator_id: Id
    score: Score


class AssessmentIn(Schema):
    org_id: Id
    year: Year
    scores: Annotated[list[ScoreIn], Field(min_length=1, max_length=actions.MAX_INDICATORS)]
    note: Note = ""


class ScoreOut(Schema):
    indicator_id: int
    score: Decimal
    weight: int


class AssessmentOut(Schema):
    id: int
    org_id: int
    year: int
    assessor_id: int
    total: Decimal
    note: str
    scores: list[ScoreOut]
    created_at: dt.datetime

    # Read from the Assessment row; its scores in the order of their indicators.
    @staticmethod
    def resolve_scores(assessment: Assessment) -> list[AssessmentScore]:
        return sorted(assessment.scores.all(), key=lambda s: s.indicator_id)


class SelfIn(Schema):
    year: Year
    score: Score
    summary: LongText = ""
    org_id: Id | None = Field(None, description="An org's self-assessment (staff of the org); omit for your own")


class SelfOut(Schema):
    id: int
    member_id: int | None
    org_id: int | None
    year: int
    score: Decimal
    summary: str


class CombinedOut(Schema):
    year: int
    third_party: Decimal | None
    self_score: Decimal | None
    satisfaction: Decimal | None
    rating_count: int
    upheld_complaints: int
    weighted: Decimal | None
    deduction: Decimal
    total: Decimal | None
    credited_minutes: int


class StarOut(Schema):
    member_id: int
    level: int
    earned_level: int
    credited_minutes: int
    thresholds_hours: list[int]
    next_threshold_hours: int | None
    minutes_to_next: int | None
    held_back: list[Literal["low_rating", "upheld_complaints"]]
    average_rating: Decimal | None
    rating_count: int
    upheld_complaints: int


class ComplaintIn(Schema):
    org_id: Id | None = None
    volunteer_id: Id | None = None
    order_id: Id | None = None
    complainant: Annotated[str, _text(50), NoNul] = ""
    text: RequiredLongText


class EvaluationFollowUpOut(Schema):
    id: int
    note: str
    actor_id: int | None
    created_at: dt.datetime


class ComplaintOut(Schema):
    id: int
    org_id: int
    volunteer_id: int | None
    order_id: int | None
    complainant: str
    text: str
    status: ComplaintStatus
    decision_note: str
    decided_at: dt.datetime | None
    created_at: dt.datetime
    follow_ups: list[EvaluationFollowUpOut]

    # Read from the Complaint row.
    @staticmethod
    def resolve_follow_ups(complaint: Complaint) -> list[ComplaintFollowUp]:
        return list(complaint.follow_ups.all())


class EvaluationFollowUpIn(Schema):
    note: RequiredNote


class DecideIn(Schema):
    outcome: Literal["upheld", "dismissed"]
    note: RequiredNote


class PenaltyIn(Schema):
    member_id: Id
    kind: PenaltyKind
    reason: Annotated[str, _text(1000, 1), NoNul]
    complaint_id: Id | None = None
    starts_on: dt.date | None = None
    ends_on: dt.date | None = None


class PenaltyOut(Schema):
    id: int
    member_id: int
    kind: str
    reason: str
    complaint_id: int | None
    starts_on: dt.date
    ends_on: dt.date | None
    in_force: bool
    lifted_at: dt.datetime | None
    lift_reason: str
    correction_transaction_id: int | None
    created_at: dt.datetime

    # Read from the Penalty row: in force today (the bank's local date), and its correction's transaction.
    @staticmethod
    def resolve_in_force(penalty: Penalty) -> bool:
        return penalty.in_force_on(clock.localdate())

    @staticmethod
    def resolve_correction_transaction_id(penalty: Penalty) -> int | None:
        return penalty.correction_id


class LiftIn(Schema):
    reason: Reason


class CorrectionIn(Schema):
    transaction_id: Id
    reason: Reason


class EvaluationTransactionOut(Schema):
    transaction_id: int
    kind: str
    minutes: int
    created_at: dt.datetime
    reverses_id: int | None


class AwardKindOut(Schema):
    id: int
    code: str
    name: str
    subject: AwardSubject
    basis: AwardBasis
    winners: int
    bonus_minutes: int
    min_star_level: int
    active: bool
    position: int


class AwardKindIn(Schema):
    code: Code
    name: Name
    subject: AwardSubject
    basis: AwardBasis = AwardBasis.COMBINED_SCORE
    winners: Annotated[int, Field(strict=True, ge=1, le=actions.MAX_WINNERS)] = 10
    bonus_minutes: Annotated[int, Field(strict=True, ge=0, le=actions.MAX_BONUS_MINUTES)] = 0
    min_star_level: Annotated[int, Field(strict=True, ge=0, le=10)] = 0
    active: StrictBool = True
    position: Annotated[int, Field(strict=True, ge=0, le=1000)] = 0


class AwardKindPatch(Schema):
    name: Name | None = None
    basis: AwardBasis | None = None
    winners: Annotated[int, Field(strict=True, ge=1, le=actions.MAX_WINNERS)] | None = None
    bonus_minutes: Annotated[int, Field(strict=True, ge=0, le=actions.MAX_BONUS_MINUTES)] | None = None
    min_star_level: Annotated[int, Field(strict=True, ge=0, le=10)] | None = None
    active: StrictBool | None = None
    position: Annotated[int, Field(strict=True, ge=0, le=1000)] | None = None


class AwardOut(Schema):
    id: int
    kind_id: int
    year: int
    member_id: int | None
    org_id: int | None
    name: str
    rank: int
    score: Decimal
    status: AwardStatus
    confirmed_at: dt.datetime | None
    bonus_transaction_id: int | None
    # A bonus above the approval threshold waits for a second person (四眼原则): the approval it waits for.
    bonus_approval_id: int | None = None

    # Read from the Award row: the winner's name (the member's, else the org's); the waiting approval is the
    # one `actions.mark_waiting_bonuses` found for it, when the handler asked.
    @staticmethod
    def resolve_name(award: Award) -> str:
        if award.member is not None:
            return award.member.name
        return award.org.name if award.org is not None else ""

    @staticmethod
    def resolve_bonus_approval_id(award: Award) -> int | None:
        return getattr(award, "waiting_approval_id", None)


class RankIn(Schema):
    year: Year
