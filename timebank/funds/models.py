from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.orgs.models import Org


class Direction(models.TextChoices):
    INCOME = "income", _("收入")
    EXPENSE = "expense", _("支出")


class Source(models.TextChoices):
    """政府投一点、社会帮一点、企业捐一点、居民筹一点."""

    GOVERNMENT = "government", _("政府投入")
    SOCIETY = "society", _("社会帮扶")
    ENTERPRISE = "enterprise", _("企业捐赠")
    RESIDENTS = "residents", _("居民筹集")


class ExpenseKind(models.TextChoices):
    GOODS_PURCHASE = "goods_purchase", _("购买兑换物品")
    INSURANCE = "insurance", _("保险费")
    TRAINING = "training", _("培训")
    AWARDS = "awards", _("表彰奖励")
    MARKET_SERVICES = "market_services", _("购买市场服务")
    OPERATIONS = "operations", _("运营")


class Fund(models.TextChoices):
    GENERAL = "general", _("一般资金")
    EMERGENCY = "emergency", _("专项基金")


class FundEntry(models.Model):
    """One line of an org's fund ledger, in yuan. Never edited: a correction is a reversing entry."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="fund_entries")
    direction = models.CharField(max_length=8, choices=Direction.choices)
    source = models.CharField(max_length=12, choices=Source.choices, blank=True)
    kind = models.CharField(max_length=16, choices=ExpenseKind.choices, blank=True)
    fund = models.CharField(max_length=10, choices=Fund.choices, default=Fund.GENERAL)
    # Positive; a reversing entry carries the negated amount, so plain sums give the corrected totals.
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    occurred_on = models.DateField()
    description = models.CharField(max_length=500, blank=True)
    # An enterprise's name may be disclosed; anyone else's never is (residents show as "居民").
    donor_name = models.CharField(max_length=100, blank=True)
    # The paid provider of a bought service (a company).
    provider = models.CharField(max_length=100, blank=True)
    in_kind = models.BooleanField(default=False)
    item_description = models.CharField(max_length=200, blank=True)
    goods = models.ForeignKey(
        "goods.Goods", null=True, blank=True, on_delete=models.PROTECT, related_name="fund_entries"
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="fund_entries"
    )
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = ClockDateTimeField(auto_now_add=True)
    idem_scope = models.CharField(max_length=40, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL stays out of the unique key
    fingerprint = models.CharField(max_length=64, blank=True)

    class Meta:
        verbose_name_plural = "fund entries"
        indexes = [models.Index(fields=["bank", "occurred_on"])]
        constraints = [
            models.CheckConstraint(
                condition=(Q(reverses__isnull=True) & Q(amount__gt=Decimal(0)))
                | (Q(reverses__isnull=False) & Q(amount__lt=Decimal(0))),
                name="fund_entry_amount_sign",
            ),
            models.CheckConstraint(
                condition=(Q(direction="income") & ~Q(source="") & Q(kind=""))
                | (Q(direction="expense") & Q(source="") & ~Q(kind="") & Q(in_kind=False)),
                name="fund_entry_source_or_kind",
            ),
            # One emergency purchase per order (its reversal is the only other entry naming it).
            models.UniqueConstraint(
                fields=["order"], condition=Q(order__isnull=False, reverses__isnull=True), name="fund_entry_order_once"
            ),
            models.UniqueConstraint(
                fields=["idem_scope", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="fund_entry_idempotency_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.direction} {self.amount} ({self.org_id})"

    @property
    def category(self) -> str:
        return self.source or self.kind
