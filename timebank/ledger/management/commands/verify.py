from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.audit.sealing import seal_all
from timebank.ledger.checkpoint import load_checkpoint
from timebank.ledger.verify import Report, verify


class Command(BaseCommand):
    help = (
        "Recompute every balance from the legs, walk the keyed ledger and audit hash chains, compare the live "
        "rules, accounts and credited orders with them; with --checkpoint, prove the database still extends a "
        "signed checkpoint kept elsewhere. By default it starts from the latest published checkpoint whose "
        "signature verifies (chains walked and balances checked from there on); --full walks everything and "
        "recounts every balance from its legs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bank", type=int, action="append", help="only this head office (repeatable)")
        parser.add_argument("--checkpoint", metavar="FILE", help="a signed checkpoint from `manage.py checkpoint`")
        parser.add_argument("--seal", action="store_true", help="seal what is waiting for the sealer first")
        parser.add_argument(
            "--full", action="store_true", help="walk every chain from genesis and recount every balance"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checkpoint = None
        if options["checkpoint"]:
            try:
                checkpoint = load_checkpoint(Path(options["checkpoint"]).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CommandError(f"cannot read the checkpoint {options['checkpoint']}: {exc}") from exc
        if options["seal"]:
            seal_all()
        report = verify(options["bank"], checkpoint=checkpoint, incremental=not options["full"])
        for problem in report.problems:
            self.stderr.write(problem)
        self.stdout.write(describe_mode(report))
        if not report.ok:
            raise CommandError(f"{len(report.problems)} problem(s) in {report.transactions} transactions")
        extends = " and extend the checkpoint" if checkpoint is not None else ""
        waiting = sum(report.unsealed.values())
        still = f"; {waiting} row(s) still waiting for the sealer" if waiting else ""
        walked = "walked" if report.mode == "full" else "walked after the checkpoint"
        self.stdout.write(
            f"ok: {report.transactions} transactions {walked}, balances and chains intact{extends}{still}"
        )


def describe_mode(report: Report) -> str:
    if report.base is not None:
        row = report.base.row
        return (
            f"mode: incremental, from published checkpoint {row.pk} made at {row.made_at.isoformat()} "
            "(rows before it are not re-hashed and balances not re-summed; --full does both)"
        )
    why = f" ({report.why_full})" if report.why_full else ""
    return f"mode: full, every chain from genesis and every balance recounted{why}"
