"""Appending to and walking the per-bank hash chains."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction

from timebank.audit.models import AuditEntry, ChainHead
from timebank.lib.hashchain import GENESIS, head_seal, link


def scope_for(bank_id: int | None) -> str:
    return f"bank:{bank_id}" if bank_id else "global"


def lock_head(scope: str) -> ChainHead:
    """Lock the chain tip, creating it on first use. Call inside an atomic block, after any account locks."""
    head = ChainHead.objects.select_for_update().filter(scope=scope).first()
    if head is not None:
        return head
    try:
        with transaction.atomic():
            ChainHead.objects.create(scope=scope)
    except IntegrityError:
        pass  # another writer made it first
    return ChainHead.objects.select_for_update().get(scope=scope)


def audit_payload(entry: AuditEntry) -> dict[str, Any]:
    return {
        "scope": entry.scope,
        "seq": entry.seq,
        "actor": entry.actor_id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "data": entry.data,
        "created_at": _ts(entry.created_at),
    }


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def ts(value: dt.datetime) -> str:
    return _ts(value)


def walk_audit(scope: str, after_seq: int = 0, after_hash: str = GENESIS) -> list[str]:
    """Walk a scope's sealed entries from genesis, or (incremental `verify`) from the entry at `after_seq`
    whose hash a signed checkpoint holds."""
    problems: list[str] = []
    prev = after_hash
    expected_seq = after_seq + 1
    sealed = AuditEntry.objects.filter(scope=scope, seq__gt=after_seq)
    for entry in sealed.order_by("seq").iterator(chunk_size=2000):
        if entry.seq != expected_seq:
            problems.append(f"audit {scope}: sequence gap before seq {entry.seq} (expected {expected_seq})")
        if entry.prev_hash != prev:
            problems.append(f"audit {scope}: entry {entry.pk} (seq {entry.seq}) does not link to its predecessor")
        if link(entry.prev_hash, audit_payload(entry)) != entry.hash:
            problems.append(
                f"audit {scope}: entry {entry.pk} (seq {entry.seq}) was altered (or hashed without the chain key)"
            )
        prev = entry.hash
        expected_seq = (entry.seq or 0) + 1  # sealed rows only: seq is set
    head = ChainHead.objects.filter(scope=scope).first()
    if head is None:
        if expected_seq > 1:
            problems.append(f"audit {scope}: entries but no chain head (head removed?)")
        return problems
    if head.audit_seq != expected_seq - 1 or head.audit_hash != prev:
        problems.append(f"audit {scope}: chain tip does not match the last entry (rows removed?)")
    problems += head_problems(head)
    return problems


def head_problems(head: ChainHead) -> list[str]:
    """The head's keyed seal: a head rewound to an older row, after its tail was deleted, no longer matches."""
    if head.seal != head_seal(head.scope, head.ledger_seq, head.ledger_hash, head.audit_seq, head.audit_hash):
        return [f"{head.scope}: the chain head was changed without the chain key (tail removed and head rewound?)"]
    return []
