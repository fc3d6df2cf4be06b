"""`manage.py remind_activities`: remind everyone with a place in an activity that starts soon, once each
(run it hourly from cron, next to send_reminders)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.teams.actions import send_activity_reminders


class Command(BaseCommand):
    help = "提醒即将开始的活动（每位有名额的志愿者一次）。Remind volunteers of activities that start soon, once each."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=float, default=24.0, help="look this many hours ahead (default 24)")

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["hours"]
        if not 0 < hours <= 72:
            raise CommandError("--hours must be between 0 and 72")
        self.stdout.write(f"reminded {send_activity_reminders(hours)} sign-ups")
