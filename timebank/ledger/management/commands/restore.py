from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.ledger.backup import BackupError, restore
from timebank.ledger.verify import verify


class Command(BaseCommand):
    help = (
        "Replace the configured database's contents with a backup written by `backup`, check the balances "
        "against its manifest, then run the ledger verification. Restore into a fresh database when you can."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--yes", action="store_true", help="do not ask before replacing the data")

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["path"]
        if not options["yes"]:
            answer = input(f"Replace everything in the configured database with {path}? Type 'yes': ")
            if answer.strip() != "yes":
                raise CommandError("restore cancelled")
        try:
            snapshot = restore(path)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        report = verify()
        for problem in report.problems:
            self.stderr.write(problem)
        if not report.ok:
            raise CommandError(f"restored, but verify found {len(report.problems)} problem(s)")
        self.stdout.write(
            f"restored {path}: {snapshot['transactions']} transactions, {snapshot['accounts']} accounts, "
            f"balances match the manifest; verify ok"
        )
