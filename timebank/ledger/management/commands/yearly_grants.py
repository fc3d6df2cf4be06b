"""`manage.py yearly_grants`: post this year's grants of time (每年赠与时间) under each head office's rules.
Run it from cron (daily is fine: each member is granted once a year, however often it runs)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.ledger.grants import run_yearly_grants
from timebank.lib import clock


class Command(BaseCommand):
    help = "按总行规则发放每年赠与的时间（每人每年一次）。Post the yearly grants of time, once per member and year."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--year", type=int, default=None, help="the year to grant (default: this year)")
        parser.add_argument("--bank", type=int, default=None, help="only this head office (id)")

    def handle(self, *args: Any, **options: Any) -> None:
        year = options["year"]
        this_year = clock.localdate().year
        if year is not None and not this_year - 1 <= year <= this_year:
            raise CommandError("--year may be this year or last year only")
        report = run_yearly_grants(year, bank_id=options["bank"])
        self.stdout.write(
            f"year {report.year}: granted {len(report.granted)} members {report.minutes} minutes, "
            f"{report.already} already granted"
        )
