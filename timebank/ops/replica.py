"""Reports read from a streaming replica; every write, and every read that decides one, stays on the primary.

With `DATABASE_REPLICA_URL` set, settings.py adds the database alias `replica` and installs `ReplicaRouter`.
A report (statistics, dashboards, the risk projection, the .xlsx registers) enters `reading_from_replica()`
around the part that only reads, after its access check. Inside it:

- reads go to the replica, except while this thread has a transaction open on the primary: a read inside
  `transaction.atomic()` is part of a write (an action reads what it locks, the audit chain reads its head),
  so it stays on the primary. That is how an export's `export.<register>` entry is written on the primary,
  with its chain head read there, although the rows it counts were read from the replica;
- writes go to the primary, always (an instance read from the replica is saved on the primary).

Outside it nothing changes: every query goes to the primary. Who is asking and whether they may open the report
are decided before a view enters it, on the primary, so a replica that lags never lets in someone just refused
(inside, the names masked per member follow the org rows as the replica has them). Without a replica configured
(the default, and SQLite) the router is not installed and `reading_from_replica()` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_reading: ContextVar[bool] = ContextVar("timebank_reading_from_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


@contextmanager
def reading_from_replica() -> Iterator[None]:
    """Reads in this block go to the replica (when there is one), except inside a transaction on the primary."""
    token = _reading.set(True)
    try:
        yield
    finally:
        _reading.reset(token)


def read_alias() -> str:
    """Where a read made now goes."""
    if _reading.get() and replica_configured() and not connections[DEFAULT_DB_ALIAS].in_atomic_block:
        return REPLICA
    return DEFAULT_DB_ALIAS


class ReplicaRouter:
    """settings.DATABASE_ROUTERS when a replica is configured (see the module's docstring)."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str:
        return read_alias()

    def db_for_write(self, model: type[Any], **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True  # the replica holds the primary's rows: an object read there may point at one read here

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return db == DEFAULT_DB_ALIAS  # the replica gets the schema by replication
