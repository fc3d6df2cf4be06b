"""Rebuild the head office's stats summaries from their rows: the repair for the drift `verify` reports.

Each summary of each bank is rebuilt by its app's action in a transaction of its own, holding that summary's
table against writers while it recounts (`timebank.lib.summaries`); a table still busy after `--lock-timeout`
seconds is refused with nothing changed, and the command goes on with the rest and exits non-zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.ledger.actions import do_rebuild_daily_summary
from timebank.lib.errors import ApiError
from timebank.lib.summaries import LOCK_TIMEOUT_SECONDS, Rebuilt
from timebank.members.actions import do_rebuild_member_counts
from timebank.orders.actions import do_rebuild_service_summary
from timebank.orgs.models import Org, OrgKind

REBUILDS: dict[str, Callable[..., Rebuilt]] = {
    "ledger": do_rebuild_daily_summary,
    "services": do_rebuild_service_summary,
    "members": do_rebuild_member_counts,
}


def positive_seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 600:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = (
        "Rebuild the summaries the head office's stats read (the ledger's daily summary, the services' daily "
        "summary, the head counts by join day) from their rows, where `verify` reports drift: only the rows that "
        "differ are written, each bank and summary in one transaction that holds the summary's table against "
        "writers (readers go on). Prints the rows added, changed and removed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bank", type=int, action="append", help="only this head office (repeatable)")
        parser.add_argument("--only", choices=sorted(REBUILDS), action="append", help="only this summary (repeatable)")
        parser.add_argument("--dry-run", action="store_true", help="count what would change; write nothing")
        parser.add_argument(
            "--lock-timeout",
            type=positive_seconds,
            default=LOCK_TIMEOUT_SECONDS,
            metavar="SECONDS",
            help=f"wait at most this long for writers in flight (default {LOCK_TIMEOUT_SECONDS:g})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        banks = Org.objects.filter(kind=OrgKind.HEAD_OFFICE).order_by("pk")
        if options["bank"]:
            wanted = set(options["bank"])
            banks = banks.filter(pk__in=wanted)
            unknown = wanted - set(banks.values_list("pk", flat=True))
            if unknown:
                raise CommandError(f"no head office {', '.join(map(str, sorted(unknown)))}")
        names = [name for name in REBUILDS if not options["only"] or name in options["only"]]
        dry = options["dry_run"]
        failed: list[str] = []
        totals = [0, 0, 0]
        for bank in banks:
            for name in names:
                try:
                    done = REBUILDS[name](None, bank, dry_run=dry, lock_timeout=options["lock_timeout"])
                except ApiError as exc:
                    failed.append(f"bank {bank.pk} {name}: {exc.message}")
                    self.stderr.write(failed[-1])
                    continue
                self.stdout.write(f"bank {bank.pk} ({bank.name}) {name}: {describe(done)}")
                totals = [totals[0] + done.added, totals[1] + done.changed, totals[2] + done.removed]
        verb = "would be" if dry else "were"
        self.stdout.write(
            f"{'dry run, nothing written: ' if dry else ''}{totals[0]} row(s) {verb} added, {totals[1]} changed, "
            f"{totals[2]} removed"
        )
        if failed:
            raise CommandError(f"{len(failed)} summary(ies) not rebuilt: " + "; ".join(failed))


def describe(done: Rebuilt) -> str:
    if not done.rows:
        return "unchanged"
    counted = f"{done.added} added, {done.changed} changed, {done.removed} removed"
    return f"{counted} (dry run)" if done.dry_run else counted
