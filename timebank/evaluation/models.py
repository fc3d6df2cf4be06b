"""Three-way evaluation (三向评价), complaints, penalties (奖惩), star levels and awards (表彰).

Third-party assessors score orgs on the head office's indicators; volunteers (and orgs) record a
self-assessment; recipients' satisfaction comes from order ratings and hotline return visits. The head
office's `EvaluationRules` weigh the three parts, say how much an upheld complaint costs, when a star
level is held back and how award winners are ranked.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orders.models import Order
from timebank.orgs.models import Org


class EvaluationRules(models.Model):
    """The head office's evaluation rules: one row per bank, created with the defaults on first use."""

    head_office = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="evaluation_rules")
    # Weights of the three parts of the combined score; a missing part is left out and the rest re-weighed.
    third_party_weight = models.PositiveSmallIntegerField(default=40)
    self_weight = models.PositiveSmallIntegerField(default=20)
    satisfaction_weight = models.PositiveSmallIntegerField(default=40)
    # Points taken off the combined score (0..100) per upheld complaint in the year.
    complaint_deduction = models.DecimalField(max_digits=4, decimal_places=1, default=Decimal("5.0"))
    # Star hold-back: an average rating below this (over at least `star_min_reviews` reviews) costs one star;
    # `star_hold_complaints` upheld complaints within the last 365 days cost one more.
    star_hold_rating_below = models.DecimalField(max_digits=3, decimal_places=2, default=Decimal("3.00"))
    star_min_reviews = models.PositiveSmallIntegerField(default=3)
    star_hold_complaints = models.PositiveSmallIntegerField(default=1)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "evaluation rules"

    def __str__(self) -> str:
        return f"evaluation rules of {self.head_office_id}"


class Indicator(models.Model):
    """One thing assessors score (运行管理, 服务品质, 时间认定 …), 0..100, with its weight."""

    bank = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=50)
    description = models.CharField(max_length=500, blank=True)
    weight = models.PositiveSmallIntegerField(default=1)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["bank", "code"], name="indicator_code_per_bank")]

    def __str__(self) -> str:
        return self.name


class Assessment(models.Model):
    """A third-party assessor's scoring of one org for one year."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="assessments")
    year = models.PositiveSmallIntegerField()
    assessor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # The weighted mean of the scores, fixed when recorded so that a later weight change does not rewrite it.
    total = models.DecimalField(max_digits=5, decimal_places=2)
    note = models.CharField(max_length=1000, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org", "year", "assessor"], name="assessment_once_per_assessor_year")
        ]
        indexes = [models.Index(fields=["bank", "year"])]

    def __str__(self) -> str:
        return f"assessment of {self.org_id} ({self.year})"


class AssessmentScore(models.Model):
    assessment = models.ForeignKey(Assessment, on_delete=models.CASCADE, related_name="scores")
    indicator = models.ForeignKey(Indicator, on_delete=models.PROTECT, related_name="+")
    score = models.DecimalField(max_digits=4, decimal_places=1)
    weight = models.PositiveSmallIntegerField()  # the indicator's weight when scored

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assessment", "indicator"], name="assessment_score_once"),
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=100), name="assessment_score_0_100"),
        ]

    def __str__(self) -> str:
        return f"{self.indicator_id}: {self.score}"


class SelfAssessment(models.Model):
    """自我评估: a volunteer's (or an org's) own score for a year, 0..100, with what they say about it."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    year = models.PositiveSmallIntegerField()
    score = models.DecimalField(max_digits=4, decimal_places=1)
    summary = models.CharField(max_length=2000, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(Q(member__isnull=False) & Q(org__isnull=True))
                | (Q(member__isnull=True) & Q(org__isnull=False)),
                name="self_assessment_member_or_org",
            ),
            models.UniqueConstraint(
                fields=["member", "year"], condition=Q(member__isnull=False), name="self_member_year"
            ),
            models.UniqueConstraint(fields=["org", "year"], condition=Q(org__isnull=False), name="self_org_year"),
            models.CheckConstraint(condition=Q(score__gte=0) & Q(score__lte=100), name="self_assessment_0_100"),
        ]

    def __str__(self) -> str:
        return f"self-assessment {self.year}"


class ComplaintStatus(models.TextChoices):
    OPEN = "open", _("处理中")
    UPHELD = "upheld", _("投诉成立")
    DISMISSED = "dismissed", _("投诉不成立")


