"""Writes of the exports app: the audit of every export, issuing service certificates."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from timebank.audit.actions import record
from timebank.orgs.models import User


@transaction.atomic
def do_record_export(
    actor: User | None,
    name: str,
    *,
    bank_id: int | None,
    rows: int,
    unmasked_rows: int,
    filters: dict[str, Any],
) -> None:
    """Every export is on the audit chain: what, how many rows, and how many were shown unmasked."""
    record(
        actor,
        f"export.{name}"[:60],
        name,
        object_type="export",
        bank_id=bank_id,
        data={"rows": rows, "unmasked_rows": unmasked_rows, "filters": {k: str(v) for k, v in filters.items()}},
    )
