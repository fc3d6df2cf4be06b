from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orgs.models import Org


class NotifyChannel(models.TextChoices):
    OUTBOX = "outbox", _("站内消息")
    EMAIL = "email", _("电子邮件")
    SMS = "sms", _("短信")
    WECHAT = "wechat", _("微信消息")


class NotificationStatus(models.TextChoices):
    PENDING = "pending", _("待发送")
    SENT = "sent", _("已发送")
    FAILED = "failed", _("发送失败")
    # No provider is configured for the channel (SMS in the demo and tests): kept so staff can read it out.
    NOT_CONFIGURED = "not_configured", _("未配置短信服务")


class Notification(models.Model):
    """One message to one person on one channel. The outbox channel is the in-app inbox."""

    bank = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # A member without a login still gets outbox and SMS messages; a staff login has no member.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications"
    )
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    channel = models.CharField(max_length=10, choices=NotifyChannel.choices)
    template = models.CharField(max_length=40)
    title = models.CharField(max_length=100)
    body = models.CharField(max_length=500)
    # Template parameters for SMS and WeChat: only what the recipient may see anyway.
    payload = models.JSONField(default=dict, blank=True)
    urgent = models.BooleanField(default=False)
    status = models.CharField(max_length=14, choices=NotificationStatus.choices, default=NotificationStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    # When the next try may run; also a short lease while a sender holds it. Null: no more tries.
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["user", "channel", "read_at"]),
            models.Index(fields=["member", "channel", "read_at"]),
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["order", "template"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | Q(member__isnull=False), name="notification_has_recipient"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} → {self.user_id or ''}/{self.member_id or ''} ({self.channel}, {self.status})"


class StaffDuty(models.Model):
    """Whether a staff or operator login is on duty: urgent orders reach those who are."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="duty")
    on_duty = models.BooleanField(default=False)
    updated_at = ClockDateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user_id}: {'on' if self.on_duty else 'off'} duty"


class WeChatBinding(models.Model):
    """The login's openid on the bank's WeChat official account (set by a WeChat login flow)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wechat")
    openid = models.CharField(max_length=64)
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"wechat of {self.user_id}"


class OrderReminder(models.Model):
    """A reminder was sent for this order and volunteer: reminders go out once (a new volunteer gets one too)."""

    order = models.ForeignKey("orders.Order", on_delete=models.CASCADE, related_name="+")
    volunteer = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["order", "volunteer"], name="order_reminder_once")]

    def __str__(self) -> str:
        return f"reminder for order {self.order_id}"


class SmsLoginCode(models.Model):
    """A one-time login code sent by SMS to a phone: only its hash is kept. A new code replaces the phone's
    earlier ones; after MAX_WRONG wrong tries the code is refused until a new one is sent."""

    phone = models.CharField(max_length=20, unique=True)
    code_hash = models.CharField(max_length=128)
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    wrong = models.PositiveSmallIntegerField(default=0)
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"login code for member {self.member_id}"
