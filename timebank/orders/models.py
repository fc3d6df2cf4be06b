from __future__ import annotations

import datetime as dt
import functools
import operator

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import ServiceItem
from timebank.lib import clock
from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orders.rules import ACTIVE_STATES as ACTIVE_STATES
from timebank.orders.rules import CREDITED_STATES, OPEN_STATES, TASK_STATES, allowed_actions
from timebank.orders.rules import OrderState as OrderState
from timebank.orgs.models import Org, Rules


class Payer(models.TextChoices):
    SUBSIDY = "subsidy", _("政府补贴")
    RECIPIENT = "recipient", _("本人时间")
    POOL = "pool", _("捐赠池")


class Channel(models.TextChoices):
    APP = "app", _("手机")
    HOTLINE = "hotline", _("12349 热线")
    VISIT = "visit", _("上门")
    STAFF = "staff", _("工作人员")


class PaperSource(models.TextChoices):
    """Paper mode: how staff or an operator know what they record for a volunteer without a smartphone."""

    PAPER_SHEET = "paper_sheet", _("纸质签到表")
    PHONE_CALL = "phone_call", _("电话")
    IN_PERSON = "in_person", _("当面")


def waiting_since_q(hours: int, now: dt.datetime) -> Q:
    """Overdue under one bank's `dispatch_within_hours`: still requested, made more than `hours` before `now`.
    `Order.is_overdue` is the same rule for one loaded order."""
    return Q(state=OrderState.REQUESTED, created_at__lt=now - dt.timedelta(hours=hours))


def overdue_q(now: dt.datetime | None = None, *, bank_id: int | None = None) -> Q:
    """Overdue (超时未派单): requested orders not dispatched within their bank's `dispatch_within_hours`
    (the head office's rules), one condition per bank, all in SQL. `bank_id`: only that bank's orders."""
    now = now or clock.now()
    limits = Rules.objects.values_list("head_office_id", "dispatch_within_hours")
    if bank_id is not None:
        limits = limits.filter(head_office_id=bank_id)
    per_bank = [Q(bank_id=bank) & waiting_since_q(hours, now) for bank, hours in limits]
    return functools.reduce(operator.or_, per_bank) if per_bank else Q(pk__in=[])


# An urgent order is for now: still worth taking a while after its start (a fall that has waited 50 minutes).
URGENT_TAKEABLE_FOR = dt.timedelta(hours=12)


def takeable_q(now: dt.datetime | None = None) -> Q:
    """May still be taken (offered in the volunteer's list and the API's pool): requested, and its start still
    to come, or, for an urgent order, not more than `URGENT_TAKEABLE_FOR` ago. A past order is not offered."""
    now = now or clock.now()
    return Q(state=OrderState.REQUESTED) & (
        Q(scheduled_start__gte=now) | Q(urgent=True, scheduled_start__gte=now - URGENT_TAKEABLE_FOR)
    )


class OrderQuerySet(models.QuerySet["Order"]):
    """The domain's filters on orders, each written once (the groups come from orders.rules)."""

    def open(self) -> OrderQuerySet:
        """Not yet credited nor cancelled."""
        return self.filter(state__in=OPEN_STATES)

    def active(self) -> OrderQuerySet:
        """A volunteer is on it (dispatched, accepted, in service)."""
        return self.filter(state__in=ACTIVE_STATES)

    def tasks(self) -> OrderQuerySet:
        """The volunteer's tasks: on it, or done and waiting for confirmation."""
        return self.filter(state__in=TASK_STATES)

    def credited(self) -> OrderQuerySet:
        """The service happened and its time is posted (confirmed or reviewed)."""
        return self.filter(state__in=CREDITED_STATES)

    def takeable(self, now: dt.datetime | None = None) -> OrderQuerySet:
        """Still offered to volunteers to take (`takeable_q`)."""
        return self.filter(takeable_q(now))

    def overdue(self, now: dt.datetime | None = None) -> OrderQuerySet:
        """Requested and not dispatched within the bank's `dispatch_within_hours` (`overdue_q`)."""
        return self.filter(overdue_q(now))


