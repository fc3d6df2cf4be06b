"""`manage.py send_reminders`: remind accepted orders that start soon (run it every few minutes from cron)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.notify.actions import send_reminders


class Command(BaseCommand):
    help = "提醒即将开始的服务（志愿者和服务对象各一条，每单一次）。Remind orders that start soon, once per order."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--hours",
            type=float,
            default=None,
            help=f"look this many hours ahead (default NOTIFY_REMINDER_HOURS = {getattr(settings, 'NOTIFY_REMINDER_HOURS', 2)})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["hours"]
        if hours is not None and not 0 < hours <= 72:
            raise CommandError("--hours must be between 0 and 72")
        self.stdout.write(f"reminded {send_reminders(hours)} orders")
