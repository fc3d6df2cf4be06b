"""Background work, on django-tasks. Production runs `python manage.py db_worker`; with the immediate
backend (tests, a DEBUG runserver) a task runs as soon as it is enqueued."""

from __future__ import annotations

from django_tasks import task

from timebank.notify import actions


@task
def send_notification(notification_id: int) -> str:
    """Deliver one notification (enqueued after its commit; retries are enqueued with a delay)."""
    n = actions.do_send_notification(notification_id)
    return n.status if n is not None else "not_due"


@task
def send_due_notifications(limit: int = 500) -> dict[str, int]:
    """Send everything due: pending ones the queue missed and failed ones whose retry time has come."""
    return actions.send_due(limit=limit)


@task
def send_reminders(hours: float | None = None) -> int:
    """Remind volunteers and recipients of accepted orders that start soon."""
    return actions.send_reminders(hours)
