"""`manage.py import_census FILE --org ID [--confirm]`: the census import of the API, from a shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from timebank.lib.errors import ApiError
from timebank.needs import actions, census
from timebank.orgs.models import Org, User


class Command(BaseCommand):
    help = (
        "导入人口普查数据（.xlsx 或 .csv）：先试导入并报告，加 --confirm 才写入。"
        " Import census data: a dry run with a report; --confirm writes the accepted rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="an .xlsx or .csv file (UTF-8 with or without BOM, or GBK)")
        parser.add_argument("--org", type=int, required=True, help="the org whose subtree the communities are in")
        parser.add_argument("--confirm", action="store_true", help="write the accepted rows")
        parser.add_argument("--user", help="act as this staff login (recorded in the audit trail)")
        parser.add_argument("--show", type=int, default=50, help="how many rejected rows to list (default 50)")

    def handle(self, *args: Any, **options: Any) -> None:
        # rich writes partial lines; Django's OutputWrapper would add a newline to each, so write underneath it.
        console = Console(file=cast(IO[str], getattr(self.stdout, "_out", sys.stdout)))
        org = Org.objects.filter(pk=options["org"]).first()
        if org is None:
            raise CommandError(f"no org with id {options['org']}")
        actor = None
        if options["user"]:
            actor = User.objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"no login {options['user']!r}")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        if path.stat().st_size > census.MAX_FILE_BYTES:
            raise CommandError(f"{path} is larger than {census.MAX_FILE_BYTES // (1024 * 1024)} MB")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        try:
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("检查 checking", total=None)
                table = census.read_table(path.name, path.read_bytes())
                bar.update(task, total=len(table.rows))
                checked = census.check_table(org, table, lambda done, total: bar.update(task, completed=done))
            imp = actions.do_create_census_import(actor, org=org, filename=path.name, checked=checked)
            self._report(console, imp.report, options["show"])
            if not options["confirm"]:
                console.print(f"试导入 #{imp.pk}：未写入。dry run #{imp.pk}: nothing written; add --confirm to write.")
                return
            with Progress(*columns, console=console, transient=True) as bar:
                task = bar.add_task("写入 writing", total=checked.report["counts"]["accepted"])
                imp = actions.do_confirm_census_import(
                    actor, imp, lambda done, total: bar.update(task, completed=done, total=total)
                )
        except ApiError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        counts = imp.report["counts"]
        console.print(f"导入 #{imp.pk} 完成 done: written {counts.get('written', 0)}, failed {counts.get('failed', 0)}")
        failed = [r for r in imp.report["rows"] if r["status"] == "failed"]
        if failed:
            self._rows(console, failed, options["show"], "写入失败 failed at confirmation")

    def _report(self, console: Console, report: dict[str, Any], show: int) -> None:
        counts = report["counts"]
        console.print(
            f"rows {counts['rows']}  accepted {counts['accepted']}  rejected {counts['rejected']}"
            f"  empty {counts['empty_rows']}"
        )
        if report.get("ignored_columns"):
            console.print(f"ignored columns: {', '.join(report['ignored_columns'])}")
        rejected = [r for r in report["rows"] if r["status"] == "rejected"]
        if rejected:
            self._rows(console, rejected, show, "未通过 rejected")

    def _rows(self, console: Console, rows: list[dict[str, Any]], show: int, title: str) -> None:
        table = Table(title=title)
        for name in ("row", "name", "id", "reasons"):
            table.add_column(name)
        for row in census.render_rows(rows[:show]):
            reasons = "; ".join(r["message"] for r in row["reasons"])
            table.add_row(str(row["row"]), row["name"], row["id_number_masked"], reasons)
        console.print(table)
        if len(rows) > show:
            console.print(f"... {len(rows) - show} more")
