"""The task worker's part of federation: deliver pending transfers when their next attempt is due."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django_tasks import task

logger = logging.getLogger(__name__)


@task
def federation_sync() -> dict[str, Any]:
    """Deliver the pending outgoing transfers whose next attempt is due (as `manage.py federation_sync`)."""
    from timebank.federation.actions import sync

    result = sync(due_only=True)
    return {"delivered": result.delivered, "pending": result.pending}


def enqueue_sync(*, run_after: dt.datetime | None = None) -> None:
    """Ask the worker to deliver later. If the queue is down or cannot defer, `federation_sync` (cron) does it."""
    try:
        job = federation_sync
        if run_after is not None:
            if not job.get_backend().supports_defer:
                return
            job = job.using(run_after=run_after)
        job.enqueue()
    except Exception:
        logger.exception("could not enqueue federation_sync")