class Order(models.Model):
    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # The recipient's home org when the order was made: stats and access follow it.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="orders")
    recipient = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="orders_received")
    service_item = models.ForeignKey(ServiceItem, on_delete=models.PROTECT, related_name="orders")
    volunteer = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="orders_served")
    state = models.CharField(max_length=12, choices=OrderState.choices, default=OrderState.REQUESTED)
    payer = models.CharField(max_length=10, choices=Payer.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    urgent = models.BooleanField(default=False)
    scheduled_start = models.DateTimeField()
    planned_minutes = models.PositiveIntegerField()
    # Fixed when the order is made, so a later rule change does not re-price it.
    multiplier = models.DecimalField(max_digits=6, decimal_places=3)
    notes = models.CharField(max_length=500, blank=True)
    code = models.CharField(max_length=6)
    # Wrong codes typed by the volunteer: after a few the code stops working (no guessing 10^6 codes).
    code_failures = models.PositiveSmallIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)
    updated_at = ClockDateTimeField(auto_now=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    accepted_at = models.DateTimeField(null=True, blank=True)
    check_in_at = models.DateTimeField(null=True, blank=True)
    check_out_at = models.DateTimeField(null=True, blank=True)
    check_in_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    check_in_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    check_out_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    check_out_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    actual_minutes = models.PositiveIntegerField(null=True, blank=True)
    credited_minutes = models.PositiveIntegerField(null=True, blank=True)
    transaction = models.OneToOneField(
        "ledger.Transaction", null=True, blank=True, on_delete=models.PROTECT, related_name="order"
    )
    confirmed_at = models.DateTimeField(null=True, blank=True)
    rating = models.PositiveSmallIntegerField(null=True, blank=True)
    review_comment = models.CharField(max_length=500, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    cancel_reason = models.CharField(max_length=500, blank=True)
    dispute_reason = models.CharField(max_length=500, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["state", "urgent", "created_at"]),
            models.Index(fields=["volunteer", "state"]),
            models.Index(fields=["recipient", "-created_at"]),
            models.Index(fields=["confirmed_at"]),
            # A bank's orders made, or confirmed, in a period (reports).
            models.Index(fields=["bank", "created_at"], include=["state", "dispatched_at"], name="order_bank_created"),
            models.Index(
                fields=["bank", "confirmed_at"],
                include=["state", "transaction", "actual_minutes", "credited_minutes"],
                condition=Q(confirmed_at__isnull=False),
                name="order_bank_confirmed",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__gte=1, rating__lte=5), name="order_rating_1_to_5"
            ),
        ]

    def __str__(self) -> str:
        return f"order #{self.pk} ({self.state})"

    def is_overdue(self, dispatch_within_hours: int | None, now: dt.datetime | None = None) -> bool:
        """`waiting_since_q` for this order (None hours: the bank has no rules, so nothing is overdue)."""
        if dispatch_within_hours is None:
            return False
        late = (now or clock.now()) - dt.timedelta(hours=dispatch_within_hours)
        return self.state == OrderState.REQUESTED and self.created_at < late

    def is_takeable(self, now: dt.datetime | None = None) -> bool:
        """`takeable_q` for this order."""
        now = now or clock.now()
        since = now - URGENT_TAKEABLE_FOR if self.urgent else now
        return self.state == OrderState.REQUESTED and self.scheduled_start >= since

    @property
    def is_credited(self) -> bool:
        return self.state in CREDITED_STATES

    @property
    def can(self) -> dict[str, bool]:
        """What the transition table lets an order in this state do, for the pages' buttons
        (`order.can.check_in`); who may do it is still the access check's."""
        return allowed_actions(self.state)


class OrderEvent(models.Model):
    """The order's history: every transition, who made it and why."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=20)
    from_state = models.CharField(max_length=12)
    to_state = models.CharField(max_length=12)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    volunteer = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    note = models.CharField(max_length=500, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.order_id}: {self.action}"


class ServiceRecord(models.Model):
    """Service done outside an order (group activities, talks, clean-up days), uploaded by the sub-branch."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # The volunteer's home org when it was posted: stats follow it.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="service_records")
    volunteer = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="service_records")
    recipient = models.ForeignKey(Member, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    service_item = models.ForeignKey(ServiceItem, on_delete=models.PROTECT, related_name="service_records")
    minutes = models.PositiveIntegerField()
    multiplier = models.DecimalField(max_digits=6, decimal_places=3)
    credited_minutes = models.PositiveIntegerField()
    served_at = models.DateTimeField()
    memo = models.CharField(max_length=500, blank=True)
    transaction = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT, related_name="service_record")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"service record #{self.pk}"


SERVICE_STRIPES = 8  # rows per (bank, day, source), as the ledger's daily summary: concurrent writers rarely share one


class ServiceSource(models.TextChoices):
    ORDER = "order", _("订单")
    RECORD = "record", _("服务记录")


class DailyServiceSummary(models.Model):
    """The services a bank completed per day (Asia/Shanghai), kept where they are written (`timebank.orders.summary`):
    an order when it is credited (its `confirmed_at` day), a service record when it is posted (its transaction's
    day), in the same database transaction, so the head office's stats read a few thousand rows instead of a year
    of orders and records. `verify` recounts it. Striped by the order's or record's id, summed on read."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    source = models.CharField(max_length=6, choices=ServiceSource.choices)
    stripe = models.PositiveSmallIntegerField()
    services = models.BigIntegerField(default=0)
    # The sums of `actual_minutes` (orders) or `minutes` (records), and of `credited_minutes`.
    minutes = models.BigIntegerField(default=0)
    credited_minutes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "day", "source", "stripe"], name="daily_service_summary_key"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_id} {self.day} {self.source}: {self.services}"
