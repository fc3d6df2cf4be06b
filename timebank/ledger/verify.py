"""Recompute everything from the legs and walk the hash chains."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Prefetch, Q, QuerySet, Sum, Window
from django.db.models.functions import Coalesce

from timebank.audit.chain import scope_for, walk_audit
from timebank.audit.models import AuditEntry, ChainHead
from timebank.audit.sealing import CHAINS, oldest_unsealed
from timebank.ledger.checkpoint import Published
from timebank.ledger.events import BankVerifying
from timebank.ledger.models import Account, AccountKind, Leg, Transaction
from timebank.ledger.posting import transaction_payload
from timebank.ledger.summary import summary_problems
from timebank.ledger.verify_since import balance_problems_since, base, tip_problems
from timebank.lib import clock
from timebank.lib.events import publish
from timebank.lib.hashchain import GENESIS, link
from timebank.members.counts import count_problems
from timebank.orgs.models import Org, OrgKind, Rules


@dataclass
class Report:
    transactions: int = 0
    problems: list[str] = field(default_factory=list)
    unsealed: dict[str, int] = field(default_factory=dict)  # rows each chain's sealer has not reached yet
    # "full" (from genesis, every balance recounted) or "incremental" (from a published checkpoint).
    mode: str = "full"
    base: Published | None = None  # the published checkpoint an incremental run started from
    why_full: str = ""  # why an incremental run walked everything instead

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    bank_ids: list[int] | None = None, checkpoint: dict[str, Any] | None = None, incremental: bool = False
) -> Report:
    """Check one, several or (None) all banks. Streams rows, so memory stays flat.

    With `checkpoint` (a signed file from `manage.py checkpoint`), also prove the database still extends it:
    each chain still holds the checkpoint's row at its seq, and the walk below links it to today's tip.

    With `incremental`, start from the latest published checkpoint whose signature verifies
    (timebank/ledger/verify_since.py): the chains are walked from its rows on and balances checked from its
    ledger tip on. Without one, or when the database no longer extends it, everything is walked."""
    banks = Org.objects.filter(kind=OrgKind.HEAD_OFFICE)
    if bank_ids is not None:
        banks = banks.filter(pk__in=bank_ids)
    report = Report()
    since: Published | None = None
    if incremental:
        since, broken = base()
        report.problems += broken
        if since is None:
            report.why_full = "no published checkpoint with a valid signature"
        elif broken:
            since, report.why_full = None, "the database no longer extends the latest published checkpoint"
        else:
            report.mode, report.base = "incremental", since
    for bank_id in banks.values_list("pk", flat=True):
        _verify_bank(bank_id, report, since)
    if bank_ids is None:
        if since is None:
            report.problems += walk_audit("global")
        else:
            report.problems += walk_audit("global", *since.tip(None, "audit")) + tip_problems(None, since)
    report.problems += unsealed_problems(report)
    if checkpoint is not None:
        from timebank.ledger.checkpoint import check_checkpoint

        report.problems += check_checkpoint(checkpoint)
    return report


def unsealed_problems(report: Report) -> list[str]:
    """Rows still waiting for the sealer are normal for a moment; one that waits longer than
    `CHAIN_SEAL_BOUND_SECONDS` means the sealer is not running, or a row is being kept out of the chain."""
    bound = dt.timedelta(seconds=getattr(settings, "CHAIN_SEAL_BOUND_SECONDS", 60))
    problems = []
    for name, row in oldest_unsealed().items():
        report.unsealed[name] = CHAINS[name].model._default_manager.filter(seq__isnull=True).count()
        age = clock.now() - row.created_at
        if age > bound:
            problems.append(
                f"{name} chain: {report.unsealed[name]} row(s) not sealed, the oldest (id {row.pk}) for "
                f"{int(age.total_seconds())} s (bound {int(bound.total_seconds())} s): is `manage.py sealer` running?"
            )
    return problems


def _verify_bank(bank_id: int, report: Report, since: Published | None = None) -> None:
    accounts = Account.objects.filter(bank_id=bank_id)
    txs = Transaction.objects.filter(bank_id=bank_id)
    start_seq, start_hash = since.tip(bank_id, "ledger") if since else (0, GENESIS)
    if since is None:
        _verify_balances(bank_id, accounts, txs, report)
    else:
        report.problems += balance_problems_since(bank_id, start_seq) + tip_problems(bank_id, since)
    _verify_chains(bank_id, accounts, txs, report, since, start_seq, start_hash)


def _verify_balances(bank_id: int, accounts: QuerySet[Account], txs: QuerySet[Transaction], report: Report) -> None:
    # 1. Every stored balance equals the sum of its legs.
    wrong = accounts.annotate(leg_sum=Coalesce(Sum("legs__minutes"), 0)).exclude(balance_minutes=F("leg_sum"))
    for acc in wrong.values("pk", "kind", "member_id", "balance_minutes", "leg_sum"):
        report.problems.append(
            f"bank {bank_id}: account {acc['pk']} ({acc['kind']}, member {acc['member_id']}) "
            f"holds {acc['balance_minutes']} but its legs sum to {acc['leg_sum']}"
        )
    # 2. Every transaction balances and has two or more legs.
    unbalanced = txs.annotate(total=Coalesce(Sum("legs__minutes"), 0), n=Count("legs")).filter(~Q(total=0) | Q(n__lt=2))
    for tx_pk, total, n in unbalanced.values_list("pk", "total", "n"):
        report.problems.append(f"bank {bank_id}: transaction {tx_pk} has {n} legs summing to {total}")
    # 3. Each leg's balance_after is the running sum of its account.
    running = (
        Leg.objects.filter(account__bank_id=bank_id)
        .annotate(run=Window(Sum("minutes"), partition_by=[F("account_id")], order_by=F("id").asc()))
        .exclude(balance_after_minutes=F("run"))
        .values("pk", "account_id", "transaction_id")[:100]
    )
    for leg in running:
        report.problems.append(
            f"bank {bank_id}: leg {leg['pk']} of transaction {leg['transaction_id']} has a wrong balance_after"
        )


def _verify_chains(
    bank_id: int,
    accounts: QuerySet[Account],
    txs: QuerySet[Transaction],
    report: Report,
    since: Published | None,
    start_seq: int,
    start_hash: str,
) -> None:
    # 4. Limits: goods never negative, earned + reserve not below the overdraft.
    overdraft = Rules.objects.filter(head_office_id=bank_id).values_list("overdraft_minutes", flat=True).first() or 0
    per_member = (
        accounts.filter(member__isnull=False, kind__in=[AccountKind.EARNED, AccountKind.RESERVE])
        .values("member_id")
        .annotate(spendable=Sum("balance_minutes"))
        .filter(spendable__lt=-overdraft)
    )
    for member_id in per_member.values_list("member_id", flat=True):
        report.problems.append(f"bank {bank_id}: member {member_id} is below the overdraft limit")
    for goods_pk in accounts.filter(kind=AccountKind.GOODS, balance_minutes__lt=0).values_list("pk", flat=True):
        report.problems.append(f"bank {bank_id}: goods account {goods_pk} is negative")
    # 5. The ledger hash chain (from genesis, or from the checkpoint's ledger row).
    prev, expected = start_hash, start_seq + 1
    # Legs with their accounts as they are now: the hash covers each account's bank, member and bucket.
    with_accounts = Prefetch("legs", queryset=Leg.objects.select_related("account"))
    sealed = txs.filter(seq__gt=start_seq).order_by("seq")
    for tx in sealed.prefetch_related(with_accounts).iterator(chunk_size=2000):
        report.transactions += 1
        if tx.seq != expected:
            report.problems.append(f"bank {bank_id}: ledger sequence gap before seq {tx.seq}")
        if tx.prev_hash != prev:
            report.problems.append(f"bank {bank_id}: transaction {tx.pk} does not link to its predecessor")
        if link(tx.prev_hash, transaction_payload(tx, tx.legs.all())) != tx.hash:
            report.problems.append(
                f"bank {bank_id}: transaction {tx.pk} (seq {tx.seq}), its legs or their accounts' owner or bucket "
                "were altered (or it was hashed without the chain key)"
            )
        prev, expected = tx.hash, (tx.seq or 0) + 1  # sealed rows only: seq is set
    head = ChainHead.objects.filter(scope=scope_for(bank_id)).first()
    sealed_audit = AuditEntry.objects.filter(scope=scope_for(bank_id), seq__isnull=False)
    if head is None and (expected > 1 or sealed_audit.exists() or not _waiting(bank_id)):
        # Every head office's creation is audited, so its chain head exists from its first sealing on; before
        # that, its rows are still waiting for the sealer.
        report.problems.append(f"bank {bank_id}: no chain head (its chains were removed?)")
    if head is not None and (head.ledger_seq != expected - 1 or head.ledger_hash != prev):
        report.problems.append(f"bank {bank_id}: ledger chain tip does not match the last transaction (rows removed?)")
    # 6. The audit chain.
    report.problems += (
        walk_audit(scope_for(bank_id), *since.tip(bank_id, "audit")) if since else walk_audit(scope_for(bank_id))
    )
    # 7. Live rows against what the chains recorded.
    report.problems += publish(BankVerifying(bank_id))  # e.g. orders' credited minutes against their legs
    _verify_rules(bank_id, report)
    _verify_summary(bank_id, report)


def _verify_summary(bank_id: int, report: Report) -> None:
    """The daily summary the posting path keeps equals the bank's transactions counted and summed again, and the
    head counts the members' triggers keep equal its active members counted again (the orders' services summary
    is checked by its own app, through BankVerifying)."""
    report.problems += summary_problems(bank_id)
    report.problems += count_problems(bank_id)


def _waiting(bank_id: int) -> bool:
    return AuditEntry.objects.filter(scope=scope_for(bank_id), seq__isnull=True).exists()


def _json(value: object) -> object:
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _verify_rules(bank_id: int, report: Report) -> None:
    """The live rules equal the defaults a head office is created with, overlaid by every `rules.update`
    in the (keyed) audit chain, oldest first: `do_update_rules` is the only writer of rules."""
    from timebank.orgs.actions import RULE_FIELDS  # late: orgs.actions imports the ledger's actions

    rules = Rules.objects.filter(head_office_id=bank_id).first()
    if rules is None:
        return
    defaults = Rules()
    expected: dict[str, object] = {f: getattr(defaults, f) for f in RULE_FIELDS}
    # Unsealed entries (still waiting for the sealer) come last, in the order they were written.
    updates = AuditEntry.objects.filter(scope=scope_for(bank_id), action="rules.update").order_by(
        F("seq").asc(nulls_last=True), "id"
    )
    for data in updates.values_list("data", flat=True).iterator(chunk_size=500):
        after = data.get("after") if isinstance(data, dict) else None
        for name, value in (after or {}).items():
            if name in expected:
                expected[name] = value
    for name in RULE_FIELDS:
        if _json(getattr(rules, name)) != _json(expected[name]):
            report.problems.append(
                f"bank {bank_id}: rule {name} is {_json(getattr(rules, name))}, "
                f"but the audit chain's rules.update entries leave it at {_json(expected[name])}"
            )
