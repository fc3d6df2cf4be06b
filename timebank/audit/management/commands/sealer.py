from __future__ import annotations

import json
import signal
import statistics
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from timebank.audit.sealing import BATCH, Sealed, seal_all


class Command(BaseCommand):
    help = (
        "Run the chain sealer as its own process (CHAIN_SEALING=process): link every committed ledger transaction "
        "and audit entry into its bank's hash chains, in batches, polling for new rows. One per deployment is "
        "enough; a second one takes only the banks the first is not sealing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=BATCH, help="rows per chain per database transaction")
        parser.add_argument("--idle", type=float, default=0.02, help="seconds to sleep when nothing is left")
        parser.add_argument("--once", action="store_true", help="seal what is there and stop")
        parser.add_argument(
            "--stats", metavar="FILE", help="on exit, write the sealing delays (p50/p99/max, seconds) as JSON"
        )
        parser.add_argument("--ready", metavar="FILE", help="create FILE once the first pass is done (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = False

        def _stop(*_a: object) -> None:
            nonlocal stop
            stop = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        result = Sealed(delays=[] if options["stats"] else None)
        while not stop:
            before = result.rows
            seal_all(limit=options["batch"], result=result)
            if options["ready"]:
                Path(options["ready"]).touch()
                options["ready"] = None
            if options["once"]:
                break
            if result.rows == before:
                close_old_connections()
                time.sleep(options["idle"])
        if options["stats"]:
            Path(options["stats"]).write_text(json.dumps(delay_stats(result)), encoding="utf-8")
        self.stderr.write(f"sealer: {result.rows} rows sealed")


def delay_stats(result: Sealed) -> dict[str, float]:
    delays = sorted(result.delays or [0.0])
    q = statistics.quantiles(delays, n=100) if len(delays) > 1 else delays * 99
    return {"rows": result.rows, "p50": q[49], "p99": q[98], "max": delays[-1]}
