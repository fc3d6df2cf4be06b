from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import close_old_connections

from timebank.ledger.actions import do_publish_checkpoint
from timebank.ledger.checkpoint import checkpoint_text, make_checkpoint


class Command(BaseCommand):
    help = (
        "Write a checkpoint of every hash chain's tip (bank, chain, seq, hash, time), signed with "
        "CHECKPOINT_SIGNING_KEY. Keep it outside the database; `verify --checkpoint FILE` proves it is extended. "
        "--publish also stores it for the public disclosure pages (/disclosure/checkpoints/), where `verify` "
        "starts from the latest; --every [MINUTES] publishes one every MINUTES (CHECKPOINT_EVERY_MINUTES) until "
        "stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", metavar="FILE", help="where to write it (default: standard output)")
        parser.add_argument("--publish", action="store_true", help="also publish it (stored and audited)")
        parser.add_argument(
            "--every",
            metavar="MINUTES",
            type=int,
            nargs="?",
            const=0,
            help="run as a loop publishing one every MINUTES (default CHECKPOINT_EVERY_MINUTES)",
        )
        parser.add_argument("--times", type=int, help="with --every: stop after publishing this many (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["every"] is not None:
            self._loop(options["every"] or settings.CHECKPOINT_EVERY_MINUTES, options["out"], options["times"])
            return
        text = do_publish_checkpoint(None).text if options["publish"] else checkpoint_text(make_checkpoint())
        self._write(text, options["out"])

    def _write(self, text: str, out: str | None) -> None:
        if out:
            path = Path(out)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            self.stderr.write(f"checkpoint written to {path}")
        else:
            sys.stdout.write(text)

    def _loop(self, minutes: int, out: str | None, times: int | None) -> None:
        if minutes < 1:
            raise CommandError("--every wants a whole number of minutes, 1 or more")
        if times is not None and times < 1:
            raise CommandError("--times wants 1 or more")
        stop = False

        def _stop(*_a: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        while not stop:
            started = time.monotonic()
            row = do_publish_checkpoint(None)
            self.stderr.write(f"checkpoint {row.pk} published ({row.made_at.isoformat()})")
            if out:
                self._write(row.text, out)
            if times is not None:
                times -= 1
                if times == 0:
                    break
            close_old_connections()
            while not stop and time.monotonic() - started < minutes * 60:
                time.sleep(1)
