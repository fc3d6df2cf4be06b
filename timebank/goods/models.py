from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orgs.models import Org


class Goods(models.Model):
    """An outlet's goods for redemption (兑换物品), priced in minutes."""

    outlet = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="goods")
    name = models.CharField(max_length=100)
    price_minutes = models.PositiveIntegerField()
    stock = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "goods"
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="goods_stock_not_negative"),
            models.CheckConstraint(condition=Q(price_minutes__gt=0), name="goods_price_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class StockMovementKind(models.TextChoices):
    RESTOCK = "restock", _("入库")
    COUNT = "count", _("盘点")
    REDEMPTION = "redemption", _("兑换")
    REVERSAL = "reversal", _("冲正退回")


class StockMovement(models.Model):
    goods = models.ForeignKey(Goods, on_delete=models.PROTECT, related_name="movements")
    kind = models.CharField(max_length=12, choices=StockMovementKind.choices)
    change = models.IntegerField()
    stock_after = models.PositiveIntegerField()
    note = models.CharField(max_length=200, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.goods_id} {self.kind} {self.change}"


class VoucherStatus(models.TextChoices):
    ISSUED = "issued", _("待领取")
    HANDED_OVER = "handed_over", _("已领取")
    # The redemption was reversed: the minutes and the stock went back, the voucher can no longer be used.
    VOID = "void", _("已作废")


class Redemption(models.Model):
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="redemptions")
    goods = models.ForeignKey(Goods, on_delete=models.PROTECT, related_name="redemptions")
    outlet = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()
    minutes = models.PositiveIntegerField()
    transaction = models.OneToOneField("ledger.Transaction", on_delete=models.PROTECT, related_name="redemption")
    # The voucher: a random code printed as a QR code and checked at the outlet, usable once.
    voucher_code = models.CharField(max_length=32, unique=True)
    status = models.CharField(max_length=12, choices=VoucherStatus.choices, default=VoucherStatus.ISSUED)
    handed_over_at = models.DateTimeField(null=True, blank=True)
    handed_over_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    voided_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"redemption #{self.pk}"


class MemberCard(models.Model):
    """The member card (会员卡): its code proves the member is present at an outlet outside their community.

    The code itself is not stored: it is an HMAC of the server secret, the member, this salt and the version,
    so a copy of the database alone does not reveal it, and re-issuing (new salt) kills the old one."""

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="card")
    salt = models.CharField(max_length=32)
    version = models.PositiveIntegerField(default=1)
    issued_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"card of {self.member_id} v{self.version}"


class WrongCardCode(models.Model):
    """A wrong card code typed at an outlet: counted per staff login, so guesses cannot be spread over members."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    outlet = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True, db_index=True)
    # The card's version when typed, and when a right code or an unlock by the member's home staff ended this
    # run of wrong codes: the lock is per card and staff login (timebank.goods.actions._check_card_code).
    card_version = models.PositiveIntegerField(default=0)
    cleared_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["actor", "created_at"], name="goods_wrongcode_actor_at"),
            models.Index(fields=["member", "actor"], name="goods_wrongcode_member_actor"),
        ]

    def __str__(self) -> str:
        return f"wrong code for {self.member_id} by {self.actor_id}"
