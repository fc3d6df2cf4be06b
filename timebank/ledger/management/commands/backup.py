from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.ledger.backup import BackupError, backup


class Command(BaseCommand):
    help = (
        "Write a consistent copy of the database to PATH (pg_dump custom format on PostgreSQL, the online "
        "backup API on SQLite) and a manifest with a digest of every balance to PATH.json. Safe while serving."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            manifest = backup(options["path"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        ledger = manifest["ledger"] or {}
        self.stdout.write(
            f"backup written: {options['path']} ({manifest['bytes']} bytes, {manifest['vendor']}, "
            f"{ledger.get('transactions', '?')} transactions, {ledger.get('accounts', '?')} accounts)"
        )
        if options["verbosity"] > 1:
            self.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False))
