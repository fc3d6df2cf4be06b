from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib import crypto
from timebank.lib.clock import ClockDateTimeField
from timebank.orgs.models import Org


class MemberStatus(models.TextChoices):
    PENDING = "pending", _("待审核")
    ACTIVE = "active", _("正常")
    SUSPENDED = "suspended", _("暂停")
    LEFT = "left", _("已退出")


class Gender(models.TextChoices):
    MALE = "male", _("男")
    FEMALE = "female", _("女")


class RecipientCategory(models.TextChoices):
    EMPTY_NEST = "empty_nest", _("空巢")
    LEFT_BEHIND = "left_behind", _("留守")
    DISABLED = "disabled", _("失能")
    PARTLY_DISABLED = "partly_disabled", _("半失能")
    SEVERE_DISABILITY = "severe_disability", _("重残")
    EXTREME_POVERTY = "extreme_poverty", _("特困")
    SUBSISTENCE_ALLOWANCE = "subsistence_allowance", _("低保")
    REGISTERED_POOR = "registered_poor", _("建档立卡贫困户")
    ADVANCED_AGE = "advanced_age", _("高龄")
    LIVING_ALONE = "living_alone", _("独居")


class Member(models.Model):
    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    home_org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="members")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="member"
    )
    name = models.CharField(max_length=50)
    phone = models.CharField(max_length=20, blank=True, db_index=True)
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=6, choices=Gender.choices, blank=True)
    # Sensitive under PIPL: kept encrypted, found again through a keyed hash, shown masked.
    id_number_encrypted = models.TextField(blank=True)
    id_number_hash = models.CharField(max_length=64, blank=True)
    id_number_masked = models.CharField(max_length=18, blank=True)
    address_encrypted = models.TextField(blank=True)
    latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    is_volunteer = models.BooleanField(default=False)
    is_recipient = models.BooleanField(default=False)
    recipient_categories = models.JSONField(default=list, blank=True)
    skills = models.JSONField(default=list, blank=True)
    occupation = models.CharField(max_length=100, blank=True)
    willing_services = models.JSONField(default=list, blank=True)
    # {"mon": ["morning", "afternoon"], ...}: matching reads it later.
    availability = models.JSONField(default=dict, blank=True)
    referred_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals")
    status = models.CharField(max_length=10, choices=MemberStatus.choices, default=MemberStatus.PENDING)
    # Set when a member who left was anonymised: the row stays for the ledger, the person is gone from it.
    anonymised_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # Pending self-registrations may share a number (an anonymous answer never says whether a number is
            # taken); every member staff accepted holds theirs alone in the bank.
            models.UniqueConstraint(
                fields=["bank", "id_number_hash"],
                condition=~Q(id_number_hash="") & ~Q(status="pending"),
                name="member_id_number_unique_accepted",
            )
        ]
        indexes = [
            # The head counts and the age projection of a bank read this index alone.
            models.Index(
                fields=["bank", "status"],
                include=["is_volunteer", "is_recipient", "referred_by", "created_at", "birth_date"],
                name="member_bank_status",
            ),
            models.Index(fields=["name"]),
            models.Index(
                fields=["bank", "id_number_hash"], condition=~Q(id_number_hash=""), name="member_id_number_hash"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def roles(self) -> list[str]:
        return [r for r, on in (("volunteer", self.is_volunteer), ("recipient", self.is_recipient)) if on]

    @property
    def address(self) -> str:
        return crypto.decrypt(self.address_encrypted) if self.address_encrypted else ""

    def id_number(self) -> str:
        return crypto.decrypt(self.id_number_encrypted) if self.id_number_encrypted else ""


class RelativeLink(models.Model):
    """One direction of a symmetric family link; actions always write both rows."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="relative_links")
    relative = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    relation = models.CharField(max_length=30)
    # On the member's own row: this relative is the member's contact, who gets the member's SMS (the order's
    # accept with its code) when the member has no mobile phone of their own. One per member.
    is_contact = models.BooleanField(default=False)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "relative"], name="relative_link_unique"),
            models.UniqueConstraint(fields=["member"], condition=Q(is_contact=True), name="relative_one_contact"),
        ]

    def __str__(self) -> str:
        return f"{self.member_id} ~ {self.relative_id} ({self.relation})"


class CertificateQuerySet(models.QuerySet["Certificate"]):
    def valid_on(self, day: dt.date) -> CertificateQuerySet:
        """Valid on `day`: not expired, and not issued ahead of its start (a course's certificate may start
        later). Dispatch, matching, activities and the API's `valid_now` all ask this; `Certificate.valid_on`
        is the same rule for one loaded row."""
        return self.filter(Q(valid_until__isnull=True) | Q(valid_until__gte=day)).filter(
            Q(valid_from__isnull=True) | Q(valid_from__lte=day)
        )


class Certificate(models.Model):
    """资质: feeds matching's hard filter."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="certificates")
    kind = models.CharField(max_length=20)
    issuer = models.CharField(max_length=100, blank=True)
    valid_from = models.DateField(null=True, blank=True)
    valid_until = models.DateField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    objects = CertificateQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["kind", "valid_until"])]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.kind}"

    def valid_on(self, day: dt.date) -> bool:
        """`CertificateQuerySet.valid_on` for this row."""
        return (self.valid_until is None or self.valid_until >= day) and (
            self.valid_from is None or self.valid_from <= day
        )


