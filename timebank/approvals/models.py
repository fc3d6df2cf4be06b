"""Four eyes (四眼原则): a large credit waits here until a second person approves it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orgs.models import Org


class ApprovalKind(models.TextChoices):
    ADJUSTMENT = "adjustment", _("调整")
    SERVICE_RECORD = "service_record", _("服务记录")
    ACTIVITY_CLOSE = "activity_close", _("活动出勤")
    AWARD_BONUS = "award_bonus", _("表彰奖励时间")


class ApprovalState(models.TextChoices):
    PENDING = "pending_approval", _("待审核")
    APPROVED = "approved", _("已批准")
    REJECTED = "rejected", _("已驳回")


class Approval(models.Model):
    """One credit to one member that waits for a second person.

    `payload` is the request as the maker sent it; approving replays it through the same ledger action."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # The credited member's home at request time: who may approve is decided against this org's subtree.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="approvals")
    kind = models.CharField(max_length=20, choices=ApprovalKind.choices)
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="approvals")
    minutes = models.PositiveIntegerField()  # what the member would be credited
    payload = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=64)
    maker = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=20, choices=ApprovalState.choices, default=ApprovalState.PENDING)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    # What approving posted. Named by label: four eyes sits below the ledger and imports none of it.
    transaction = models.OneToOneField(
        "ledger.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="approval"
    )
    # Same scope as the ledger's keys ("user:<pk>" or "system"), so a replay finds its approval.
    idem_scope = models.CharField(max_length=40)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL stays out of the unique key
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["idem_scope", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="approval_idempotency_key_unique",
            ),
            models.CheckConstraint(condition=Q(minutes__gt=0), name="approval_minutes_positive"),
        ]
        indexes = [models.Index(fields=["state", "bank"], name="approval_state_bank")]

    def __str__(self) -> str:
        return f"{self.kind} {self.member_id} {self.minutes} {self.state}"
