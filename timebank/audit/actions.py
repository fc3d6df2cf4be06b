"""The audit trail. `record` is called by every action, inside its transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from timebank.audit.chain import scope_for
from timebank.audit.models import AuditEntry
from timebank.audit.sealing import seal_inline
from timebank.lib import clock

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
    scope = scope_for(bank_id)
    entry = next_entry(scope, actor, action, obj, data=data, object_type=object_type)
    entry.save(force_insert=True)
    seal_inline(scope, ["audit"])
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
    """Append several entries to one bank's chain with one INSERT (the same chain as `record` for each in turn)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must run inside the action's transaction")
    if not notes:
        return []
    scope = scope_for(bank_id)
    entries = [next_entry(scope, n.actor, n.action, n.obj, data=n.data, object_type=n.object_type) for n in notes]
    AuditEntry.objects.bulk_create(entries)  # one INSERT
    seal_inline(scope, ["audit"])
    return entries


def next_entry(
    scope: str,
    actor: Actor,
    action: str,
    obj: Any,
    *,
    data: dict[str, Any] | None = None,
    object_type: str | None = None,
) -> AuditEntry:
    """The next entry of a scope's chain, not saved yet and unsealed: the sealer gives it its seq and hash."""
    return AuditEntry(
        scope=scope,
        actor=cast(Any, actor) if actor is not None and actor.pk else None,  # the AUTH_USER_MODEL, not named here
        action=action,
        object_type=object_type or type(obj)._meta.model_name,
        object_id=str(getattr(obj, "pk", obj)),
        data=data or {},
        created_at=clock.now(),
    )
