from __future__ import annotations

from django.db import models


class IdempotentRequest(models.Model):
    """An API write sent with an `Idempotency-Key` header, and the 2xx answer it got.

    The row is written in the same database transaction as the write itself, so after a crash either both
    exist or neither does: a client retrying with the same key gets the stored answer, or the write runs now.
    """

    scope = models.CharField(max_length=40)  # "user:<id>", like the ledger's idem_scope
    key = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)  # method, path and body
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField(default=0)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotent_request_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} {self.status}"
