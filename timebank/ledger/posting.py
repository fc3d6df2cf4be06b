"""The one place that writes ledger rows. Callers lock accounts first, then build legs, then post."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import next_entry
from timebank.audit.chain import scope_for, ts
from timebank.audit.sealing import inline, seal_inline
from timebank.ledger.models import SUMMARY_STRIPES, Account, AccountKind, Leg, Transaction
from timebank.ledger.summary import add_to_summary, day_of
from timebank.lib import clock
from timebank.lib.errors import Invalid
from timebank.ops.idempotency import scope_of, write_once
from timebank.orgs.models import User

MAX_MINUTES = 10_000_000  # about 19 years of round-the-clock service: anything larger is a typing error


def check_minutes(minutes: object, *, allow_negative: bool = False, field: str = "minutes") -> int:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise Invalid(_("分钟数必须是整数。"), fields={field: "not_integer"})
    if minutes == 0 or (minutes < 0 and not allow_negative):
        raise Invalid(_("分钟数必须大于零。"), fields={field: "not_positive"})
    if abs(minutes) > MAX_MINUTES:
        raise Invalid(_("分钟数过大。"), fields={field: "too_large"})
    return minutes


def run_idempotent(
    actor: User | None, key: str | None, fp: str, body: Callable[[], Transaction]
) -> tuple[Transaction, bool]:
    """Run `body` atomically once per (caller, key) through the idempotency service: the key is kept on the
    transaction itself (hash-chained, never forgotten). Returns (transaction, replayed)."""
    return write_once(Transaction.objects.all(), actor, key, fp, body)


def lock_accounts(ids: Iterable[int]) -> dict[int, Account]:
    # Always in primary-key order, so two writers never wait on each other in a cycle.
    return {a.pk: a for a in Account.objects.select_for_update().filter(pk__in=set(ids)).order_by("pk")}


@dataclass
class Locked:
    """Accounts locked for one action, found by member and bucket or by system kind."""

    accounts: dict[int, Account]

    def bucket(self, member_id: int, kind: str) -> Account:
        for account in self.accounts.values():
            if account.member_id == member_id and account.kind == kind:
                return account
        raise KeyError((member_id, kind))

    def system(self, kind: str) -> Account:
        for account in self.accounts.values():
            if account.member_id is None and account.kind == kind:
                return account
        raise KeyError(kind)


def lock_set(bank_id: int, members: Iterable[int] = (), system: Iterable[str] = ()) -> Locked:
    """Find and lock, in one query and in primary-key order, every bucket of `members` and the named
    system accounts of the bank."""
    query = Q(member_id__in=list(members))
    kinds = list(system)
    if kinds:
        query |= Q(bank_id=bank_id, member__isnull=True, kind__in=kinds)
    return Locked({a.pk: a for a in Account.objects.select_for_update().filter(query).order_by("pk")})


def _write_balances(rows: list[tuple[int, int, int]]) -> None:
    """New balances from (account_id, minutes, balance_after) rows, on the ORM path (SQLite; PostgreSQL posts
    through `ledger_post`)."""
    with connection.cursor() as cursor:
        if len(rows) <= 16:
            cases = " ".join("WHEN %s THEN %s" for _r in rows)
            params: list[int] = []
            for r in rows:
                params += [r[0], r[2]]
            ids = ", ".join("%s" for _r in rows)
            cursor.execute(
                f"UPDATE ledger_account SET balance_minutes = CASE id {cases} END WHERE id IN ({ids})",  # noqa: S608
                [*params, *(r[0] for r in rows)],
            )
        else:
            cursor.executemany(
                "UPDATE ledger_account SET balance_minutes = %s WHERE id = %s", [(r[2], r[0]) for r in rows]
            )


def _insert_legs(tx_id: int, rows: list[tuple[int, int, int]]) -> None:
    """The legs on the ORM path (SQLite; PostgreSQL posts through `ledger_post`)."""
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO ledger_leg (transaction_id, account_id, minutes, balance_after_minutes) VALUES (%s, %s, %s, %s)",
            [(tx_id, *r) for r in rows],
        )


Owner = tuple[int, int | None, str]  # an account's (bank, member, kind): whose bucket a leg moves


def transaction_payload(tx: Transaction, legs: Iterable[Leg]) -> dict[str, Any]:
    """The payload as `verify` rebuilds it, from the legs and their accounts' current rows."""
    owners = {leg.account_id: (leg.account.bank_id, leg.account.member_id, leg.account.kind) for leg in legs}
    return _payload(tx, _legs([(leg.account_id, leg.minutes, leg.balance_after_minutes) for leg in legs], owners))


