from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from timebank.federation.actions import sync


class Command(BaseCommand):
    help = (
        "Deliver every pending transfer to its peer node (exactly once on both sides: the peer answers a "
        "re-delivery with its original outcome). --due delivers only those whose next retry is due."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--due", action="store_true", help="only transfers whose next attempt is due")

    def handle(self, *args: Any, **options: Any) -> None:
        result = sync(due_only=options["due"])
        self.stdout.write(f"delivered {result.delivered}, still pending {result.pending}")
