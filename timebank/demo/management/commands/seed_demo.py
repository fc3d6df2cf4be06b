"""`manage.py seed_demo`: the demo banks, demo logins, members and a hundred days of activity."""

from __future__ import annotations

import io
import sys
from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from rich.console import Console
from rich.table import Table

from timebank.demo.generator import (
    DEMO_LOGINS,
    MIN_MEMBERS,
    SUPERUSER_LOGIN,
    DemoDataExists,
    DemoLogin,
    existing_demo_usernames,
    generate,
)
from timebank.orgs.models import Org, OrgKind, User

KEPT_PASSWORD = "(已有，未更改 unchanged)"  # noqa: S105 - shown instead of a password we did not set


class Command(BaseCommand):
    help = (
        "生成演示数据（两家时间银行、演示账号、会员，以及上线一百天来的服务、订单、需求、物品和资金）。"
        "Seed the demo banks, demo logins, members and a hundred days of activity."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--members", type=int, default=300, help="how many members (default 300)")
        parser.add_argument("--seed", type=int, default=2019, help="random seed (default 2019)")
        parser.add_argument(
            "--if-empty", action="store_true", help="do nothing if any head office exists (just print the logins)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        members: int = options["members"]
        if members < MIN_MEMBERS:
            raise CommandError(f"--members 至少 {MIN_MEMBERS} / must be at least {MIN_MEMBERS}")
        if options["if_empty"] and Org.objects.filter(kind=OrgKind.HEAD_OFFICE).exists():
            self.stdout.write("已有时间银行，不再生成演示数据。A head office already exists: nothing to do.")
            self._print_logins()
            return
        if existing_demo_usernames():
            raise CommandError(
                "演示账号已经存在；请用新的数据库，或加 --if-empty。"
                " The demo logins already exist: use a fresh database, or --if-empty."
            )
        show_progress = options["verbosity"] >= 1 and sys.stderr.isatty()
        with transaction.atomic():
            root = User.objects.filter(username=SUPERUSER_LOGIN.username).first()
            if root is None:
                root = User.objects.create_superuser(
                    SUPERUSER_LOGIN.username, password=SUPERUSER_LOGIN.password, display_name="超级管理员"
                )
            try:
                result = generate(members=members, seed=options["seed"], progress=show_progress, actor=root)
            except DemoDataExists as exc:
                raise CommandError(str(exc)) from None
        banks = "、".join(b.name for b in result.banks)
        r = result
        self.stdout.write(
            f"已生成 {banks}：{r.members} 名会员（{r.pending} 名待审核），{r.transactions} 笔交易，"
            f"{r.orders} 个订单，{r.service_records} 条服务记录，{r.needs} 项需求，{r.calls} 通热线，"
            f"{r.redemptions} 次物品兑换，{r.fund_entries} 笔资金，用时 {r.seconds:.1f} 秒。\n"
            f"Seeded {len(r.banks)} banks: {r.members} members ({r.pending} pending), {r.transactions} transactions, "
            f"{r.orders} orders, {r.service_records} service records, {r.needs} needs, {r.calls} calls, "
            f"{r.redemptions} redemptions, {r.fund_entries} fund entries in {r.seconds:.1f} s."
        )
        self._print_logins()

    def _print_logins(self) -> None:
        present = set(
            User.objects.filter(username__in=[x.username for x in DEMO_LOGINS]).values_list("username", flat=True)
        )
        logins = [x for x in DEMO_LOGINS if x.username in present]
        # A superuser made before the demo keeps its own password: don't print one that doesn't work.
        root = User.objects.filter(username=SUPERUSER_LOGIN.username).first()
        if root is not None and not root.check_password(SUPERUSER_LOGIN.password):
            logins = [replace(x, password=KEPT_PASSWORD) if x.username == root.username else x for x in logins]
        if not logins:
            self.stdout.write("这个数据库里没有演示账号。There are no demo logins in this database.")
            return
        self._table(logins)

    def _table(self, logins: list[DemoLogin]) -> None:
        table = Table(title="演示账号 Demo logins")
        for header in ("用户名 Username", "密码 Password", "角色 Role", "机构 Org", "姓名 Name"):
            table.add_column(header)
        for x in logins:
            table.add_row(x.username, x.password, f"{x.role_zh} {x.role_en}", x.org, x.name)
        buffer = io.StringIO()
        console = Console(file=buffer, width=120, highlight=False, color_system=None)
        console.print(table)
        console.print("所有演示账号的密码相同（仅供演示）。All demo logins share this password (demo only).")
        self.stdout.write(buffer.getvalue(), ending="")