def _legs(rows: Iterable[tuple[int, int, int]], owners: dict[int, Owner]) -> list[list[Any]]:
    # The owner, bucket and bank are hashed with each leg, so moving an account to another member or
    # bucket behind the application's back breaks the chain.
    return sorted([account, *owners[account], minutes, after] for account, minutes, after in rows)


def _payload(tx: Transaction, legs: list[list[Any]]) -> dict[str, Any]:
    """What a transaction's hash covers. `legs` are [account, bank, member, kind, minutes, balance_after], sorted."""
    return {
        "bank": tx.bank_id,
        "seq": tx.seq,
        "kind": tx.kind,
        "memo": tx.memo,
        "actor": tx.actor_id,
        "idempotency_key": tx.idempotency_key,
        "reverses": tx.reverses_id,
        "minutes": tx.minutes,
        "created_at": ts(tx.created_at),
        "legs": legs,
    }


def post(
    *,
    bank_id: int,
    kind: str,
    legs: Iterable[tuple[Account, int]],
    actor: User | None,
    memo: str = "",
    key: str | None = None,
    fp: str = "",
    reverses: Transaction | None = None,
    audit: tuple[str, dict[str, Any]] | None = None,
) -> Transaction:
    """Write one balanced transaction, and with `audit` its audit entry. Accounts must already be locked by this
    database transaction; no bank-wide lock is taken (the rows are sealed into the bank's chains later)."""
    merged: dict[int, tuple[Account, int]] = {}
    for account, minutes in legs:
        prev = merged.get(account.pk, (account, 0))[1]
        merged[account.pk] = (account, prev + minutes)
    parts = [(a, m) for a, m in merged.values() if m != 0]
    if len(parts) < 2 or sum(m for _a, m in parts) != 0:
        raise AssertionError("a transaction needs two or more legs that sum to zero")
    for account, _m in parts:
        if account.bank_id != bank_id and account.kind != AccountKind.CLEARING:
            raise AssertionError("legs must stay within one bank (use the clearing accounts)")

    ordered = sorted(parts, key=lambda p: p[0].pk)
    rows = []
    for account, minutes in ordered:
        account.balance_minutes += minutes
        rows.append((account.pk, minutes, account.balance_minutes))
    return write_transaction(
        bank_id=bank_id,
        kind=kind,
        rows=rows,
        actor=actor,
        memo=memo,
        key=key,
        fp=fp,
        reverses=reverses,
        audit=audit,
    )


def write_transaction(
    *,
    bank_id: int,
    kind: str,
    rows: list[tuple[int, int, int]],
    actor: User | None,
    memo: str = "",
    key: str | None = None,
    fp: str = "",
    reverses: Transaction | None = None,
    audit: tuple[str, dict[str, Any]] | None = None,
) -> Transaction:
    """The raw write: `rows` are (account_id, minutes, balance_after) in account order, already checked to
    balance, for accounts this database transaction has locked. Batch callers (settlement) use it directly.

    The transaction and its audit entry are inserted unsealed; the sealer links them into the bank's chains
    (at once, before commit, in "inline" mode)."""
    tx = _new_transaction(bank_id, kind, memo, actor, key, fp, reverses, sum(r[1] for r in rows if r[1] > 0))
    scope = scope_for(bank_id)
    if connection.vendor == "postgresql":
        _post_in_one_call(tx, rows, scope, audit)
    else:
        _write_balances(rows)
        tx.save(force_insert=True)
        _insert_legs(tx.pk, rows)
        add_to_summary(tx)
        if audit is not None:
            next_entry(scope, actor, audit[0], tx, data=audit[1]).save(force_insert=True)
    seal_inline(scope, ["ledger", "audit"] if audit is not None else ["ledger"])
    return tx


def _new_transaction(
    bank_id: int,
    kind: str,
    memo: str,
    actor: User | None,
    key: str | None,
    fp: str,
    reverses: Transaction | None,
    minutes: int,
) -> Transaction:
    return Transaction(
        bank_id=bank_id,
        kind=kind,
        memo=memo,
        actor=actor if actor is not None and actor.pk else None,
        idem_scope=scope_of(actor) if key else "",
        idempotency_key=key,
        fingerprint=fp,
        reverses=reverses,
        minutes=minutes,
        created_at=clock.now(),
    )