class Complaint(models.Model):
    """A complaint about an org or a volunteer, followed up until it is upheld or dismissed."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # The org complained about, or the volunteer's home org when it is about a volunteer.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="complaints")
    volunteer = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="complaints")
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    complainant = models.CharField(max_length=50, blank=True)
    text = models.CharField(max_length=2000)
    status = models.CharField(max_length=10, choices=ComplaintStatus.choices, default=ComplaintStatus.OPEN)
    decision_note = models.CharField(max_length=1000, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    received_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    # The org of the staff who filed it (null: filed by nobody's staff login). Its subtree follows the complaint up
    # as well as `org`'s: a complaint about another community's volunteer stays in its filer's lists.
    filed_in = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["bank", "status"]), models.Index(fields=["volunteer", "status"])]

    def __str__(self) -> str:
        return f"complaint #{self.pk} ({self.status})"


class ComplaintFollowUp(models.Model):
    complaint = models.ForeignKey(Complaint, on_delete=models.CASCADE, related_name="follow_ups")
    note = models.CharField(max_length=1000)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"follow-up of {self.complaint_id}"


class PenaltyKind(models.TextChoices):
    WARNING = "warning", _("警告")
    SUSPENSION = "suspension", _("暂停派单")
    REMOVAL = "removal", _("清退")


# Penalties that keep a volunteer from being dispatched while in force.
BLOCKING_KINDS = (PenaltyKind.SUSPENSION, PenaltyKind.REMOVAL)


class PenaltyQuerySet(models.QuerySet["Penalty"]):
    def in_force(self, day: dt.date) -> PenaltyQuerySet:
        """In force on `day`: a suspension or removal, not lifted, started, and not ended (no end: until
        lifted). It bars dispatch; `Penalty.in_force_on` is the same rule for one loaded row."""
        return self.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=day)).filter(
            kind__in=BLOCKING_KINDS, lifted_at__isnull=True, starts_on__lte=day
        )


class Penalty(models.Model):
    """A penalty on a volunteer. It never touches their credits; a wrong credit is corrected by a reversal
    (`correction`), with its reason."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="penalties")
    kind = models.CharField(max_length=10, choices=PenaltyKind.choices)
    reason = models.CharField(max_length=1000)
    complaint = models.ForeignKey(Complaint, null=True, blank=True, on_delete=models.PROTECT, related_name="penalties")
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)  # a suspension without an end lasts until lifted
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    lift_reason = models.CharField(max_length=500, blank=True)
    correction = models.ForeignKey(
        "ledger.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    objects = PenaltyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["member", "kind"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")), name="penalty_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.member_id}"

    def in_force_on(self, day: dt.date) -> bool:
        """`PenaltyQuerySet.in_force` for this row."""
        return (
            self.kind in BLOCKING_KINDS
            and self.lifted_at is None
            and self.starts_on <= day
            and (self.ends_on is None or self.ends_on >= day)
        )


class AwardSubject(models.TextChoices):
    VOLUNTEER = "volunteer", _("志愿者")
    ORG = "org", _("组织")


class AwardBasis(models.TextChoices):
    COMBINED_SCORE = "combined_score", _("综合评分")
    CREDITED_HOURS = "credited_hours", _("认定时长")


class AwardKind(models.Model):
    """A kind of yearly award (最美志愿者, 优秀基层组织奖, 公益组织参与奖 …), configurable per bank."""

    bank = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    code = models.SlugField(max_length=40)
    name = models.CharField(max_length=50)
    subject = models.CharField(max_length=10, choices=AwardSubject.choices)
    basis = models.CharField(max_length=16, choices=AwardBasis.choices, default=AwardBasis.COMBINED_SCORE)
    winners = models.PositiveSmallIntegerField(default=10)
    # Bonus time credits for each confirmed volunteer winner (0: none), booked through the ledger.
    bonus_minutes = models.PositiveIntegerField(default=0)
    # Volunteers must hold at least this star level to be ranked.
    min_star_level = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "pk"]
        constraints = [models.UniqueConstraint(fields=["bank", "code"], name="award_kind_code_per_bank")]

    def __str__(self) -> str:
        return self.name


class AwardStatus(models.TextChoices):
    NOMINATED = "nominated", _("候选")
    CONFIRMED = "confirmed", _("已确认")


class Award(models.Model):
    """One ranked candidate for one award kind and year; the head office confirms the winners."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    kind = models.ForeignKey(AwardKind, on_delete=models.PROTECT, related_name="awards")
    year = models.PositiveSmallIntegerField()
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="awards")
    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="awards")
    rank = models.PositiveSmallIntegerField()
    score = models.DecimalField(max_digits=10, decimal_places=2)
    status = models.CharField(max_length=10, choices=AwardStatus.choices, default=AwardStatus.NOMINATED)
    confirmed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    confirmed_at = models.DateTimeField(null=True, blank=True)
    bonus_transaction = models.OneToOneField(
        "ledger.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["kind", "year", "rank"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "year", "member"], condition=Q(member__isnull=False), name="award_member_once"
            ),
            models.UniqueConstraint(
                fields=["kind", "year", "org"], condition=Q(org__isnull=False), name="award_org_once"
            ),
            models.CheckConstraint(
                condition=(Q(member__isnull=False) & Q(org__isnull=True))
                | (Q(member__isnull=True) & Q(org__isnull=False)),
                name="award_member_or_org",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind_id} {self.year} #{self.rank}"
