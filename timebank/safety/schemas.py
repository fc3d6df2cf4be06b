"""The schemas of the safety API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Literal

from ninja import Schema
from pydantic import Field, StringConstraints

from timebank.api.types import Id, Memo, NoNul, Reason
from timebank.catalogue.models import CertificateKind
from timebank.lib import clock
from timebank.safety import actions
from timebank.safety.models import Assessment, Responsibility, TrainingKind

if TYPE_CHECKING:
    from timebank.members.models import Certificate, InsurancePolicy
    from timebank.safety.models import TrainingAttendance, TrainingSession

CertificateCode = CertificateKind

TrainingKindCode = TrainingKind

ResponsibilityCode = Responsibility

StrictBool = Annotated[bool, Field(strict=True)]


def _text(max_length: int, min_length: int = 0) -> StringConstraints:
    return StringConstraints(strict=True, max_length=max_length, min_length=min_length)


InsurerName = Annotated[str, _text(100, 1), NoNul]

DocNumber = Annotated[str, _text(60, 1), NoNul]

Title = Annotated[str, _text(100, 1), NoNul]

Place = Annotated[str, _text(200), NoNul]

TrainerName = Annotated[str, _text(50), NoNul]

LongText = Annotated[str, _text(2000, 1), NoNul]

InjuryText = Annotated[str, _text(1000), NoNul]

FollowUpText = Annotated[str, _text(1000, 1), NoNul]

Score = Annotated[Decimal, Field(ge=0, le=100, max_digits=4, decimal_places=1, allow_inf_nan=False)]


class PolicyIn(Schema):
    insurer: InsurerName
    policy_number: DocNumber
    starts_on: dt.date
    ends_on: dt.date


class GroupPolicyIn(PolicyIn):
    member_ids: Annotated[list[Id], Field(min_length=1, max_length=actions.MAX_GROUP)]


class PolicyOut(Schema):
    id: int
    member_id: int
    insurer: str
    policy_number: str
    starts_on: dt.date
    ends_on: dt.date
    in_force: bool
    created_at: dt.datetime

    # Read from the InsurancePolicy row: in force on the bank's local today.
    @staticmethod
    def resolve_in_force(policy: InsurancePolicy) -> bool:
        return policy.in_force_on(clock.localdate())


class GroupPolicyOut(Schema):
    insurer: str
    policy_number: str
    starts_on: dt.date
    ends_on: dt.date
    count: int
    policies: list[PolicyOut]


class InsuranceAlertOut(Schema):
    member_id: int
    name: str
    home_org_id: int
    status: Literal["expiring", "uninsured"]
    policy: PolicyOut | None = Field(description="The policy in force today (for `expiring`)")
    days_left: int | None


class CertificateIn(Schema):
    kind: CertificateCode
    issuer: InsurerName
    valid_from: dt.date
    valid_until: dt.date | None = Field(None, description="null: no end date")


class CertificateOut(Schema):
    id: int
    member_id: int
    kind: str
    issuer: str
    valid_from: dt.date | None
    valid_until: dt.date | None
    valid_now: bool
    created_at: dt.datetime

    # Read from the Certificate row. Dispatch's and matching's rule (Certificate.valid_on): from its start date
    # to its end date, on the bank's local today.
    @staticmethod
    def resolve_valid_now(cert: Certificate) -> bool:
        return cert.valid_on(clock.localdate())


class ExpiringCertificateOut(CertificateOut):
    member_name: str
    home_org_id: int
    days_left: int

    # Read from the Certificate row (with its member) that `lists.expiring_certificates` found.
    @staticmethod
    def resolve_member_name(cert: Certificate) -> str:
        return cert.member.name

    @staticmethod
    def resolve_home_org_id(cert: Certificate) -> int:
        return cert.member.home_org_id

    @staticmethod
    def resolve_days_left(cert: Certificate) -> int:
        assert cert.valid_until is not None
        return (cert.valid_until - clock.localdate()).days


class TrainingIn(Schema):
    org_id: Id
    title: Title
    topic: Memo = ""
    held_on: dt.date
    place: Place = ""
    trainer: TrainerName = ""
    kind: TrainingKindCode = TrainingKind.GENERAL
    grants_certificate: CertificateCode | None = Field(None, description="A pass grants this certificate")
    certificate_valid_years: Annotated[int, Field(strict=True, ge=1, le=actions.MAX_CERTIFICATE_YEARS)] = 3


class TrainingOut(Schema):
    id: int
    org_id: int
    title: str
    topic: str
    held_on: dt.date
    place: str
    trainer: str
    kind: str
    grants_certificate: str | None
    certificate_valid_years: int
    attended: int
    passed: int
    created_at: dt.datetime

    # Read from the TrainingSession row; lists annotate the counts (n_attended, n_passed), one session counts.
    @staticmethod
    def resolve_grants_certificate(session: TrainingSession) -> str | None:
        return session.grants_certificate or None

    @staticmethod
    def resolve_attended(session: TrainingSession) -> int:
        n = getattr(session, "n_attended", None)
        return n if n is not None else session.attendance.filter(attended=True).count()

    @staticmethod
    def resolve_passed(session: TrainingSession) -> int:
        n = getattr(session, "n_passed", None)
        return n if n is not None else session.attendance.filter(assessment=Assessment.PASSED).count()


class AttendanceRecordIn(Schema):
    member_id: Id
    attended: StrictBool = True
    passed: StrictBool | None = Field(None, description="null: not assessed")
    score: Score | None = None
    note: Memo = ""


class AttendanceIn(Schema):
    records: Annotated[list[AttendanceRecordIn], Field(min_length=1, max_length=actions.MAX_ATTENDANCE)]


class AttendanceOut(Schema):
    member_id: int
    member_name: str
    attended: bool
    assessment: Literal["passed", "failed", "none"]
    score: Decimal | None
    note: str
    certificate_id: int | None

    # Read from the TrainingAttendance row (with its member).
    @staticmethod
    def resolve_member_name(row: TrainingAttendance) -> str:
        return row.member.name


class AttendanceResultOut(Schema):
    training: TrainingOut
    records: list[AttendanceOut]
    certificates_granted: list[CertificateOut]


class MemberTrainingOut(AttendanceOut):
    training_id: int
    title: str
    kind: str
    held_on: dt.date

    # Read from the TrainingAttendance row and its session.
    @staticmethod
    def resolve_training_id(row: TrainingAttendance) -> int:
        return row.session_id

    @staticmethod
    def resolve_title(row: TrainingAttendance) -> str:
        return row.session.title

    @staticmethod
    def resolve_kind(row: TrainingAttendance) -> str:
        return row.session.kind

    @staticmethod
    def resolve_held_on(row: TrainingAttendance) -> dt.date:
        return row.session.held_on


class IncidentIn(Schema):
    order_id: Id | None = None
    volunteer_id: Id | None = None
    recipient_id: Id | None = None
    occurred_at: dt.datetime
    place: Place = ""
    what_happened: LongText
    injury: StrictBool = False
    injury_description: InjuryText = ""


class ClaimOut(Schema):
    policy_id: int | None
    claim_number: str
    status: str


class DecisionOut(Schema):
    responsibility: str
    note: str
    change_reason: str
    decided_by_id: int | None
    decided_by_name: str | None
    decided_at: dt.datetime


class SafetyFollowUpOut(Schema):
    id: int
    kind: str
    note: str
    created_by_id: int | None
    created_at: dt.datetime


class IncidentOut(Schema):
    id: int
    org_id: int
    order_id: int | None
    volunteer_id: int | None
    recipient_id: int | None
    occurred_at: dt.datetime
    place: str
    what_happened: str
    injury: bool
    status: str
    claim: ClaimOut
    decision: DecisionOut | None
    reported_by_id: int | None
    created_at: dt.datetime
    closed_at: dt.datetime | None


class IncidentDetailOut(IncidentOut):
    injury_description: str | None = Field(description="Shown to staff and the parties; every showing is audited")
    decisions: list[DecisionOut]
    follow_ups: list[SafetyFollowUpOut]


class SafetyFollowUpIn(Schema):
    note: FollowUpText


class DecisionIn(Schema):
    responsibility: ResponsibilityCode
    note: Memo = ""
    reason: Memo = Field("", description="Required to change an earlier decision")


class ClaimIn(Schema):
    claim_status: Literal["filed", "paid", "rejected"]
    policy_id: Id | None = None
    claim_number: DocNumber | None = None
    note: Memo = ""


class SafetyCloseIn(Schema):
    note: Memo = ""


class ReopenIn(Schema):
    reason: Reason
