"""Issue 17: writers insert unsealed rows and never wait for a bank-wide lock; one sealer links them later.

The production mode (CHAIN_SEALING=process) is tested here; every other test runs "inline", where each write
seals its own rows before it commits.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, transaction
from django.test import override_settings

from tests.conftest import new_id_number
from timebank.audit.actions import record
from timebank.audit.chain import scope_for
from timebank.audit.models import AuditEntry, ChainHead
from timebank.audit.sealing import backlog, seal_all, seal_scope
from timebank.audit.tasks import seal_chains
from timebank.ledger import actions
from timebank.ledger.models import Transaction
from timebank.ledger.verify import verify
from timebank.members.actions import MemberInput, do_link_relative, do_register_member
from timebank.members.models import Member
from timebank.orgs.actions import do_create_org
from timebank.orgs.models import Org

process_mode = override_settings(CHAIN_SEALING="process")


def _bank(n: int = 3) -> tuple[Org, list[Member]]:
    bank = do_create_org(None, name="封链银行", kind="head_office", parent=None)
    community = do_create_org(None, name="社区", kind="sub_branch", parent=bank)
    members = [
        do_register_member(
            None,
            home_org=community,
            data=MemberInput(name=f"会员{i}", id_number=new_id_number(dt.date(1950, 2, 1 + i))),
            approved=True,
        )
        for i in range(n)
    ]
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            do_link_relative(None, a, b, "亲属")
        actions.do_adjustment(None, member=a, minutes=600, bucket="reserve", reason="opening")
    return bank, members


def _chain_ok(bank: Org) -> None:
    report = verify([bank.pk])
    assert report.ok, report.problems
    seqs = list(Transaction.objects.filter(bank=bank).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    audit = list(AuditEntry.objects.filter(scope=scope_for(bank.pk)).order_by("seq").values_list("seq", flat=True))
    assert audit == list(range(1, len(audit) + 1))


def test_inline_mode_seals_every_row_before_commit(db: None) -> None:
    bank, members = _bank()
    actions.do_transfer(None, from_member=members[0], to_member=members[1], minutes=30, kind="relative")
    assert not Transaction.objects.filter(seq__isnull=True).exists()
    assert not AuditEntry.objects.filter(seq__isnull=True).exists()
    _chain_ok(bank)


@process_mode
def test_process_mode_writes_unsealed_rows_that_the_sealer_links_in_id_order(db: None) -> None:
    bank, members = _bank()
    before = Transaction.objects.filter(bank=bank).count()
    for minutes in (5, 6, 7):
        actions.do_transfer(None, from_member=members[0], to_member=members[2], minutes=minutes, kind="relative")
    unsealed = list(Transaction.objects.filter(bank=bank, seq__isnull=True).order_by("id"))
    assert len(unsealed) == Transaction.objects.filter(bank=bank).count()  # in this mode nothing is sealed yet
    assert all(t.hash == "" and t.prev_hash == "" for t in unsealed)
    assert backlog() >= len(unsealed) >= before + 3
    # Balances never wait for sealing.
    members[2].refresh_from_db()
    report = verify([bank.pk])
    assert report.ok, report.problems  # rows younger than the bound are not a problem ...
    assert report.unsealed["ledger"] >= 3  # ... but they are shown
    result = seal_all()
    assert result.rows >= len(unsealed)
    assert backlog() == 0
    by_id = [s or 0 for s in Transaction.objects.filter(bank=bank).order_by("id").values_list("seq", flat=True)]
    assert by_id == sorted(by_id) and 0 not in by_id  # committed one after another: the chain follows the id order
    _chain_ok(bank)


@process_mode
def test_a_row_left_unsealed_longer_than_the_bound_is_a_verify_problem(db: None) -> None:
    bank, members = _bank(2)
    actions.do_transfer(None, from_member=members[0], to_member=members[1], minutes=9, kind="relative")
    with override_settings(CHAIN_SEAL_BOUND_SECONDS=0):
        problems = verify([bank.pk]).problems
    assert any("not sealed" in p and "ledger chain" in p for p in problems), problems
    assert any("not sealed" in p and "audit chain" in p for p in problems), problems
    seal_all()
    with override_settings(CHAIN_SEAL_BOUND_SECONDS=0):
        assert verify([bank.pk]).ok


@process_mode
def test_verify_and_checkpoint_commands_seal_on_demand(db: None, tmp_path: Any) -> None:
    bank, members = _bank(2)
    actions.do_transfer(None, from_member=members[0], to_member=members[1], minutes=4, kind="relative")
    assert backlog() > 0
    out = tmp_path / "cp.json"
    call_command("checkpoint", "--out", str(out))  # a checkpoint names sealed tips only: it seals first
    assert backlog() == 0
    call_command("verify", "--checkpoint", str(out))
    actions.do_transfer(None, from_member=members[1], to_member=members[0], minutes=3, kind="relative")
    call_command("verify", "--seal")
    assert backlog() == 0
    _chain_ok(bank)


def test_seal_command_and_task_seal_what_is_waiting(db: None) -> None:
    with process_mode:
        bank, members = _bank(2)
    assert backlog() > 0
    call_command("seal")
    assert backlog() == 0
    with process_mode:
        actions.do_transfer(None, from_member=members[0], to_member=members[1], minutes=8, kind="relative")
    assert backlog() > 0
    assert seal_chains.call() > 0  # the task worker's entry point
    assert backlog() == 0
    _chain_ok(bank)


@pytest.fixture
def pg(transactional_db: None) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("commit order and row locks are a PostgreSQL test")


@process_mode
def test_a_writer_does_not_wait_for_the_chain_head(pg: None) -> None:
    """The sealer holds the bank's chain head; a transfer still commits at once (before: it waited for it)."""
    bank, members = _bank(2)
    seal_all()
    held = threading.Event()
    release = threading.Event()

    def sealer_holding_the_head() -> None:
        try:
            with transaction.atomic():
                ChainHead.objects.select_for_update().get(scope=scope_for(bank.pk))
                held.set()
                release.wait(20)
        finally:
            connections.close_all()

    t = threading.Thread(target=sealer_holding_the_head)
    t.start()
    try:
        assert held.wait(10)
        done = threading.Event()

        def writer() -> None:
            try:
                actions.do_transfer(None, from_member=members[0], to_member=members[1], minutes=11, kind="relative")
                done.set()
            finally:
                connections.close_all()

        w = threading.Thread(target=writer)
        w.start()
        assert done.wait(10), "the transfer waited for the chain head"
        w.join()
    finally:
        release.set()
        t.join()
    seal_all()
    _chain_ok(bank)


