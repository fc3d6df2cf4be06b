"""通知公告: notices an org publishes to its subtree, and who has read them."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.orgs.models import Org


class Audience(models.TextChoices):
    STAFF = "staff", _("仅工作人员")
    VOLUNTEERS = "volunteers", _("志愿者")
    EVERYONE = "everyone", _("所有人")


class NoticeSource(models.TextChoices):
    MANUAL = "manual", _("人工发布")
    RULES = "rules", _("规则变更")
    SETTLEMENT = "settlement", _("结算")


class Notice(models.Model):
    # The publishing org: the notice reaches this org's subtree.
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="notices")
    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    title = models.CharField(max_length=100)
    body = models.TextField()
    audience = models.CharField(max_length=12, choices=Audience.choices, default=Audience.EVERYONE)
    pinned = models.BooleanField(default=False)
    # Shown through this day (Asia/Shanghai); null: until withdrawn.
    expires_on = models.DateField(null=True, blank=True)
    source = models.CharField(max_length=12, choices=NoticeSource.choices, default=NoticeSource.MANUAL)
    # Automatic notices are published once per event (e.g. "settlement:12").
    source_key = models.CharField(max_length=64, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    published_at = models.DateTimeField(default=clock.now)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    withdrawn_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [models.Index(fields=["org", "published_at"]), models.Index(fields=["bank", "published_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "source_key"], condition=~Q(source_key=""), name="notice_source_key_unique"
            )
        ]

    def __str__(self) -> str:
        return self.title

    def is_live(self, today: dt.date | None = None) -> bool:
        day = today or clock.localdate()
        return self.withdrawn_at is None and (self.expires_on is None or self.expires_on >= day)


class NoticeRead(models.Model):
    notice = models.ForeignKey(Notice, on_delete=models.CASCADE, related_name="reads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField(default=clock.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["notice", "user"], name="notice_read_once")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.notice_id}"
