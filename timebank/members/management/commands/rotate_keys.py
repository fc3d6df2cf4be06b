"""Re-encrypt every encrypted field with the newest key in FIELD_ENCRYPTION_KEYS.

Rotation: put a new key in front of FIELD_ENCRYPTION_KEYS (keep the old ones after it), restart, run
`python manage.py rotate_keys`, then drop the old keys. Batched by primary key, each batch in its own
transaction; a row already readable with the newest key is skipped, so the command is idempotent and a run that
was interrupted resumes by running it again.
"""

from __future__ import annotations

import functools
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import models, transaction
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from timebank.audit.actions import record
from timebank.lib import crypto

SUFFIX = "_encrypted"


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every text field named `*_encrypted`, by model (the convention all apps follow)."""
    found = []
    for model in apps.get_models():
        names = [
            f.name
            for f in model._meta.get_fields()
            if isinstance(f, models.TextField | models.CharField) and f.name.endswith(SUFFIX)
        ]
        if names:
            found.append((model, names))
    return found


@functools.cache
def _newest() -> Fernet:
    return Fernet(settings.FIELD_ENCRYPTION_KEYS[0].encode())


def needs_rotation(token: str) -> bool:
    """True when the newest key cannot read the token (it was written with an older one)."""
    if not token:
        return False
    try:
        _newest().decrypt(token.encode())
    except InvalidToken:
        return True
    return False


@transaction.atomic
def rotate_batch(model: type[models.Model], names: list[str], pks: list[Any]) -> int:
    changed = 0
    rows = model._default_manager.select_for_update().filter(pk__in=pks).only("pk", *names)
    for row in rows:
        updates = {n: crypto.rotate(getattr(row, n)) for n in names if needs_rotation(getattr(row, n))}
        if updates:
            # Only the ciphertext changes (the plain value is the same), so no action or timestamp is touched.
            model._default_manager.filter(pk=row.pk).update(**updates)
            changed += 1
    return changed


@transaction.atomic
def record_rotation(counts: dict[str, int]) -> None:
    record(None, "keys.rotate", "field_encryption", object_type="keys", bank_id=None, data={"rotated": counts})


class Command(BaseCommand):
    help = "Re-encrypt every encrypted field with the newest FIELD_ENCRYPTION_KEYS key (batched, resumable)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="rows per transaction (default 500)")
        parser.add_argument("--dry-run", action="store_true", help="count rows needing rotation, change nothing")

    def handle(self, *args: Any, batch: int, dry_run: bool, **options: Any) -> None:
        batch = max(1, min(batch, 10_000))
        crypto.reset_cache()
        _newest.cache_clear()
        counts: dict[str, int] = {}
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            disable=not self.stdout.isatty(),
        ) as progress:
            for model, names in encrypted_fields():
                label = model._meta.label
                nonempty = models.Q()
                for n in names:
                    nonempty |= ~models.Q(**{n: ""})
                qs = model._default_manager.filter(nonempty).order_by("pk")
                task = progress.add_task(label, total=qs.count())
                counts[label] = 0
                last: Any = None
                while True:
                    page = qs if last is None else qs.filter(pk__gt=last)
                    pks = list(page.values_list("pk", flat=True)[:batch])
                    if not pks:
                        break
                    if dry_run:
                        rows = model._default_manager.filter(pk__in=pks).values_list(*names)
                        counts[label] += sum(1 for row in rows if any(needs_rotation(v) for v in row))
                    else:
                        counts[label] += rotate_batch(model, names, pks)
                    last = pks[-1]
                    progress.advance(task, len(pks))
        if not dry_run and any(counts.values()):
            record_rotation(counts)
        verb = "need rotation" if dry_run else "re-encrypted"
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} rows {verb}")
        self.stdout.write(self.style.SUCCESS("done"))
