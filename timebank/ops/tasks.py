"""Background housekeeping, on django-tasks (production runs `python manage.py db_worker`)."""

from __future__ import annotations

from django_tasks import task

from timebank.ops.actions import DEFAULT_KEEP_DAYS, purge_idempotent_requests


@task
def purge_idempotency(days: int = DEFAULT_KEEP_DAYS) -> int:
    """Forget stored `Idempotency-Key` answers older than `days`."""
    return purge_idempotent_requests(days)
