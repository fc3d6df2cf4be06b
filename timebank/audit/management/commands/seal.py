from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from timebank.audit.sealing import seal_all


class Command(BaseCommand):
    help = "Seal every unsealed ledger transaction and audit entry now (on demand; the sealer process does it continuously)."

    def handle(self, *args: Any, **options: Any) -> None:
        result = seal_all()
        self.stdout.write(f"sealed {result.rows} rows")
