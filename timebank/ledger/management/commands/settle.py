from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from timebank.ledger.settlement import run_settlement, start_settlement
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.orgs.models import Org, OrgKind, Rules, SettlementPeriod


def last_boundary(today: dt.date, period: str) -> dt.date:
    """The most recent half-year or year end on or before `today`."""
    year_end = dt.date(today.year - 1, 12, 31)
    if period == SettlementPeriod.HALF_YEAR and today >= dt.date(today.year, 6, 30):
        return dt.date(today.year, 6, 30)
    return year_end


class Command(BaseCommand):
    help = (
        "Settle head offices: move earned minutes into goods and reserve. With --due, settle every bank whose "
        "half-year or year boundary has passed (the scheduled job): a bank already settled for a later period is "
        "skipped, and a bank that fails is named at the end, after the others are settled. Interrupted runs resume."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bank", type=int, help="head office id")
        parser.add_argument("--period-end", type=dt.date.fromisoformat, help="YYYY-MM-DD (default: the last boundary)")
        parser.add_argument("--due", action="store_true", help="every bank at its last boundary")

    def handle(self, *args: Any, **options: Any) -> None:
        banks = Org.objects.filter(kind=OrgKind.HEAD_OFFICE)
        if options["bank"]:
            banks = banks.filter(pk=options["bank"])
            if not banks.exists():
                raise CommandError(f"no head office {options['bank']}")
        elif not options["due"]:
            raise CommandError("name a --bank, or use --due")
        today = clock.localdate()
        scheduled = not options["bank"]
        failed: list[str] = []
        for bank in banks:
            period = Rules.objects.values_list("settlement_period", flat=True).get(head_office=bank)
            period_end = options["period_end"] or last_boundary(today, period)
            try:
                settlement, already = start_settlement(None, bank, period_end)
            except ApiError as exc:
                if not scheduled:
                    raise CommandError(f"{bank.name}: {exc.message}") from exc
                # The scheduled run settles every bank it can: one bank settled past this period by hand
                # (period_before_last) has nothing due; one that fails is named at the end, after the rest.
                if exc.code == "period_before_last":
                    self.stdout.write(f"{bank.name} {period_end}: skipped, already settled for a later period")
                else:
                    failed.append(f"{bank.name} {period_end}: {exc.message}")
                    self.stderr.write(failed[-1])
                continue
            if already:
                self.stdout.write(f"{bank.name} {period_end}: already settled, nothing moved")
                continue
            with Progress(
                "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()
            ) as bar:
                task = bar.add_task(f"{bank.name} {period_end}", total=None)

                def tick(done: int, total: int, task: Any = task) -> None:
                    bar.update(task, completed=done, total=total)

                settlement = run_settlement(settlement, progress=tick)
            self.stdout.write(
                f"{bank.name} {period_end}: {settlement.members} members, {settlement.moved_minutes} minutes moved "
                f"({settlement.goods_minutes} goods, {settlement.reserve_minutes} reserve)"
            )
        if failed:
            raise CommandError(f"{len(failed)} bank(s) not settled: " + "; ".join(failed))
