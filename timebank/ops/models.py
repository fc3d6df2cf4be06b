from __future__ import annotations

from django.db import models

from timebank.lib.clock import ClockDateTimeField


class IdempotentRequest(models.Model):
    """The claim of an idempotency key (timebank/ops/idempotency.py `once`) and what the write it named made.

    For the API (an `Idempotency-Key` header, or the body's `idempotency_key`) that is the 2xx answer; for a
    page's form (its hidden `idempotency_key`) what the action made, with `status` 0. The row is written in
    the same database transaction as the write itself, so after a crash either both exist or neither does: a
    client retrying with the same key gets the stored answer, or the write runs now. Kept 30 days
    (`purge_idempotency`).
    """

    scope = models.CharField(max_length=40)  # "user:<id>", like the ledger's idem_scope
    key = models.CharField(max_length=64)
    fingerprint = models.CharField(max_length=64)  # the request: method, path and body; or the form's action
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    status = models.PositiveSmallIntegerField(default=0)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.TextField(blank=True)
    created_at = ClockDateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "key"], name="idempotent_request_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.key} {self.status}"
