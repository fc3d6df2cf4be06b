"""The audit trail. `record` is called by every action, inside its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from timebank.audit.chain import audit_payload, lock_head, scope_for
from timebank.audit.models import AuditEntry, ChainHead
from timebank.lib.hashchain import link

# Whoever acted: a login (settings.AUTH_USER_MODEL, the orgs app's User) or nobody (the system). Named by its
# base class so the audit trail, below every app, imports none of them.
Actor = AbstractBaseUser | None


def record(
    actor: Actor,
    action: str,
    obj: Any,
    *,
    bank_id: int | None,
    data: dict[str, Any] | None = None,
    object_type: str | None = None,
) -> AuditEntry:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must run inside the action's transaction")
    head = lock_head(scope_for(bank_id))
    entry = append_entry(head, actor, action, obj, data=data, object_type=object_type)
    head.save(update_fields=["audit_seq", "audit_hash"])
    return entry


@dataclass(frozen=True)
class Note:
    """One audit entry to append; `record_all` appends several under a single chain lock."""

    actor: Actor
    action: str
    obj: Any
    data: dict[str, Any] = field(default_factory=dict)
    object_type: str | None = None


def record_all(notes: Sequence[Note], *, bank_id: int | None) -> list[AuditEntry]:
    """Append several entries to one bank's chain with one lock and one update of its head.

    The same chain as calling `record` for each in turn, for half the round trips."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must run inside the action's transaction")
    if not notes:
        return []
    head = lock_head(scope_for(bank_id))
    entries = [next_entry(head, n.actor, n.action, n.obj, data=n.data, object_type=n.object_type) for n in notes]
    AuditEntry.objects.bulk_create(entries)  # one INSERT
    head.save(update_fields=["audit_seq", "audit_hash"])
    return entries


def append_entry(
    head: ChainHead,
    actor: Actor,
    action: str,
    obj: Any,
    *,
    data: dict[str, Any] | None = None,
    object_type: str | None = None,
) -> AuditEntry:
    """Write the next entry on a chain head this transaction has locked; the caller saves the head."""
    entry = next_entry(head, actor, action, obj, data=data, object_type=object_type)
    entry.save(force_insert=True)
    return entry


def next_entry(
    head: ChainHead,
    actor: Actor,
    action: str,
    obj: Any,
    *,
    data: dict[str, Any] | None = None,
    object_type: str | None = None,
) -> AuditEntry:
    """The next entry on a locked chain head, hashed but not saved yet; the head moves on to it."""
    entry = AuditEntry(
        scope=head.scope,
        seq=head.audit_seq + 1,
        actor=cast(Any, actor) if actor is not None and actor.pk else None,  # the AUTH_USER_MODEL, not named here
        action=action,
        object_type=object_type or type(obj)._meta.model_name,
        object_id=str(getattr(obj, "pk", obj)),
        data=data or {},
        created_at=timezone.now(),
        prev_hash=head.audit_hash,
    )
    entry.hash = link(entry.prev_hash, audit_payload(entry))
    head.audit_seq = entry.seq
    head.audit_hash = entry.hash
    return entry