def transfer_in_one_call(
    *,
    bank_id: int,
    from_member_id: int,
    to_member_id: int | None,
    minutes: int,
    kind: str,
    memo: str,
    actor: User | None,
    key: str | None,
    fp: str,
    audit: tuple[str, dict[str, Any]],
) -> Transaction | None:
    """PostgreSQL: `do_transfer`'s common case in one statement (`ledger_transfer`, migration ledger/0019): a new
    key, a payer who can pay, a receiver the credit keeps under the storage cap. With the sealer in its own process
    and no caller's transaction around, that statement is the whole database transaction (one round trip).
    Returns None when nothing was written (SQLite, a key seen before, a refusal, a credit over the cap, a
    concurrent request with the same key): the caller then takes its general path, which decides those."""
    if connection.vendor != "postgresql":
        return None
    tx = _new_transaction(bank_id, kind, memo, actor, key, fp, None, minutes)
    scope = scope_for(bank_id)
    params = [
        bank_id,
        from_member_id,
        to_member_id,
        minutes,
        kind,
        memo,
        tx.actor_id,
        tx.idem_scope,
        key,
        fp,
        tx.created_at,
        scope,
        audit[0],
        json.dumps(audit[1]),
        day_of(tx.created_at),
        SUMMARY_STRIPES,
    ]
    outer = connection.in_atomic_block
    try:
        if outer or inline():
            # Inline sealing seals before the commit; inside a caller's transaction a savepoint keeps that
            # transaction usable when the statement fails (a concurrent request with the same key).
            with transaction.atomic():
                tx_id = _transfer_call(params)
                if tx_id is not None:
                    seal_inline(scope, ["ledger", "audit"])
        else:
            tx_id = _transfer_call(params)  # autocommitted
    except IntegrityError:
        return None  # the same key committed first (the general path replays it), or a guard refused
    except OperationalError:
        if outer:
            raise
        return None  # a deadlock or serialization failure: the general path retries
    if tx_id is None:
        return None
    if not (outer or inline()):
        # Committed already: the after-commit backlog check stays outside the `try` above, so nothing that fails
        # from here on can be taken for "nothing written" and posted again by the general path.
        seal_inline(scope, ["ledger", "audit"])
    tx.pk = tx_id
    tx._state.adding = False
    tx._state.db = connection.alias
    return tx


def _transfer_call(params: list[Any]) -> int | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ledger_transfer(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s::date, %s)",
            params,
        )
        row = cursor.fetchone()
    return None if row is None or row[0] is None else int(row[0])


def _post_in_one_call(
    tx: Transaction, rows: list[tuple[int, int, int]], scope: str, audit: tuple[str, dict[str, Any]] | None
) -> None:
    """PostgreSQL: balances, the transaction, its legs, its audit entry and its count in the daily summary in one round
    trip (`ledger_post`, migration ledger/0013), which computes each balance after from the locked row itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tx_id FROM ledger_post(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::bigint[], %s::bigint[], "
            "%s, %s, %s::jsonb, %s::date, %s)",
            [
                tx.bank_id,
                tx.kind,
                tx.memo,
                tx.minutes,
                tx.actor_id,
                tx.idem_scope,
                tx.idempotency_key,
                tx.fingerprint,
                tx.reverses_id,
                tx.created_at,
                [r[0] for r in rows],
                [r[1] for r in rows],
                scope,
                audit[0] if audit is not None else None,
                json.dumps(audit[1]) if audit is not None else None,
                day_of(tx.created_at),
                SUMMARY_STRIPES,
            ],
        )
        tx.pk = cursor.fetchone()[0]
    tx._state.adding = False
    tx._state.db = connection.alias


def ledger_payloads(txs: Sequence[Transaction]) -> list[dict[str, Any]]:
    """What each transaction's hash covers, from its legs and their accounts' rows as they are now (the sealer's
    view; `verify` rebuilds the same)."""
    legs: dict[int, list[list[Any]]] = {tx.pk: [] for tx in txs}
    rows = Leg.objects.filter(transaction_id__in=list(legs)).values_list(
        "transaction_id",
        "account_id",
        "account__bank_id",
        "account__member_id",
        "account__kind",
        "minutes",
        "balance_after_minutes",
    )
    for tx_id, *leg in rows:
        legs[tx_id].append(list(leg))
    return [_payload(tx, sorted(legs[tx.pk])) for tx in txs]
