"""Volunteer teams (志愿服务队) and their group activities (活动招募) with sign-ups and attendance."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import CertificateKind, ServiceItem
from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orgs.models import Org


class TeamKind(models.TextChoices):
    RESIDENTS = "residents", _("居民志愿队")
    PARTY_BRANCH = "party_branch", _("党支部")
    FIVE_ELDERS = "five_elders", _("“五老”志愿队")
    SCHOOL = "school", _("学校")
    COMPANY = "company", _("企业")
    PUBLIC_WELFARE = "public_welfare", _("公益组织")
    MEDICAL = "medical", _("医疗队")


class Team(models.Model):
    """A team belongs to one org; its members are volunteers of the same bank."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="teams")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=TeamKind.choices)
    description = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "name"], name="team_org_name")]

    def __str__(self) -> str:
        return self.name


class TeamRole(models.TextChoices):
    LEADER = "leader", _("队长")
    MEMBER = "member", _("队员")


class TeamMembership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="team_memberships")
    role = models.CharField(max_length=10, choices=TeamRole.choices, default=TeamRole.MEMBER)
    # 学号 / 工号: a school needs it to match its own roll; optional elsewhere.
    external_id = models.CharField(max_length=40, blank=True)
    active = models.BooleanField(default=True)
    joined_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "member"], name="team_membership_once")]

    def __str__(self) -> str:
        return f"{self.team_id}:{self.member_id} ({self.role})"


class ActivityState(models.TextChoices):
    PUBLISHED = "published", _("招募中")
    CANCELLED = "cancelled", _("已取消")
    CLOSED = "closed", _("已结束")


class Activity(models.Model):
    """A group activity: places, a waiting list, attendance by rotating QR code, and hours credited at close."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="activities")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="activities")
    title = models.CharField(max_length=100)
    description = models.CharField(max_length=1000, blank=True)
    service_item = models.ForeignKey(ServiceItem, on_delete=models.PROTECT, related_name="activities")
    place = models.CharField(max_length=200)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    signup_deadline = models.DateTimeField()
    places = models.PositiveIntegerField()
    requires_certificate = models.CharField(max_length=20, choices=CertificateKind.choices, blank=True)
    min_age = models.PositiveSmallIntegerField(null=True, blank=True)
    max_age = models.PositiveSmallIntegerField(null=True, blank=True)
    team_only = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=ActivityState.choices, default=ActivityState.PUBLISHED)
    # Per-activity salt of the rotating check-in code; never leaves the server.
    qr_salt = models.CharField(max_length=32)
    cancel_reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        verbose_name_plural = "activities"
        indexes = [models.Index(fields=["bank", "state", "starts_at"])]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=models.F("starts_at")), name="activity_ends_after_start"),
            models.CheckConstraint(condition=Q(places__gte=1), name="activity_has_places"),
        ]

    def __str__(self) -> str:
        return self.title


class SignupStatus(models.TextChoices):
    CONFIRMED = "confirmed", _("已报名")
    WAITING = "waiting", _("候补")
    WITHDRAWN = "withdrawn", _("已退出")


class Attendance(models.TextChoices):
    PENDING = "pending", _("未签到")
    PRESENT = "present", _("已签到")
    ATTENDED = "attended", _("已出勤")
    NO_SHOW = "no_show", _("缺席")


class ActivitySignup(models.Model):
    activity = models.ForeignKey(Activity, on_delete=models.CASCADE, related_name="signups")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="activity_signups")
    status = models.CharField(max_length=10, choices=SignupStatus.choices)
    # The waiting list's order: when this sign-up (or its latest renewal) came in.
    queued_at = models.DateTimeField()
    attendance = models.CharField(max_length=10, choices=Attendance.choices, default=Attendance.PENDING)
    check_in_at = models.DateTimeField(null=True, blank=True)
    check_out_at = models.DateTimeField(null=True, blank=True)
    # Set when staff mark attendance by hand: the minutes to credit, overriding the scans.
    manual_minutes = models.PositiveIntegerField(null=True, blank=True)
    marked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    service_record = models.OneToOneField(
        "orders.ServiceRecord", null=True, blank=True, on_delete=models.PROTECT, related_name="activity_signup"
    )
    reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["activity", "member"], name="activity_signup_once")]
        indexes = [models.Index(fields=["activity", "status", "queued_at"])]

    def __str__(self) -> str:
        return f"{self.activity_id}:{self.member_id} ({self.status})"
