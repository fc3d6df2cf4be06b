from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.needs.models import Need
from timebank.orders.models import Order
from timebank.orgs.models import Org


class CallKind(models.TextChoices):
    ORDER = "order", _("下单")
    LEGAL_ADVICE = "legal_advice", _("法律咨询")
    PSYCHOLOGICAL_ADVICE = "psychological_advice", _("心理咨询")
    COMPLAINT = "complaint", _("投诉")
    RETURN_VISIT = "return_visit", _("满意度回访")
    WELFARE_CHECK = "welfare_check", _("定期巡访")
    OTHER = "other", _("其他")


class CallLog(models.Model):
    """Every call the 12349 desk takes or makes, known caller or not."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # The caller's home org (or, for an unknown caller, the operator's): who may read the call follows it.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="calls")
    operator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    phone = models.CharField(max_length=20, blank=True)
    kind = models.CharField(max_length=24, choices=CallKind.choices)
    summary = models.CharField(max_length=500)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    order = models.ForeignKey(Order, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    need = models.ForeignKey(Need, null=True, blank=True, on_delete=models.PROTECT, related_name="calls")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["member", "-started_at"]), models.Index(fields=["started_at"])]

    def __str__(self) -> str:
        return f"call #{self.pk} ({self.kind})"


class ReturnVisitOutcome(models.TextChoices):
    REACHED = "reached", _("已回访")
    NOT_REACHED = "not_reached", _("未接通")
    REFUSED = "refused", _("拒绝回访")


class ReturnVisit(models.Model):
    """满意度回访 after a confirmed order. Only "not reached" may be tried again."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="return_visits")
    call = models.OneToOneField(CallLog, null=True, on_delete=models.PROTECT, related_name="return_visit")
    outcome = models.CharField(max_length=12, choices=ReturnVisitOutcome.choices)
    satisfaction = models.PositiveSmallIntegerField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The database refuses a second final visit even if two operators submit at once.
            models.UniqueConstraint(
                fields=["order"], condition=~Q(outcome="not_reached"), name="return_visit_one_final_per_order"
            ),
            models.CheckConstraint(
                condition=Q(satisfaction__isnull=True) | Q(satisfaction__gte=1, satisfaction__lte=5),
                name="return_visit_satisfaction_1_to_5",
            ),
        ]

    def __str__(self) -> str:
        return f"return visit of order {self.order_id} ({self.outcome})"


class CheckMethod(models.TextChoices):
    PHONE = "phone", _("电话")
    VISIT = "visit", _("上门")
    VIDEO = "video", _("视频")


class WelfareCheck(models.Model):
    """定期巡访: a call or visit to a recipient who lives alone, in an empty nest, disabled, ..."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="welfare_checks")
    # The member's home when checked: the history stays with the community that did the work.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="welfare_checks")
    method = models.CharField(max_length=8, choices=CheckMethod.choices)
    found_ok = models.BooleanField()
    health_changed = models.BooleanField(default=False)
    note = models.CharField(max_length=500, blank=True)
    need = models.ForeignKey(Need, null=True, blank=True, on_delete=models.PROTECT, related_name="welfare_checks")
    call = models.OneToOneField(CallLog, null=True, blank=True, on_delete=models.PROTECT, related_name="welfare_check")
    checked_at = models.DateTimeField()
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["member", "-checked_at"])]

    def __str__(self) -> str:
        return f"welfare check of {self.member_id} at {self.checked_at:%Y-%m-%d}"
