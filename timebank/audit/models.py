from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from timebank.lib.hashchain import GENESIS, head_seal


class ChainHead(models.Model):
    """The tip of one bank's two hash chains (ledger and audit).

    Only the sealer writes it (timebank/audit/sealing.py): writers insert unsealed rows and never wait for it.
    """

    scope = models.CharField(max_length=40, unique=True)  # "bank:<id>" or "global"
    ledger_seq = models.BigIntegerField(default=0)
    ledger_hash = models.CharField(max_length=64, default=GENESIS)
    audit_seq = models.BigIntegerField(default=0)
    audit_hash = models.CharField(max_length=64, default=GENESIS)
    # A keyed MAC of the four values above: rewinding the head to an older row (after deleting the tail)
    # needs the key. Kept by save(); `verify` checks it.
    seal = models.CharField(max_length=64, blank=True, default="")

    def __str__(self) -> str:
        return self.scope

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.seal = head_seal(self.scope, self.ledger_seq, self.ledger_hash, self.audit_seq, self.audit_hash)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], "seal"}
        super().save(*args, **kwargs)


class AuditEntry(models.Model):
    scope = models.CharField(max_length=40)
    # seq, prev_hash and hash are filled by the sealer after the entry committed (timebank/audit/sealing.py).
    seq = models.BigIntegerField(null=True, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=60)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=40)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "seq"], name="audit_scope_seq_unique")]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            # The sealer's queue: a chain's entries not linked yet, in id order.
            models.Index(fields=["scope", "id"], condition=models.Q(seq__isnull=True), name="audit_unsealed"),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.scope}#{self.seq} {self.action}"
