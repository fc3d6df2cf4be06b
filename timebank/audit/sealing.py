"""The sealer: links rows into their bank's hash chains after their writers committed.

Writers insert ledger transactions and audit entries unsealed (`seq` NULL, no hashes) and never wait for a
bank-wide lock. The sealer takes one scope's unsealed rows in id order, assigns each chain's next seq, links and
hashes them, updates the chain head once per batch and commits. Its order is well defined because it only
ever sees committed rows: a row whose id was drawn earlier but that commits later is simply still unsealed and
is taken by a later batch; nothing is skipped, because the queue is the set of unsealed rows itself (a partial
index), not a high-water mark. For one account the chain order still matches the balance order: a posting
draws its transaction id while it holds the accounts' locks, so a later posting to that account cannot commit
before it.

Two ways to run it (`settings.CHAIN_SEALING`):
- "inline" (tests, the demo, a developer's server): each write seals its own rows before it commits, under
  the chain head's row lock, so every row is sealed the moment it is visible;
- "process" (production): `python manage.py sealer` runs as its own process (one per deployment; a second one
  only takes the scopes the first is not sealing, by an advisory lock per scope), the task worker runs
  `seal_chains` and `manage.py seal`, `checkpoint` and `verify --seal` seal on demand. Writers back off when a
  scope's backlog grows past `CHAIN_SEAL_BACKLOG`.

Every append goes through `seal_chain`: mixing rows hashed at write time with a backlog would break the order.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection, models

from timebank.audit.chain import audit_payload, lock_head
from timebank.audit.models import AuditEntry, ChainHead
from timebank.lib import clock
from timebank.lib.hashchain import link

logger = logging.getLogger(__name__)

BATCH = 2000


@dataclass(frozen=True)
class Chain:
    """One kind of chain in every scope: where its unsealed rows are and what each row's hash covers."""

    name: str  # "ledger" or "audit": also the ChainHead field prefix
    model: type[models.Model]
    unsealed: Callable[[str], models.QuerySet[Any]]  # scope -> its unsealed rows
    payloads: Callable[[Sequence[Any]], list[dict[str, Any]]]  # rows with seq set -> what each hash covers
    scopes_pending: Callable[[], list[str]]  # the scopes with unsealed rows


def _audit_unsealed(scope: str) -> models.QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(scope=scope, seq__isnull=True)


def _audit_scopes() -> list[str]:
    return list(AuditEntry.objects.filter(seq__isnull=True).values_list("scope", flat=True).distinct())


AUDIT = Chain(
    name="audit",
    model=AuditEntry,
    unsealed=_audit_unsealed,
    payloads=lambda rows: [audit_payload(r) for r in rows],
    scopes_pending=_audit_scopes,
)

CHAINS: dict[str, Chain] = {"audit": AUDIT}


def register(chain: Chain) -> None:
    """Apps above the audit trail (the ledger) add their chain here at import."""
    CHAINS[chain.name] = chain


def inline() -> bool:
    return getattr(settings, "CHAIN_SEALING", "inline") == "inline"


def seal_chain(head: ChainHead, chain: Chain, *, limit: int = BATCH) -> list[Any]:
    """Seal up to `limit` unsealed rows of `chain` in the head's scope, oldest id first. The head must be locked
    by this database transaction (`lock_head`); the caller saves it. Returns the rows sealed."""
    rows = list(chain.unsealed(head.scope).order_by("id")[:limit])
    if not rows:
        return rows
    seq: int = getattr(head, f"{chain.name}_seq")
    prev: str = getattr(head, f"{chain.name}_hash")
    for row in rows:
        seq += 1
        row.seq = seq
    for row, payload in zip(rows, chain.payloads(rows), strict=True):
        row.prev_hash = prev
        row.hash = prev = link(prev, payload)
    _write_seals(chain.model._meta.db_table, rows)
    setattr(head, f"{chain.name}_seq", seq)
    setattr(head, f"{chain.name}_hash", prev)
    return rows


