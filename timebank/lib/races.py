"""Lost races on unique rows become the 409 a duplicate is, not a 500.

SQLite serialises writers, so two identical requests never meet there. On PostgreSQL both pass the
"already exists?" check, both INSERT, and the second INSERT waits for the first to commit and then fails
with a unique violation. Wrapped in `unique_or_conflict`, that INSERT runs in a savepoint (the caller's
transaction stays usable) and its failure is raised as the same Conflict the check would have raised.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError, OperationalError, transaction

from timebank.lib.errors import Conflict

UNIQUE_VIOLATION = "23505"  # PostgreSQL's SQLSTATE
RETRYABLE = frozenset({"40001", "40P01"})  # serialization failure, deadlock detected


def sqlstate(exc: BaseException) -> str | None:
    cause = exc.__cause__
    return getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)


def is_unique_violation(exc: IntegrityError) -> bool:
    state = sqlstate(exc)
    if state is not None:
        return state == UNIQUE_VIOLATION
    return "UNIQUE constraint failed" in str(exc)  # SQLite


def is_lost_race(exc: OperationalError) -> bool:
    """A deadlock or serialization failure: another writer won; retrying later would succeed."""
    state = sqlstate(exc)
    if state is not None:
        return state in RETRYABLE
    text = str(exc).lower()
    return "deadlock" in text or "could not serialize" in text or "database is locked" in text


@contextmanager
def unique_or_conflict(message: Any, *, code: str, fields: dict[str, Any] | None = None) -> Iterator[None]:
    """Run the INSERT of a unique row; a concurrent duplicate that committed first is `Conflict(code)`."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        raise Conflict(message, code=code, fields=fields) from None
