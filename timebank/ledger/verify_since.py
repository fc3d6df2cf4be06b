"""`verify` from the latest published checkpoint instead of from genesis (the default of `manage.py verify`;
`--full` walks everything).

The base is the newest published checkpoint whose signature verifies with this deployment's key: a database
writer can insert rows into `PublishedCheckpoint` but cannot sign them, so forged or edited rows are skipped.
`check_checkpoint` proves the database still holds each chain's checkpoint row with the signed hash; each chain
is then walked only from that seq (its predecessor hash being the signed one) to today's tip.

Balances are checked incrementally: each leg posted after the checkpoint's ledger tip (or not sealed yet) must
carry the previous leg's balance_after plus its minutes, each transaction after it must balance, and every
account's balance must equal its last leg's balance_after (one index probe per account, not a sum of its legs).

The checkpoint's own rows are re-hashed as well (`tip_problems`). What this does NOT catch, and `--full`
does: a row before the checkpoint (other than the checkpoint's own rows) changed afterwards is not re-hashed;
a leg before the checkpoint is not re-summed (only an account's last leg is compared with its balance).
"""

from __future__ import annotations

from django.db.models import Count, F, OuterRef, Prefetch, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from timebank.audit.chain import audit_payload, scope_for
from timebank.audit.models import AuditEntry
from timebank.ledger.checkpoint import Published, check_checkpoint, latest_published
from timebank.ledger.models import Account, Leg, Transaction
from timebank.ledger.posting import transaction_payload
from timebank.lib.hashchain import link


def base() -> tuple[Published | None, list[str]]:
    """The checkpoint to start from and what no longer matches it (then the caller walks everything)."""
    latest = latest_published()
    if latest is None or latest.data is None:
        return None, []
    return latest, check_checkpoint(latest.data)


def after(bank_id: int, ledger_seq: int) -> Q:
    """Transactions of a bank after the checkpoint's ledger tip: sealed later, or not sealed yet."""
    return Q(bank_id=bank_id) & (Q(seq__gt=ledger_seq) | Q(seq__isnull=True))


def balance_problems_since(bank_id: int, ledger_seq: int) -> list[str]:
    problems: list[str] = []
    # 1. Every account's balance equals its last leg's balance_after (0 without legs).
    last = Leg.objects.filter(account_id=OuterRef("pk")).order_by("-id").values("balance_after_minutes")[:1]
    wrong = (
        Account.objects.filter(bank_id=bank_id)
        .annotate(last_after=Coalesce(Subquery(last), Value(0)))
        .exclude(balance_minutes=F("last_after"))
    )
    for acc in wrong.values("pk", "kind", "member_id", "balance_minutes", "last_after"):
        problems.append(
            f"bank {bank_id}: account {acc['pk']} ({acc['kind']}, member {acc['member_id']}) "
            f"holds {acc['balance_minutes']} but its last leg leaves it at {acc['last_after']}"
        )
    # 2. Every transaction after the checkpoint balances and has two or more legs.
    txs = Transaction.objects.filter(after(bank_id, ledger_seq))
    unbalanced = txs.annotate(total=Coalesce(Sum("legs__minutes"), 0), n=Count("legs")).filter(~Q(total=0) | Q(n__lt=2))
    for tx_pk, total, n in unbalanced.values_list("pk", "total", "n"):
        problems.append(f"bank {bank_id}: transaction {tx_pk} has {n} legs summing to {total}")
    # 3. Each leg after the checkpoint carries its account's previous leg's balance_after plus its minutes.
    previous = Leg.objects.filter(account_id=OuterRef("account_id"), id__lt=OuterRef("pk")).order_by("-id")
    running = (
        Leg.objects.filter(transaction__in=txs)
        .annotate(before=Coalesce(Subquery(previous.values("balance_after_minutes")[:1]), Value(0)))
        .exclude(balance_after_minutes=F("before") + F("minutes"))
        .values("pk", "transaction_id")[:100]
    )
    for leg in running:
        problems.append(
            f"bank {bank_id}: leg {leg['pk']} of transaction {leg['transaction_id']} has a wrong balance_after"
        )
    return problems


def tip_problems(bank_id: int | None, since: Published) -> list[str]:
    """The checkpoint's own rows are re-hashed too (`check_checkpoint` compares only their stored hash), so an
    edit of the very row a checkpoint signed is caught even though the walk starts after it."""
    problems: list[str] = []
    scope = scope_for(bank_id)
    seq, want = since.tip(bank_id, "ledger")
    if bank_id is not None and seq:
        with_accounts = Prefetch("legs", queryset=Leg.objects.select_related("account"))
        tx = Transaction.objects.filter(bank_id=bank_id, seq=seq).prefetch_related(with_accounts).first()
        if tx is not None and link(tx.prev_hash, transaction_payload(tx, tx.legs.all())) != want:
            problems.append(
                f"bank {bank_id}: transaction {tx.pk} (seq {seq}), the checkpoint's own ledger row, its legs or "
                "their accounts were altered"
            )
    seq, want = since.tip(bank_id, "audit")
    if seq:
        entry = AuditEntry.objects.filter(scope=scope, seq=seq).first()
        if entry is not None and link(entry.prev_hash, audit_payload(entry)) != want:
            problems.append(f"audit {scope}: entry {entry.pk} (seq {seq}), the checkpoint's own audit row, was altered")
    return problems
