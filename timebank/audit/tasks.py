"""The sealer as a task for the django-tasks worker (`python manage.py db_worker`), for deployments that would
rather not run `manage.py sealer` as a separate service: enqueue it on a schedule (cron) or after a burst."""

from __future__ import annotations

from django_tasks import task

from timebank.audit.sealing import seal_all


@task
def seal_chains() -> int:
    return seal_all().rows
