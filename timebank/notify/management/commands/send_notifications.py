"""`manage.py send_notifications`: send pending notifications and retry failed ones that are due (cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from timebank.notify.actions import send_due


class Command(BaseCommand):
    help = "发送待发送的通知，并重试到期的失败通知。Send pending notifications and retry failed ones that are due."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="at most this many (default 500)")
        parser.add_argument(
            "--retry-failed",
            action="store_true",
            help="also retry failed ones now, even those given up (e.g. after configuring SMS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = send_due(limit=max(1, options["limit"]), force=options["retry_failed"])
        self.stdout.write(f"sent {counts['sent']}, failed {counts['failed']}")
