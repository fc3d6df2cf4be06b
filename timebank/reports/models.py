"""The thresholds that raise the 供不应求 (demand exceeding supply) alerts: one row per head office."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.orgs.models import Org


class RiskRules(models.Model):
    head_office = models.OneToOneField(Org, on_delete=models.CASCADE, related_name="risk_rules")
    # Capacity is the credited service minutes per month over this many past months.
    window_months = models.PositiveSmallIntegerField(_("计算能力的月数"), default=6)
    # Used when the head office's rules set no reserve_min_age.
    default_reserve_age = models.PositiveSmallIntegerField(_("默认可支取储存时间的年龄"), default=60)
    # Alert when the credits owed would take more months than this to honour.
    max_months_to_honour = models.PositiveIntegerField(_("兑付月数上限"), default=24)
    # Alert when the share of orders no volunteer was found for reaches this percentage.
    max_unfilled_percent = models.PositiveSmallIntegerField(_("未派出订单比例上限（%）"), default=20)
    # Alert when, N years ahead, those reaching the reserve age outnumber the new volunteers by this percentage.
    max_ageing_percent = models.PositiveSmallIntegerField(_("到龄人数超过新增人数的比例上限（%）"), default=100)
    # The anomaly report: credits to one member above these are shown on the dashboards.
    anomaly_daily_hours = models.PositiveSmallIntegerField(_("一人一天记入超过多少小时提醒"), default=12)
    anomaly_yearly_hours = models.PositiveIntegerField(_("一人一年记入超过多少小时提醒"), default=1000)
    updated_at = ClockDateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"risk rules of {self.head_office_id}"
