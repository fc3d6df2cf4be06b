from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from timebank.ledger.checkpoint import make_checkpoint


class Command(BaseCommand):
    help = (
        "Write a checkpoint of every hash chain's tip (bank, chain, seq, hash, time), signed with "
        "CHECKPOINT_SIGNING_KEY. Keep it outside the database; `verify --checkpoint FILE` proves it is extended."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", metavar="FILE", help="where to write it (default: standard output)")

    def handle(self, *args: Any, **options: Any) -> None:
        text = json.dumps(make_checkpoint(), indent=2, ensure_ascii=False) + "\n"
        if options["out"]:
            path = Path(options["out"])
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            self.stderr.write(f"checkpoint written to {path}")
        else:
            sys.stdout.write(text)
