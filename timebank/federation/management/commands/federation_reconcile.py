from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timebank.federation.actions import reconcile
from timebank.federation.models import Peer
from timebank.lib import clock


class Command(BaseCommand):
    help = (
        "Fetch each peer node's statement for yesterday (or --date) with a signed request and compare it with "
        "ours: the two must mirror. Exits non-zero and names every transfer where they differ."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--date", type=dt.date.fromisoformat, help="YYYY-MM-DD (default: yesterday)")
        parser.add_argument("--peer", help="only this peer's node id")

    def handle(self, *args: Any, **options: Any) -> None:
        day = options["date"] or clock.localdate() - dt.timedelta(days=1)
        peers = Peer.objects.order_by("pk")
        if options["peer"]:
            peers = peers.filter(node_id=options["peer"])
        problems: list[str] = []
        for peer in peers:
            result = reconcile(peer, day)
            problems += result.problems
            if not result.problems:
                self.stdout.write(f"{peer.node_id} {day}: statements mirror")
        for problem in problems:
            self.stderr.write(problem)
        if problems:
            raise CommandError(f"{len(problems)} difference(s) with peer nodes on {day}")
