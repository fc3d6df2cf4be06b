from __future__ import annotations

from django.conf import settings
from django.db import models

from timebank.lib.clock import ClockDateTimeField
from timebank.members.models import Member
from timebank.orgs.models import Org


class IssuedCertificate(models.Model):
    """A volunteer service certificate (志愿服务证明) as issued: its content is frozen and sealed by a keyed hash,
    so the public check page can tell a genuine certificate from an altered or invented one."""

    serial = models.CharField(max_length=32, unique=True)
    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="service_certificates")
    period_start = models.DateField()
    period_end = models.DateField()
    # What the certificate says (name, masked ID number, hours by category): the PDF is drawn from it.
    content = models.JSONField()
    digest = models.CharField(max_length=64)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["member", "-created_at"])]

    def __str__(self) -> str:
        return self.serial
