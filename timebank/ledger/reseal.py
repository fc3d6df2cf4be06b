"""Re-seal the hash chains under the chain key (once, when the chains become keyed).

Rows written before the key existed carry unkeyed SHA-256 links whose legs did not name their accounts'
owners. Keeping both formats would let a database writer "downgrade" a row to the unkeyed format and
rehash it, so instead every chain is checked the old way once and rewritten under the key; afterwards
`verify` accepts keyed links only. Run by migration `ledger/0009_reseal_chains_keyed` and by
`manage.py reseal_chains` (after restoring an old backup, or with `--force` to bless a chain that fails
the old check, which the migration never does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from timebank.lib.hashchain import GENESIS, head_seal, legacy_link, link

GUARDS = (("ledger_transaction", "ledger_transaction_immutable"), ("audit_auditentry", "audit_entry_immutable"))


@dataclass
class ResealReport:
    resealed: list[str] = field(default_factory=list)
    already_keyed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _legacy_tx_payload(tx: Any, legs: list[Any]) -> dict[str, Any]:
    from timebank.ledger.posting import _payload

    return _payload(tx, sorted([leg.account_id, leg.minutes, leg.balance_after_minutes] for leg in legs))


def _tx_payload(tx: Any, legs: list[Any]) -> dict[str, Any]:
    from timebank.ledger.posting import transaction_payload  # late, like the other payloads here

    return transaction_payload(tx, legs)


def _audit_payload(entry: Any) -> dict[str, Any]:
    from timebank.audit.chain import audit_payload

    return audit_payload(entry)


def _reseal_chain(
    rows: list[Any], payload: Any, legacy_payload: Any, force: bool, old_tip: str | None
) -> tuple[str, list[Any]] | str:
    """Returns (new tip, changed rows), "keyed" if the chain already verifies under the key, or a refusal."""
    prev = GENESIS
    keyed = True
    for row in rows:
        if row.prev_hash != prev or link(row.prev_hash, payload(row)) != row.hash:
            keyed = False
            break
        prev = row.hash
    if keyed:
        return "keyed"
    prev_old, prev_new, changed = GENESIS, GENESIS, []
    for row in rows:
        ok_old = row.prev_hash == prev_old and legacy_link(row.prev_hash, legacy_payload(row)) == row.hash
        if not ok_old and not force:
            return f"seq {row.seq} (id {row.pk}) fails the unkeyed check"
        prev_old = row.hash
        row.prev_hash = prev_new
        row.hash = link(prev_new, payload(row))
        prev_new = row.hash
        changed.append(row)
    if old_tip is not None and old_tip != prev_old and not force:
        return "the chain head does not match the last row (rows removed?)"
    return prev_new, changed


def reseal_chains(*, force: bool = False, models: dict[str, Any] | None = None, using: str = "default") -> ResealReport:
    """Check each chain the old way and rewrite it under the key, in one database transaction."""
    if models is None:
        from timebank.audit.models import AuditEntry, ChainHead
        from timebank.ledger.models import Transaction

        models = {"Transaction": Transaction, "AuditEntry": AuditEntry, "ChainHead": ChainHead}
    tx_model, entry_model, head_model = models["Transaction"], models["AuditEntry"], models["ChainHead"]
    report = ResealReport()
    conn = transaction.get_connection(using)
    with transaction.atomic(using=using):
        if conn.vendor == "postgresql":
            with conn.cursor() as cursor:
                for table, trigger in GUARDS:
                    cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        try:
            scopes = set(head_model.objects.using(using).values_list("scope", flat=True))
            scopes |= set(entry_model.objects.using(using).values_list("scope", flat=True).distinct())
            scopes |= {f"bank:{b}" for b in tx_model.objects.using(using).values_list("bank_id", flat=True).distinct()}
            for scope in sorted(scopes):
                head = head_model.objects.using(using).filter(scope=scope).first()
                if scope.startswith("bank:"):
                    bank_id = int(scope.split(":", 1)[1])
                    txs = list(
                        tx_model.objects.using(using)
                        .filter(bank_id=bank_id, seq__isnull=False)
                        .order_by("seq")
                        .prefetch_related("legs__account")
                    )
                    result = _reseal_chain(
                        txs,
                        lambda tx: _tx_payload(tx, list(tx.legs.all())),
                        lambda tx: _legacy_tx_payload(tx, list(tx.legs.all())),
                        force,
                        head.ledger_hash if head is not None else None,
                    )
                    _apply(report, f"ledger {scope}", result, tx_model, using)
                    if isinstance(result, tuple) and head is not None:
                        head.ledger_hash = result[0]
                        head.save(update_fields=["ledger_hash"])
                entries = list(entry_model.objects.using(using).filter(scope=scope, seq__isnull=False).order_by("seq"))
                result = _reseal_chain(
                    entries, _audit_payload, _audit_payload, force, head.audit_hash if head is not None else None
                )
                _apply(report, f"audit {scope}", result, entry_model, using)
                if isinstance(result, tuple) and head is not None:
                    head.audit_hash = result[0]
                    head.save(update_fields=["audit_hash"])
                if head is not None:
                    # Set here, not by ChainHead.save: a migration's historical model has no custom save().
                    seal = head_seal(head.scope, head.ledger_seq, head.ledger_hash, head.audit_seq, head.audit_hash)
                    head_model.objects.using(using).filter(pk=head.pk).update(seal=seal)
        finally:
            if conn.vendor == "postgresql":
                with conn.cursor() as cursor:
                    for table, trigger in GUARDS:
                        cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
    return report


def _apply(report: ResealReport, name: str, result: tuple[str, list[Any]] | str, model: Any, using: str) -> None:
    if result == "keyed":
        report.already_keyed.append(name)
    elif isinstance(result, str):
        report.refused.append(f"{name}: {result}")
    else:
        model.objects.using(using).bulk_update(result[1], ["prev_hash", "hash"], batch_size=2000)
        report.resealed.append(name)
