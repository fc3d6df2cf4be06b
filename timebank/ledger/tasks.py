"""Background work started from the pages, on django-tasks. Production runs `python manage.py db_worker`; the
immediate backend (tests, the demo's DEBUG server) runs a task as soon as it is enqueued."""

from __future__ import annotations

import logging
from typing import Any

from django_tasks import task

from timebank.ledger.models import Settlement
from timebank.ledger.settlement import run_settlement

logger = logging.getLogger(__name__)


@task
def continue_settlement(settlement_id: int) -> dict[str, Any]:
    """Settle every member not settled yet. Resumable and safe to run twice: each batch is skipped when done."""
    settlement = run_settlement(Settlement.objects.get(pk=settlement_id))
    return {"status": settlement.status, "members": settlement.members, "moved_minutes": settlement.moved_minutes}


def enqueue_settlement(settlement_id: int) -> None:
    """Hand the run to the task queue. If the queue is down, the page offers to continue, and `manage.py settle`
    resumes it too."""
    try:
        continue_settlement.enqueue(settlement_id)
    except Exception:
        logger.exception("could not enqueue settlement %s", settlement_id)


@task
def publish_checkpoint() -> dict[str, Any]:
    """Publish a signed checkpoint (on demand from a worker; the schedule is `manage.py checkpoint --every`)."""
    from timebank.ledger.actions import do_publish_checkpoint

    row = do_publish_checkpoint(None)
    return {"checkpoint": row.pk, "made_at": row.made_at.isoformat()}


@task
def yearly_grants(year: int | None = None) -> dict[str, Any]:
    """Post this year's grants of time (the head offices' `yearly_grant_*` rules). Safe to run any number of
    times a year: each member is granted once (the schedule is `manage.py yearly_grants` from cron)."""
    from timebank.ledger.grants import run_yearly_grants

    report = run_yearly_grants(year)
    return {"year": report.year, "granted": len(report.granted), "already": report.already, "minutes": report.minutes}
