from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import ServiceItem
from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orders.models import Order
from timebank.orgs.models import Org


class NeedLevel(models.TextChoices):
    GENERAL = "general", _("普需")
    SPECIAL = "special", _("特需")
    ESSENTIAL = "essential", _("刚需")


class FoundBy(models.TextChoices):
    HOME_VISIT = "home_visit", _("上门巡访")
    PHONE_CALL = "phone_call", _("电话问候")
    VIDEO_CALL = "video_call", _("视频探访")
    SURVEY = "survey", _("调查问卷")
    CENSUS = "census", _("人口普查数据")


class NeedStatus(models.TextChoices):
    OPEN = "open", _("待跟进")
    IN_PROGRESS = "in_progress", _("跟进中")
    MET = "met", _("已满足")
    CLOSED = "closed", _("已关闭")


OPEN_STATUSES = (NeedStatus.OPEN, NeedStatus.IN_PROGRESS)

# Where a status may go; met and closed are final.
NEED_TRANSITIONS: dict[str, frozenset[str]] = {
    NeedStatus.OPEN: frozenset({NeedStatus.IN_PROGRESS, NeedStatus.MET, NeedStatus.CLOSED}),
    NeedStatus.IN_PROGRESS: frozenset({NeedStatus.MET, NeedStatus.CLOSED}),
    NeedStatus.MET: frozenset(),
    NeedStatus.CLOSED: frozenset(),
}


class CensusImportStatus(models.TextChoices):
    DRY_RUN = "dry_run", _("待确认")
    # Confirmation writes in batches, each committed with its progress, so a crash resumes where it stopped.
    CONFIRMING = "confirming", _("导入中")
    CONFIRMED = "confirmed", _("已导入")


class CensusImport(models.Model):
    """人口普查导入: the parsed rows and the dry-run report, kept until staff confirm."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # The org whose subtree the file's communities are looked up in.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="census_imports")
    filename = models.CharField(max_length=200)
    status = models.CharField(max_length=12, choices=CensusImportStatus.choices, default=CensusImportStatus.DRY_RUN)
    # The accepted rows carry ID numbers: kept encrypted, and wiped once they are written.
    rows_encrypted = models.TextField(blank=True)
    report = models.JSONField(default=dict)
    # How many accepted rows confirmation has processed.
    progress = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)
    confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"census import #{self.pk} ({self.status})"


class Need(models.Model):
    """需求清单: what a recipient needs, followed up until it is met or closed."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    recipient = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="needs")
    level = models.CharField(max_length=10, choices=NeedLevel.choices, default=NeedLevel.GENERAL)
    found_by = models.CharField(max_length=12, choices=FoundBy.choices)
    items = models.ManyToManyField(ServiceItem, blank=True, related_name="needs")
    notes = models.CharField(max_length=500, blank=True)
    status = models.CharField(max_length=12, choices=NeedStatus.choices, default=NeedStatus.OPEN)
    # Orders placed to meet it; "needs without orders" is the list still waiting for a service.
    orders = models.ManyToManyField(Order, blank=True, related_name="needs")
    census_import = models.ForeignKey(
        CensusImport, null=True, blank=True, on_delete=models.SET_NULL, related_name="needs"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)
    met_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["recipient", "status"]), models.Index(fields=["status", "level"])]

    def __str__(self) -> str:
        return f"need #{self.pk} of {self.recipient_id} ({self.status})"


class NeedFollowUp(models.Model):
    """One dated note in a need's history; a status change writes one too."""

    need = models.ForeignKey(Need, on_delete=models.CASCADE, related_name="follow_ups")
    note = models.CharField(max_length=500)
    from_status = models.CharField(max_length=12, choices=NeedStatus.choices)
    to_status = models.CharField(max_length=12, choices=NeedStatus.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"follow-up #{self.pk} of need {self.need_id}"


class WorkOwner(models.Model):
    """Who follows an open order or need after a hand-over (工作交接), when the staff member who dispatched the
    order or follows the need left or changed post. Without a row, the order is followed by whoever dispatched it
    last and the need by whoever wrote its latest follow-up (else who entered it): see timebank/needs/handover.py."""

    order = models.OneToOneField(Order, null=True, blank=True, on_delete=models.CASCADE, related_name="work_owner")
    need = models.OneToOneField(Need, null=True, blank=True, on_delete=models.CASCADE, related_name="work_owner")
    staff = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    handed_over_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    handed_over_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(order__isnull=False, need__isnull=True)
                | models.Q(order__isnull=True, need__isnull=False),
                name="work_owner_one_item",
            )
        ]
        indexes = [models.Index(fields=["staff"])]

    def __str__(self) -> str:
        return f"work owner {self.staff_id} of order {self.order_id} / need {self.need_id}"
