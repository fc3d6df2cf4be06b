"""Issue 17: on PostgreSQL with the sealer in its own process, `do_transfer`'s common case is one autocommitted
statement (`ledger_transfer`, migration ledger/0019), and every rule still holds: idempotency (replay, reused key),
never overdrawing (reserve first, then earned, never goods), the storage cap, the audit entry, the daily summary,
the locks under contention. Anything but the common case falls back to the Python path, which decides it."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from tests.conftest import new_id_number
from tests.ledger_checks import ledger_problems
from timebank.audit.models import AuditEntry
from timebank.audit.sealing import seal_all
from timebank.ledger import actions
from timebank.ledger.models import Account, AccountKind, DailySummary, Leg, Transaction
from timebank.ledger.verify import verify
from timebank.lib.errors import Conflict
from timebank.members.actions import MemberInput, do_register_member
from timebank.members.models import Member, MemberStatus
from timebank.orgs.actions import do_create_org, do_update_rules
from timebank.orgs.models import Rules, User

pytestmark = pytest.mark.postgres


class Bank:
    def __init__(self) -> None:
        self.org = do_create_org(None, name="一次往返银行", kind="head_office", parent=None)
        community = do_create_org(None, name="社区", kind="sub_branch", parent=self.org)
        self.members = [
            do_register_member(
                None,
                home_org=community,
                data=MemberInput(name=f"会员{i}", id_number=new_id_number(dt.date(1950, 1, 1 + i))),
                approved=True,
            )
            for i in range(3)
        ]
        self.actor = User.objects.create_user("giver", password="x-pass-word-1")

    def bucket(self, member: Member, kind: str) -> int:
        return Account.objects.get(member=member, kind=kind).balance_minutes

    def pool(self) -> int:
        return Account.objects.get(bank=self.org, member__isnull=True, kind=AccountKind.DONATION_POOL).balance_minutes

    def check(self) -> None:
        assert ledger_problems(self.org.pk) == []
        seal_all()
        report = verify([self.org.pk])
        assert report.ok, report.problems


@pytest.fixture
def bank(transactional_db: None, settings: Any) -> Bank:
    if connection.vendor != "postgresql":
        pytest.skip("ledger_transfer is PostgreSQL's")
    settings.CHAIN_SEALING = "process"
    return Bank()


def _open(b: Bank, member: Member, *, reserve: int = 0, earned: int = 0, goods: int = 0) -> None:
    for bucket, minutes in (("reserve", reserve), ("earned", earned), ("goods", goods)):
        if minutes:
            actions.do_adjustment(None, member=member, minutes=minutes, bucket=bucket, reason="开户")


def test_a_transfer_is_one_statement_and_keeps_every_record(bank: Bank) -> None:
    giver, taker, _ = bank.members
    _open(bank, giver, reserve=30, earned=20, goods=100)
    with CaptureQueriesContext(connection) as sql:
        tx, replayed = actions.do_transfer(
            bank.actor, from_member=giver, to_member=taker, minutes=40, kind="donation", idempotency_key="k1"
        )
    assert [q["sql"].split("(")[0] for q in sql.captured_queries] == ["SELECT ledger_transfer"]
    assert not replayed and tx.pk and tx.minutes == 40 and tx.kind == "donation"
    # Reserve first, then earned; goods never.
    assert (bank.bucket(giver, "reserve"), bank.bucket(giver, "earned"), bank.bucket(giver, "goods")) == (0, 10, 100)
    assert bank.bucket(taker, "reserve") == 40
    stored = Transaction.objects.get(pk=tx.pk)
    assert (stored.idem_scope, stored.idempotency_key, stored.fingerprint, stored.actor_id) == (
        f"user:{bank.actor.pk}",
        "k1",
        tx.fingerprint,
        bank.actor.pk,
    )
    legs = sorted(Leg.objects.filter(transaction=tx).values_list("account__kind", "minutes", "balance_after_minutes"))
    assert legs == [("earned", -10, 10), ("reserve", -30, 0), ("reserve", 40, 40)]
    entry = AuditEntry.objects.get(action="ledger.donation", object_id=str(tx.pk))
    assert entry.data == {"from": giver.pk, "to": taker.pk, "minutes": 40}
    assert entry.actor_id == bank.actor.pk and entry.scope == f"bank:{bank.org.pk}"
    counted = DailySummary.objects.filter(bank=bank.org, kind="donation").values_list("transactions", "minutes")
    assert [sum(c[0] for c in counted), sum(c[1] for c in counted)] == [1, 40]
    bank.check()


def test_a_repeat_replays_and_a_reused_key_is_refused(bank: Bank) -> None:
    giver, _, _ = bank.members
    _open(bank, giver, reserve=50)
    first, _ = actions.do_transfer(
        bank.actor, from_member=giver, to_member=None, minutes=5, kind="donation", idempotency_key="k"
    )
    again, replayed = actions.do_transfer(
        bank.actor, from_member=giver, to_member=None, minutes=5, kind="donation", idempotency_key="k"
    )
    assert replayed and again.pk == first.pk
    with pytest.raises(Conflict) as reused:
        actions.do_transfer(
            bank.actor, from_member=giver, to_member=None, minutes=6, kind="donation", idempotency_key="k"
        )
    assert reused.value.code == "idempotency_key_reused"
    # A repeat still replays when the payer could no longer pay, or has left the bank since.
    actions.do_transfer(bank.actor, from_member=giver, to_member=None, minutes=45, kind="donation")
    Member.objects.filter(pk=giver.pk).update(status=MemberStatus.SUSPENDED)
    giver.refresh_from_db()
    again, replayed = actions.do_transfer(
        bank.actor, from_member=giver, to_member=None, minutes=5, kind="donation", idempotency_key="k"
    )
    assert replayed and again.pk == first.pk
    assert Transaction.objects.filter(idempotency_key="k").count() == 1
    assert bank.pool() == 50
    bank.check()


def test_never_overdraws_and_a_refusal_keeps_its_key(bank: Bank) -> None:
    giver, taker, _ = bank.members
    _open(bank, giver, reserve=5, earned=5, goods=500)
    before = Transaction.objects.count()
    with pytest.raises(Conflict) as refused:
        actions.do_transfer(
            bank.actor, from_member=giver, to_member=taker, minutes=11, kind="donation", idempotency_key="r"
        )
    assert refused.value.code == "insufficient_balance" and refused.value.fields == {"available_minutes": 10}
    assert Transaction.objects.count() == before and bank.bucket(taker, "reserve") == 0
    # The key was not consumed: the corrected request goes through under it.
    tx, replayed = actions.do_transfer(
        bank.actor, from_member=giver, to_member=taker, minutes=10, kind="donation", idempotency_key="r"
    )
    assert not replayed and tx.minutes == 10
    assert (bank.bucket(giver, "reserve"), bank.bucket(giver, "earned"), bank.bucket(giver, "goods")) == (0, 0, 500)
    bank.check()


def test_an_inactive_member_is_refused(bank: Bank) -> None:
    giver, taker, _ = bank.members
    _open(bank, giver, reserve=50)
    Member.objects.filter(pk=taker.pk).update(status=MemberStatus.SUSPENDED)
    taker.refresh_from_db()
    with pytest.raises(Conflict) as refused:
        actions.do_transfer(bank.actor, from_member=giver, to_member=taker, minutes=5, kind="donation")
    assert refused.value.code == "member_not_active"
    assert bank.bucket(giver, "reserve") == 50


def test_the_storage_cap_sends_the_excess_to_the_pool_with_its_notice(bank: Bank) -> None:
    from timebank.notify.hooks import OVER_CAP_TEMPLATE
    from timebank.notify.models import Notification

    giver, taker, _ = bank.members
    do_update_rules(None, Rules.objects.get(head_office=bank.org), {"storage_cap_hours": 1})
    _open(bank, giver, reserve=50)
    _open(bank, taker, earned=30)
    # Under the cap: the one statement.
    with CaptureQueriesContext(connection) as sql:
        actions.do_transfer(bank.actor, from_member=giver, to_member=taker, minutes=30, kind="donation")
    assert len(sql.captured_queries) == 1
    assert bank.bucket(taker, "reserve") == 30 and bank.pool() == 0
    # Over it: the Python path, which sends the part over the cap to the pool and tells the member.
    tx, _ = actions.do_transfer(bank.actor, from_member=giver, to_member=taker, minutes=20, kind="donation")
    assert (bank.bucket(taker, "reserve"), bank.pool(), tx.minutes) == (30, 20, 20)
    assert AuditEntry.objects.get(object_id=str(tx.pk)).data["over_cap"] == 20
    assert Notification.objects.filter(member=taker, template=OVER_CAP_TEMPLATE).count() == 1
    bank.check()


def test_inside_a_callers_transaction_it_posts_in_that_transaction(bank: Bank) -> None:
    from django.db import transaction

    giver, taker, _ = bank.members
    _open(bank, giver, reserve=50)
    with transaction.atomic():
        actions.do_transfer(bank.actor, from_member=giver, to_member=taker, minutes=7, kind="donation")
        transaction.set_rollback(True)
    assert bank.bucket(taker, "reserve") == 0 and bank.bucket(giver, "reserve") == 50


def _race(bank: Bank, calls: list[dict[str, Any]]) -> tuple[list[tuple[Transaction, bool]], list[BaseException]]:
    answers: list[tuple[Transaction, bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(calls))

    def worker(call: dict[str, Any]) -> None:
        try:
            barrier.wait()
            got = actions.do_transfer(bank.actor, **call)
            with lock:
                answers.append(got)
        except BaseException as exc:
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return answers, errors


def test_one_key_sent_at_once_by_many_writes_once(bank: Bank) -> None:
    giver, taker, _ = bank.members
    _open(bank, giver, reserve=100)
    call = {"from_member": giver, "to_member": taker, "minutes": 9, "kind": "donation", "idempotency_key": "same"}
    answers, errors = _race(bank, [dict(call) for _ in range(6)])
    assert errors == []
    assert len({tx.pk for tx, _ in answers}) == 1 and sorted(r for _, r in answers) == [False] + [True] * 5
    assert bank.bucket(taker, "reserve") == 9
    bank.check()


def test_many_payments_at_once_from_one_member_never_overdraw(bank: Bank) -> None:
    giver, taker, other = bank.members
    _open(bank, giver, reserve=30, earned=20)
    calls = [
        {"from_member": giver, "to_member": [taker, other, None][i % 3], "minutes": 10, "kind": "donation"}
        for i in range(8)
    ]
    answers, errors = _race(bank, calls)
    assert len(answers) == 5 and len(errors) == 3
    assert all(isinstance(e, Conflict) and e.code == "insufficient_balance" for e in errors)
    assert bank.bucket(giver, "reserve") == 0 and bank.bucket(giver, "earned") == 0
    assert bank.bucket(taker, "reserve") + bank.bucket(other, "reserve") + bank.pool() == 50
    bank.check()


def test_a_bank_without_rules_is_not_posted_by_the_function(bank: Bank) -> None:
    """The Python path decides what a bank without its rules row answers; the function writes nothing for it."""
    giver, taker, _ = bank.members
    _open(bank, giver, reserve=50)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ledger_transfer(%s, %s, %s, 5, 'donation', '', NULL, '', NULL, '', now(), 'x', 'a', '{}', "
            "current_date, 8)",
            [-1, giver.pk, taker.pk],
        )
        assert cursor.fetchone() == (None,)
    assert bank.bucket(giver, "reserve") == 50
