"""Volunteer safety and skills: training and assessment (培训/考核), incident reports (意外事件) and their
responsibility decisions (责任认定) and insurance claims.

Certificates and insurance policies live in `timebank.members.models` (matching reads them); their
actions and API are here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import CertificateKind
from timebank.lib import crypto
from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Certificate, InsurancePolicy, Member
from timebank.orders.models import Order
from timebank.orgs.models import Org


class TrainingKind(models.TextChoices):
    FIRST_AID = "first_aid", _("急救")
    NURSING = "nursing", _("护理")
    SAFETY = "safety", _("安全")
    GENERAL = "general", _("综合")


class Assessment(models.TextChoices):
    NONE = "none", _("未考核")
    PASSED = "passed", _("考核通过")
    FAILED = "failed", _("考核未通过")


class TrainingSession(models.Model):
    """One training held by an org: who taught what, when and where."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="training_sessions")
    title = models.CharField(max_length=100)
    topic = models.CharField(max_length=500, blank=True)
    held_on = models.DateField()
    place = models.CharField(max_length=200, blank=True)
    trainer = models.CharField(max_length=50, blank=True)
    kind = models.CharField(max_length=12, choices=TrainingKind.choices, default=TrainingKind.GENERAL)
    # Passing the assessment grants this certificate, valid for this many years.
    grants_certificate = models.CharField(max_length=20, choices=CertificateKind.choices, blank=True)
    certificate_valid_years = models.PositiveSmallIntegerField(default=3)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["org", "held_on"])]

    def __str__(self) -> str:
        return f"{self.title} ({self.held_on})"


class TrainingAttendance(models.Model):
    """One member at one session: attended or not, and the assessment (考核) result."""

    session = models.ForeignKey(TrainingSession, on_delete=models.CASCADE, related_name="attendance")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="training_attendance")
    attended = models.BooleanField(default=True)
    assessment = models.CharField(max_length=8, choices=Assessment.choices, default=Assessment.NONE)
    score = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    # The certificate this pass granted (so a repeated record does not grant a second one).
    certificate = models.ForeignKey(Certificate, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "member"], name="training_attendance_once"),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | (Q(score__gte=0) & Q(score__lte=100)),
                name="training_score_0_to_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} at {self.session_id}: {self.assessment}"


class IncidentStatus(models.TextChoices):
    OPEN = "open", _("处理中")
    CLOSED = "closed", _("已结案")


class Responsibility(models.TextChoices):
    VOLUNTEER = "volunteer", _("志愿者责任")
    RECIPIENT = "recipient", _("服务对象责任")
    THIRD_PARTY = "third_party", _("第三方责任")
    NONE = "none", _("无责任方")
    SHARED = "shared", _("共同责任")


class ClaimStatus(models.TextChoices):
    NONE = "none", _("未理赔")
    FILED = "filed", _("已报案")
    PAID = "paid", _("已赔付")
    REJECTED = "rejected", _("已拒赔")


class IncidentReport(models.Model):
    """An accident or incident during a service: what happened, any injury, the follow-up, the
    responsibility decision and the insurance claim."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # Whose staff handle it: the order's org, else the recipient's (or the volunteer's) home org.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="incidents")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents")
    volunteer = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents_as_volunteer"
    )
    recipient = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, related_name="incidents_as_recipient"
    )
    occurred_at = models.DateTimeField()
    place = models.CharField(max_length=200, blank=True)
    what_happened = models.TextField(max_length=2000)
    injury = models.BooleanField(default=False)
    # Health data is sensitive under PIPL: kept encrypted, shown only to staff and the parties, audited.
    injury_description_encrypted = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=IncidentStatus.choices, default=IncidentStatus.OPEN)
    claim_policy = models.ForeignKey(
        InsurancePolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="incident_claims"
    )
    claim_number = models.CharField(max_length=60, blank=True)
    claim_status = models.CharField(max_length=10, choices=ClaimStatus.choices, default=ClaimStatus.NONE)
    # The current decision; every decision, the first and each change, is kept in IncidentDecision.
    responsibility = models.CharField(max_length=12, choices=Responsibility.choices, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.CharField(max_length=500, blank=True)
    reported_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org", "status"]), models.Index(fields=["bank", "occurred_at"])]

    def __str__(self) -> str:
        return f"incident #{self.pk} ({self.status})"

    @property
    def injury_description(self) -> str:
        return crypto.decrypt(self.injury_description_encrypted) if self.injury_description_encrypted else ""


class FollowUpKind(models.TextChoices):
    NOTE = "note", _("跟进记录")
    CLAIM = "claim", _("理赔")
    DECISION = "decision", _("责任认定")
    STATUS = "status", _("状态变更")


class IncidentFollowUp(models.Model):
    """One dated entry in an incident's history. Claims, decisions and closing write one too."""

    incident = models.ForeignKey(IncidentReport, on_delete=models.CASCADE, related_name="follow_ups")
    kind = models.CharField(max_length=10, choices=FollowUpKind.choices, default=FollowUpKind.NOTE)
    note = models.CharField(max_length=1000)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"follow-up #{self.pk} of incident {self.incident_id}"


class IncidentDecision(models.Model):
    """责任认定: never edited. A change is a new row with its reason; the newest is the current one."""

    incident = models.ForeignKey(IncidentReport, on_delete=models.CASCADE, related_name="decisions")
    responsibility = models.CharField(max_length=12, choices=Responsibility.choices)
    note = models.CharField(max_length=500, blank=True)
    change_reason = models.CharField(max_length=500, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["incident", "decided_at"])]

    def __str__(self) -> str:
        return f"decision #{self.pk} of incident {self.incident_id}: {self.responsibility}"