def _write_seals(table: str, rows: Sequence[Any]) -> None:
    """One statement for the batch: the only UPDATE the immutability guard lets through (NULL seq → sealed)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"UPDATE {table} AS t SET seq = v.seq, prev_hash = v.prev, hash = v.hash "  # noqa: S608 - table from the model
                "FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS v(id, seq, prev, hash) "
                "WHERE t.id = v.id AND t.seq IS NULL",
                [[r.pk for r in rows], [r.seq for r in rows], [r.prev_hash for r in rows], [r.hash for r in rows]],
            )
        else:
            cursor.executemany(
                f"UPDATE {table} SET seq = %s, prev_hash = %s, hash = %s WHERE id = %s AND seq IS NULL",  # noqa: S608
                [(r.seq, r.prev_hash, r.hash, r.pk) for r in rows],
            )
        if cursor.rowcount not in (-1, len(rows)) and connection.vendor == "postgresql":
            raise RuntimeError(f"{table}: a row was sealed by someone else during this batch")


def seal_inline(scope: str, chains: Sequence[str]) -> None:
    """In "inline" mode, seal what this transaction just wrote before it commits. In "process" mode leave it to
    the sealer, and after the commit (never while holding locks) back off if the backlog is too long."""
    if not inline():
        from django.db import transaction

        transaction.on_commit(_maybe_back_off)
        return
    head = lock_head(scope)
    fields: list[str] = []
    for name in chains:
        while True:
            rows = seal_chain(head, CHAINS[name])
            if rows:
                fields += [f"{name}_seq", f"{name}_hash"]
            if len(rows) < BATCH:  # a short batch took everything there was
                break
    if fields:
        head.save(update_fields=sorted(set(fields)))


# --- the process sealer ---------------------------------------------------------------------------------


@dataclass
class Sealed:
    rows: int = 0
    delays: list[float] | None = None  # seconds from each row's created_at to its sealing, when asked for


def _try_scope_lock(scope: str) -> bool:
    if connection.vendor != "postgresql":
        return True
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 17))", [f"timebank.seal:{scope}"])
        return bool(cursor.fetchone()[0])


def seal_scope(scope: str, *, limit: int = BATCH, result: Sealed | None = None) -> int:
    """One batch of every chain of one scope, in its own transaction, unless another sealer holds the scope."""
    from django.db import transaction

    result = result if result is not None else Sealed()
    with transaction.atomic():
        if not _try_scope_lock(scope):
            return 0
        head = lock_head(scope)
        fields: list[str] = []
        done = 0
        now = clock.now()
        for chain in CHAINS.values():
            rows = seal_chain(head, chain, limit=limit)
            if rows:
                fields += [f"{chain.name}_seq", f"{chain.name}_hash"]
                done += len(rows)
                if result.delays is not None:
                    result.delays += [(now - r.created_at).total_seconds() for r in rows]
        if fields:
            head.save(update_fields=fields)
    result.rows += done
    return done


def pending_scopes() -> list[str]:
    scopes: set[str] = set()
    for chain in CHAINS.values():
        scopes.update(chain.scopes_pending())
    return sorted(scopes)


def seal_all(*, limit: int = BATCH, result: Sealed | None = None) -> Sealed:
    """Seal every scope until nothing is left that this sealer may take (on demand: commands, the task worker)."""
    result = result if result is not None else Sealed()
    while True:
        progress = sum(seal_scope(scope, limit=limit, result=result) for scope in pending_scopes())
        if not progress:
            return result


def backlog() -> int:
    """Unsealed rows of every chain (counted from the partial indexes)."""
    return sum(chain.model._default_manager.filter(seq__isnull=True).count() for chain in CHAINS.values())


def oldest_unsealed() -> dict[str, Any]:
    """The oldest unsealed row of each chain and scope, for `verify`."""
    out: dict[str, Any] = {}
    for chain in CHAINS.values():
        for row in chain.model._default_manager.filter(seq__isnull=True).order_by("created_at")[:1]:
            out[chain.name] = row
    return out


_writes = threading.local()


def _maybe_back_off() -> None:
    """In "process" mode a writer checks the backlog every 64th write and waits while it is over the limit, so a
    stalled or slow sealer slows writers down instead of letting the unsealed tail grow without bound."""
    count = getattr(_writes, "count", 0) + 1
    _writes.count = count
    if count % 64:
        return
    limit = int(getattr(settings, "CHAIN_SEAL_BACKLOG", 50_000))
    waited = 0.0
    try:
        while waited < 5.0 and _capped_backlog(limit) > limit:
            time.sleep(0.05)
            waited += 0.05
    except DatabaseError:
        # Best effort: it runs after the write committed, so a cancelled or failed count must not turn a
        # committed write into an error its caller might retry.
        logger.warning("chain sealing backlog check failed", exc_info=True)
        return
    if waited >= 5.0:
        logger.warning("chain sealing backlog over %s rows: is `manage.py sealer` running?", limit)


def _capped_backlog(limit: int) -> int:
    total = 0
    for chain in CHAINS.values():
        total += chain.model._default_manager.filter(seq__isnull=True).values("pk")[: limit + 1].count()
    return total
