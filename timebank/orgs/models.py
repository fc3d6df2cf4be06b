from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class OrgKind(models.TextChoices):
    HEAD_OFFICE = "head_office", _("总行")
    BRANCH = "branch", _("分行")
    SUB_BRANCH = "sub_branch", _("支行")
    OUTLET = "outlet", _("网点")


# Which kinds may sit under which: branches nest (city → county → township).
ALLOWED_PARENTS: dict[str, set[str]] = {
    OrgKind.BRANCH: {OrgKind.HEAD_OFFICE, OrgKind.BRANCH},
    OrgKind.SUB_BRANCH: {OrgKind.HEAD_OFFICE, OrgKind.BRANCH},
    OrgKind.OUTLET: {OrgKind.BRANCH, OrgKind.SUB_BRANCH},
}


class Org(models.Model):
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=OrgKind.choices)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    # The bank this org belongs to: its head office (a head office points at itself).
    head_office = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Materialised path "/1/4/9/": a subtree is one indexed prefix query.
    path = models.CharField(max_length=255, db_index=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["path"]

    def __str__(self) -> str:
        return self.name

    @property
    def depth(self) -> int:
        return self.path.count("/") - 2

    def contains(self, other: Org) -> bool:
        return bool(self.path) and other.path.startswith(self.path)


class Role(models.TextChoices):
    HEAD_OFFICE_ADMIN = "head_office_admin", _("总行管理员")
    BRANCH_ADMIN = "branch_admin", _("分行管理员")
    STAFF = "staff", _("支行工作人员")
    OPERATOR = "operator", _("热线坐席")
    ASSESSOR = "assessor", _("第三方评估")


# Roles that the contract calls "staff": they manage members within their subtree.
MANAGING_ROLES = frozenset({Role.HEAD_OFFICE_ADMIN, Role.BRANCH_ADMIN, Role.STAFF})
ADMIN_ROLES = frozenset({Role.HEAD_OFFICE_ADMIN, Role.BRANCH_ADMIN})
ROLE_RANK = {Role.HEAD_OFFICE_ADMIN: 3, Role.BRANCH_ADMIN: 2, Role.STAFF: 1, Role.OPERATOR: 1, Role.ASSESSOR: 1}


class User(AbstractUser):
    """A login. Staff logins carry an org and a role; a member's login is linked from Member.user."""

    org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="staff")
    role = models.CharField(max_length=20, choices=Role.choices, blank=True)
    display_name = models.CharField(max_length=100, blank=True)
    # Set by a reset (the temporary password was shown to someone else): the login may only choose a new one.
    must_change_password = models.BooleanField(default=False)


class ApiToken(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    # Only a hash is stored: a leaked database does not leak usable tokens.
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"token of {self.user_id}"


def default_multipliers() -> dict[str, Any]:
    return {"ordinary": 1, "technical": 2, "professional": 3}


def default_star_thresholds() -> list[int]:
    return [100, 300, 600, 1000, 1500]


def default_welfare_categories() -> list[str]:
    return ["living_alone", "empty_nest", "disabled"]


class SettlementPeriod(models.TextChoices):
    HALF_YEAR = "half_year", _("每半年")
    YEAR = "year", _("每年")


class Rules(models.Model):
    """The head office's rules. One row per bank."""

    head_office = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="rules")
    multipliers = models.JSONField(default=default_multipliers)
    settlement_period = models.CharField(
        max_length=10, choices=SettlementPeriod.choices, default=SettlementPeriod.HALF_YEAR
    )
    goods_share_percent = models.PositiveSmallIntegerField(default=50)
    overdraft_minutes = models.PositiveIntegerField(default=0)
    star_thresholds_hours = models.JSONField(default=default_star_thresholds)
    reserve_min_age = models.PositiveSmallIntegerField(null=True, blank=True)
    require_insurance_to_dispatch = models.BooleanField(default=False)
    # Beyond the contract's minimum: how the service loop runs.
    allow_volunteer_take = models.BooleanField(default=True)
    dispatch_within_hours = models.PositiveIntegerField(default=24)
    confirm_grace_minutes = models.PositiveIntegerField(default=30)
    return_visit_after_days = models.PositiveIntegerField(default=3)
    welfare_check_every_days = models.PositiveIntegerField(default=7)
    welfare_check_categories = models.JSONField(default=default_welfare_categories)
    # Trust additions of the contract: the clock, conflicts of interest and four eyes on large credits.
    checkin_early_minutes = models.PositiveIntegerField(default=60)
    checkout_grace_minutes = models.PositiveIntegerField(default=10)
    serve_relatives = models.BooleanField(default=False)
    approval_threshold_minutes = models.PositiveIntegerField(null=True, blank=True, default=600)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "rules"

    def __str__(self) -> str:
        return f"rules of {self.head_office_id}"