class InsurancePolicyQuerySet(models.QuerySet["InsurancePolicy"]):
    def in_force(self, day: dt.date) -> InsurancePolicyQuerySet:
        """In force on `day`: both ends of the period count. `InsurancePolicy.in_force_on` is the same rule
        for one loaded row."""
        return self.filter(starts_on__lte=day, ends_on__gte=day)


class InsurancePolicy(models.Model):
    """人身意外伤害险 for a volunteer."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="insurance_policies")
    insurer = models.CharField(max_length=100)
    policy_number = models.CharField(max_length=60)
    starts_on = models.DateField()
    ends_on = models.DateField()
    created_at = ClockDateTimeField(auto_now_add=True)

    objects = InsurancePolicyQuerySet.as_manager()

    class Meta:
        indexes = [models.Index(fields=["member", "ends_on"])]

    def __str__(self) -> str:
        return f"{self.insurer} {self.policy_number}"

    def in_force_on(self, day: dt.date) -> bool:
        """`InsurancePolicyQuerySet.in_force` for this row."""
        return self.starts_on <= day <= self.ends_on


class ConsentScope(models.TextChoices):
    """Separate consents (单独同意) PIPL asks for, each given or withdrawn on its own."""

    SENSITIVE = "sensitive_personal_info", _("处理敏感个人信息（身份证号、住址）")
    HEALTH = "health_info", _("处理健康信息（失能、疾病等情况）")
    INSURER = "share_with_insurer", _("向保险公司提供投保所需信息")


class Consent(models.Model):
    """One giving or withdrawing of a separate consent. Append-only: the latest row per scope is the state."""

    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="consents")
    scope = models.CharField(max_length=30, choices=ConsentScope.choices)
    granted = models.BooleanField()
    # Which wording the member saw, and where: a later change of the text does not rewrite old consents.
    text_version = models.CharField(max_length=20, default="2025-1")
    channel = models.CharField(max_length=10)  # web | api | staff
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["member", "scope", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.scope}={self.granted}"


MEMBER_COUNT_STRIPES = 8  # rows per (bank, day): members approved or changed at once rarely share one


class DailyMemberCount(models.Model):
    """A bank's active members by the day they joined (`created_at`, Asia/Shanghai): how many, and how many of them
    are volunteers, recipients, referred, referred volunteers. Kept by database triggers on `members_member`
    (migrations 0011, 0012), so every write of a member moves it in the same transaction, whichever app or statement
    makes it; the head office's head counts sum a few thousand rows instead of scanning every member
    (`timebank.members.counts`). `verify` recounts it. Striped by the member's id, summed on read."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    stripe = models.PositiveSmallIntegerField()
    members = models.BigIntegerField(default=0)
    volunteers = models.BigIntegerField(default=0)
    recipients = models.BigIntegerField(default=0)
    referred = models.BigIntegerField(default=0)
    referred_volunteers = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "day", "stripe"], name="daily_member_count_key"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_id} {self.day}: {self.members}"
