from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.ledger.verify import verify


class Command(BaseCommand):
    help = "Recompute every balance from the legs and walk the ledger and audit hash chains."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bank", type=int, action="append", help="only this head office (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify(options["bank"])
        for problem in report.problems:
            self.stderr.write(problem)
        if not report.ok:
            raise CommandError(f"{len(report.problems)} problem(s) in {report.transactions} transactions")
        self.stdout.write(f"ok: {report.transactions} transactions, balances and chains intact")
