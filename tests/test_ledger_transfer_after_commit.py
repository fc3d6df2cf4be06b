"""A review finding (057e411), fixed: in "process" sealing outside a caller's transaction, `ledger_transfer` is autocommitted,
then `seal_inline` runs the writer's backlog check (every 64th write, `_maybe_back_off`, a query) after that commit.
`transfer_in_one_call` treats an OperationalError from that check like one from the statement ("nothing written,
take the general path"), so a transfer without an idempotency key was posted a second time. Now only the statement's
own failure means "nothing written", and the backlog check, which runs after a commit, logs its failure instead of
raising (`timebank.audit.sealing._maybe_back_off`).

The fault is injected where a real one would come from: the backlog check's query fails (a statement timeout, an
administrator's pg_cancel_backend, a dropped connection all raise OperationalError there)."""

from __future__ import annotations

import contextlib

import pytest
from django.db import OperationalError

from tests.test_ledger_transfer_one_call import Bank, _open, bank  # noqa: F401 - the fixture
from timebank.audit import sealing
from timebank.ledger import actions, posting
from timebank.ledger.models import Transaction

pytestmark = pytest.mark.postgres


def test_a_failed_backlog_check_after_the_commit_does_not_post_the_transfer_twice(
    bank: Bank,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    giver, taker, _ = bank.members
    _open(bank, giver, reserve=100)
    before = Transaction.objects.filter(bank=bank.org).count()

    def cancelled(limit: int) -> int:
        raise OperationalError("canceling statement due to statement timeout")

    monkeypatch.setattr(sealing, "_capped_backlog", cancelled)
    sealing._writes.count = 63  # the next write is the 64th: it checks the backlog

    tx, replayed = actions.do_transfer(bank.actor, from_member=giver, to_member=taker, minutes=10, kind="donation")
    assert not replayed and tx.pk is not None  # the committed transfer is answered, not an error
    assert Transaction.objects.filter(bank=bank.org).count() == before + 1
    assert bank.bucket(giver, "reserve") == 90


def test_a_failure_after_the_one_call_commit_never_posts_again(
    bank: Bank,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever fails once the statement committed (here the after-commit step itself), the general path is not
    taken: the error reaches the caller and the transfer stands once."""
    giver, taker, _ = bank.members
    _open(bank, giver, reserve=100)
    before = Transaction.objects.filter(bank=bank.org).count()

    real = posting.seal_inline
    failures = [OperationalError("server closed the connection unexpectedly")]

    def broken_once(scope: str, chains: list[str]) -> None:
        if failures:
            raise failures.pop()
        real(scope, chains)  # a second posting, if one were tried, would go through

    monkeypatch.setattr(posting, "seal_inline", broken_once)
    with contextlib.suppress(OperationalError):  # an error is an acceptable answer; a second posting is not
        actions.do_transfer(bank.actor, from_member=giver, to_member=taker, minutes=10, kind="donation")
    assert Transaction.objects.filter(bank=bank.org).count() == before + 1
    assert bank.bucket(giver, "reserve") == 90
