"""The funds' scheduled work on django-tasks (the schedule is `manage.py guarantee_orders` from cron)."""

from __future__ import annotations

from typing import Any

from django_tasks import task


@task
def guarantee_orders() -> dict[str, Any]:
    """刚性兑付: buy the service of every order paid from stored time that waited past its bank's
    `guarantee_after_days`. Safe to run twice: a bought order is confirmed and is not bought again."""
    from timebank.funds.guarantee import run_guarantee

    report = run_guarantee()
    return {"served": report.served, "refused": {str(k): v for k, v in report.refused.items()}}
