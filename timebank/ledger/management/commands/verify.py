from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.audit.sealing import seal_all
from timebank.ledger.checkpoint import load_checkpoint
from timebank.ledger.verify import verify


class Command(BaseCommand):
    help = (
        "Recompute every balance from the legs, walk the keyed ledger and audit hash chains, compare the live "
        "rules, accounts and credited orders with them; with --checkpoint, prove the database still extends a "
        "signed checkpoint kept elsewhere."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bank", type=int, action="append", help="only this head office (repeatable)")
        parser.add_argument("--checkpoint", metavar="FILE", help="a signed checkpoint from `manage.py checkpoint`")
        parser.add_argument("--seal", action="store_true", help="seal what is waiting for the sealer first")

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = None
        if options["checkpoint"]:
            try:
                checkpoint = load_checkpoint(Path(options["checkpoint"]).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the checkpoint {options['checkpoint']}: {exc}") from exc
        if options["seal"]:
            seal_all()
        report = verify(options["bank"], checkpoint=checkpoint)
        for problem in report.problems:
            self.stderr.write(problem)
        if not report.ok:
            raise CommandError(f"{len(report.problems)} problem(s) in {report.transactions} transactions")
        extends = " and extend the checkpoint" if checkpoint is not None else ""
        waiting = sum(report.unsealed.values())
        still = f"; {waiting} row(s) still waiting for the sealer" if waiting else ""
        self.stdout.write(f"ok: {report.transactions} transactions, balances and chains intact{extends}{still}")