@process_mode
def test_a_row_that_commits_after_a_later_id_is_sealed_not_skipped(pg: None) -> None:
    """Ids are drawn before commit: transaction A draws a lower id than B but commits after B and after a seal.
    The queue is the unsealed rows themselves, so A is sealed by the next batch, after B."""
    bank, members = _bank(4)
    seal_all()
    a_has_id = threading.Event()
    a_may_commit = threading.Event()
    ids: dict[str, int] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                tx, _replayed = actions.do_transfer(
                    None, from_member=members[0], to_member=members[1], minutes=13, kind="relative"
                )
                ids["a"] = tx.pk
                a_has_id.set()
                a_may_commit.wait(20)
        finally:
            connections.close_all()

    t = threading.Thread(target=slow_writer)
    t.start()
    try:
        assert a_has_id.wait(10)
        b, _replayed = actions.do_transfer(  # other accounts than A's: B does not wait for A
            None, from_member=members[2], to_member=members[3], minutes=17, kind="relative"
        )
        assert b.pk > ids["a"]
        seal_all()  # sees B (committed), not A (in flight)
        assert Transaction.objects.get(pk=b.pk).seq is not None
        assert not Transaction.objects.filter(pk=ids["a"]).exists()  # invisible until it commits
    finally:
        a_may_commit.set()
        t.join()
    a = Transaction.objects.get(pk=ids["a"])
    assert a.seq is None
    seal_all()
    a.refresh_from_db()
    assert a.seq == (Transaction.objects.get(pk=b.pk).seq or 0) + 1  # sealed, after B
    _chain_ok(bank)


@process_mode
def test_parallel_writers_and_two_sealers_seal_every_row_exactly_once(pg: None) -> None:
    bank, members = _bank(4)
    seal_all()
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        rng = random.Random(n)
        try:
            for _ in range(25):
                a, b = rng.sample(members, 2)
                actions.do_transfer(None, from_member=a, to_member=b, minutes=rng.randint(1, 5), kind="relative")
                with transaction.atomic():
                    record(None, "test.note", a, bank_id=bank.pk, data={"n": n})
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    def sealer() -> None:
        try:
            while not stop.is_set():
                seal_scope(scope_for(bank.pk), limit=7)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    sealers = [threading.Thread(target=sealer) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in sealers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in sealers:
        t.join()
    assert not errors, errors
    seal_all()
    assert backlog() == 0
    _chain_ok(bank)


def test_postgres_refuses_every_change_of_a_row_but_its_sealing(pg: None) -> None:
    bank, members = _bank(2)
    tx = Transaction.objects.filter(bank=bank).order_by("-id").first()
    assert tx is not None and tx.seq is not None
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.filter(pk=tx.pk).update(hash="0" * 64)  # a sealed row stays as sealed
    with process_mode:
        fresh, _replayed = actions.do_transfer(
            None, from_member=members[0], to_member=members[1], minutes=2, kind="relative"
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        # "Sealing" that also changes the row's content is refused.
        Transaction.objects.filter(pk=fresh.pk).update(seq=999, prev_hash="a" * 64, hash="b" * 64, minutes=99)
    with pytest.raises(IntegrityError), transaction.atomic():
        Transaction.objects.filter(pk=fresh.pk).delete()
    seal_all()
    _chain_ok(bank)


@process_mode
def test_writers_back_off_after_commit_while_the_backlog_is_over_the_limit(
    db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every 64th write checks the backlog after its commit and waits while it is over CHAIN_SEAL_BACKLOG, so a slow
    sealer slows the writers instead of letting the unsealed tail grow without bound."""
    from timebank.audit import sealing

    bank, members = _bank(2)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        seal_all()  # the sealer catches up while the writer waits

    monkeypatch.setattr(sealing.time, "sleep", sleep)
    with override_settings(CHAIN_SEAL_BACKLOG=1):
        sealing._writes.count = 63  # the next write is a 64th
        assert backlog() > 1
        sealing._maybe_back_off()
    assert waits and backlog() == 0
    waits.clear()
    with override_settings(CHAIN_SEAL_BACKLOG=1_000):
        sealing._writes.count = 63
        actions.do_transfer(None, from_member=members[0], to_member=members[1], minutes=3, kind="relative")
        sealing._maybe_back_off()  # under the limit: no wait
    assert waits == []
    _ = bank
