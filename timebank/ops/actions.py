"""Operations' own writes: housekeeping of what the middleware stores."""

from __future__ import annotations

import datetime as dt

from django.db import transaction

from timebank.audit.actions import record
from timebank.lib import clock
from timebank.ops.models import IdempotentRequest

DEFAULT_KEEP_DAYS = 30
MAX_KEEP_DAYS = 3660
BATCH = 1000


def purge_idempotent_requests(days: int = DEFAULT_KEEP_DAYS, *, now: dt.datetime | None = None) -> int:
    """Forget `Idempotency-Key` answers older than `days` (a retry that late runs the write again, as without
    the header). Deletes in batches, each its own transaction, so a large backlog never holds long locks.
    Answers how many were deleted."""
    if not 1 <= days <= MAX_KEEP_DAYS:
        raise ValueError("days must be between 1 and 3660")
    cutoff = (now or clock.now()) - dt.timedelta(days=days)
    total = 0
    while True:
        deleted = _purge_batch(cutoff)
        total += deleted
        if deleted < BATCH:
            break
    if total:
        _record_purge(cutoff, days, total)
    return total


@transaction.atomic
def _purge_batch(cutoff: dt.datetime) -> int:
    ids = list(
        IdempotentRequest.objects.filter(created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:BATCH]
    )
    deleted, _by_model = IdempotentRequest.objects.filter(pk__in=ids).delete()
    return deleted


@transaction.atomic
def _record_purge(cutoff: dt.datetime, days: int, total: int) -> None:
    record(
        None,
        "idempotency.purge",
        "idempotent_requests",
        object_type="idempotent_request",
        bank_id=None,
        data={"days": days, "before": cutoff.isoformat(), "deleted": total},
    )
