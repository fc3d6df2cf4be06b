"""Editing the ledger or the audit trail behind the application's back is caught by `verify`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from tests.conftest import World
from timebank.audit.models import AuditEntry
from timebank.ledger import actions
from timebank.ledger.models import Leg, Transaction
from timebank.ledger.verify import verify


@contextmanager
def bypassing_guards(table: str) -> Iterator[None]:
    """A DBA with raw access: on PostgreSQL the immutability triggers must be switched off first."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Fire the deferred balance checks of the setup now; ALTER TABLE refuses while they are pending.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        try:
            yield
        finally:
            if connection.vendor == "postgresql":
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def raw(sql: str, params: list[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.fixture
def ledger(world: World) -> World:
    volunteer = world.members["volunteer"]
    actions.do_adjustment(None, member=volunteer, minutes=120, bucket="earned", reason="opening")
    actions.do_transfer(None, from_member=volunteer, to_member=None, minutes=30, kind="donation")
    assert verify().ok
    return world


def test_a_clean_ledger_verifies(ledger: World) -> None:
    call_command("verify")


def test_editing_a_leg_is_reported(ledger: World) -> None:
    leg = Leg.objects.filter(account__member=ledger.members["volunteer"]).order_by("pk").first()
    assert leg is not None
    with bypassing_guards("ledger_leg"):
        raw("UPDATE ledger_leg SET minutes = minutes + 60 WHERE id = %s", [leg.pk])
    report = verify()
    assert not report.ok
    text = "\n".join(report.problems)
    assert f"transaction {leg.transaction_id}" in text
    with pytest.raises(CommandError):
        call_command("verify")


def test_editing_a_balance_is_reported(ledger: World) -> None:
    raw(
        "UPDATE ledger_account SET balance_minutes = balance_minutes + 1000 WHERE member_id = %s",
        [ledger.members["volunteer"].pk],
    )
    assert any("legs sum to" in p for p in verify().problems)


def test_editing_a_transaction_memo_breaks_the_chain(ledger: World) -> None:
    tx = Transaction.objects.order_by("pk").first()
    assert tx is not None
    with bypassing_guards("ledger_transaction"):
        raw("UPDATE ledger_transaction SET memo = %s WHERE id = %s", ["forged", tx.pk])
    assert any(f"transaction {tx.pk}" in p and "altered" in p for p in verify().problems)


def test_deleting_the_last_transaction_is_reported(ledger: World) -> None:
    tx = Transaction.objects.order_by("-pk").first()
    assert tx is not None
    with bypassing_guards("ledger_leg"), bypassing_guards("ledger_transaction"):
        raw("DELETE FROM ledger_leg WHERE transaction_id = %s", [tx.pk])
        raw("DELETE FROM ledger_transaction WHERE id = %s", [tx.pk])
    assert not verify().ok


def test_editing_an_audit_row_is_reported(ledger: World) -> None:
    entry = AuditEntry.objects.filter(action="ledger.adjustment").first()
    assert entry is not None
    with bypassing_guards("audit_auditentry"):
        raw("UPDATE audit_auditentry SET action = %s WHERE id = %s", ["ledger.nothing", entry.pk])
    problems = verify().problems
    assert any(f"entry {entry.pk}" in p for p in problems), problems


def test_postgres_refuses_changes_to_postings(ledger: World) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the triggers are PostgreSQL's")
    leg = Leg.objects.first()
    assert leg is not None
    for sql in ("UPDATE ledger_leg SET minutes = 1 WHERE id = %s", "DELETE FROM ledger_leg WHERE id = %s"):
        with pytest.raises(IntegrityError), transaction.atomic():
            raw(sql, [leg.pk])
    entry = AuditEntry.objects.first()
    assert entry is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        raw("UPDATE audit_auditentry SET action = 'x' WHERE id = %s", [entry.pk])


@pytest.mark.django_db(transaction=True)
def test_postgres_refuses_an_unbalanced_transaction_at_commit() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the deferred trigger is PostgreSQL's")
    from tests.conftest import build_world

    w = build_world()
    actions.do_adjustment(None, member=w.members["volunteer"], minutes=60, bucket="earned", reason="opening")
    tx = Transaction.objects.get()
    account_id = Leg.objects.filter(transaction=tx).values_list("account_id", flat=True).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        raw(
            "INSERT INTO ledger_leg (transaction_id, account_id, minutes, balance_after_minutes) VALUES (%s, %s, 5, 0)",
            [tx.pk, account_id],
        )
    assert Leg.objects.filter(transaction=tx).count() == 2
