"""`manage.py purge_idempotency [--days N]`: forget stored Idempotency-Key answers older than N days (daily cron)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.ops.actions import DEFAULT_KEEP_DAYS, MAX_KEEP_DAYS, purge_idempotent_requests


class Command(BaseCommand):
    help = "删除超过 N 天的幂等键应答记录。Forget stored Idempotency-Key answers older than N days."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--days", type=int, default=DEFAULT_KEEP_DAYS, help=f"keep this many days (default {DEFAULT_KEEP_DAYS})"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if not 1 <= days <= MAX_KEEP_DAYS:
            raise CommandError(f"--days must be between 1 and {MAX_KEEP_DAYS}")
        self.stdout.write(f"deleted {purge_idempotent_requests(days)} stored answers")
