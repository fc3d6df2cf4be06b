"""`manage.py guarantee_orders`: 刚性兑付. Orders paid from stored time that found no volunteer within their head
office's `guarantee_after_days` are bought from the emergency fund (as `buy-service` does by hand). Run it from
cron, e.g. hourly: an order bought is confirmed, so running it again never buys it twice."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from timebank.funds.guarantee import run_guarantee


class Command(BaseCommand):
    help = "刚性兑付：超过规定天数无人接单、用储存时间支付的订单，由专项基金购买服务。Buy overdue orders from the emergency fund."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bank", type=int, default=None, help="only this head office (id)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = run_guarantee(bank_id=options["bank"])
        self.stdout.write(f"bought {len(report.served)} orders: {report.served}")
        for order_id, code in sorted(report.refused.items()):
            self.stdout.write(f"order {order_id} not bought: {code}")
