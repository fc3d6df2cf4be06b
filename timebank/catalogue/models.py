from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.orgs.models import Org


class Category(models.TextChoices):
    """The ten categories of the first seed (十大类服务清单)."""

    MUTUAL_CARE = "mutual_care", _("互助养老")
    HARDSHIP_HELP = "hardship_help", _("社区帮困")
    TUTORING = "tutoring", _("义务家教")
    LEGAL_AID = "legal_aid", _("法律援助")
    PUBLIC_SAFETY = "public_safety", _("社区治安")
    HEALTH_CARE = "health_care", _("医疗保健")
    HEALTH_TALKS = "health_talks", _("健康讲座")
    COMMUNITY_EDUCATION = "community_education", _("社区教育")
    CULTURE_SPORTS = "culture_sports", _("社区文体")
    ENVIRONMENT = "environment", _("社区环保")


class Tier(models.TextChoices):
    ORDINARY = "ordinary", _("普通服务")
    TECHNICAL = "technical", _("技术服务")
    PROFESSIONAL = "professional", _("专业服务")


class CertificateKind(models.TextChoices):
    NURSING = "nursing", _("护理")
    COUNSELLING = "counselling", _("心理咨询")
    LEGAL = "legal", _("法律")
    ELECTRICIAN = "electrician", _("电工")
    MEDICAL = "medical", _("医师")
    FIRST_AID = "first_aid", _("急救")


class ServiceItem(models.Model):
    head_office = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="service_items")
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=30, choices=Category.choices)
    tier = models.CharField(max_length=20, choices=Tier.choices)
    requires_certificate = models.CharField(max_length=20, choices=CertificateKind.choices, blank=True)
    description = models.CharField(max_length=500, blank=True)
    active = models.BooleanField(default=True)
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["head_office", "name"], name="service_item_name_per_bank")]

    def __str__(self) -> str:
        return self.name


class MenuEntry(models.Model):
    """制单: a sub-branch publishes which items it offers, when and where."""

    org = models.ForeignKey(Org, on_delete=models.CASCADE, related_name="menu")
    item = models.ForeignKey(ServiceItem, on_delete=models.CASCADE, related_name="menu_entries")
    times = models.CharField(max_length=200, blank=True)
    place = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["org", "item"], name="menu_entry_unique")]

    def __str__(self) -> str:
        return f"{self.org_id}: {self.item_id}"
