from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.ledger.reseal import reseal_chains


class Command(BaseCommand):
    help = (
        "Check the ledger and audit chains the old (unkeyed) way and re-seal them under CHAIN_KEY. "
        "Migration ledger/0009 does this once; run it again after restoring a backup made before."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="also re-seal chains that fail the old check (accepts the database as it is now)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = reseal_chains(force=options["force"])
        for name in report.resealed:
            self.stdout.write(f"re-sealed: {name}")
        for name in report.already_keyed:
            self.stdout.write(f"already keyed: {name}")
        for problem in report.refused:
            self.stderr.write(f"refused: {problem}")
        if report.refused:
            raise CommandError(f"{len(report.refused)} chain(s) fail the old check; nothing was changed in them")
