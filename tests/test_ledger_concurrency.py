"""Contention on PostgreSQL: many threads moving credits among few accounts at once."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections import defaultdict
from typing import Any

import pytest
from django.db import connection, connections

from tests.conftest import new_id_number
from tests.ledger_checks import ledger_problems
from timebank.ledger import actions
from timebank.ledger.models import Account, Transaction
from timebank.ledger.verify import verify
from timebank.lib.errors import Conflict
from timebank.members.actions import MemberInput, do_link_relative, do_register_member
from timebank.members.models import Member
from timebank.orgs.actions import do_create_org
from timebank.orgs.models import User

THREADS = 8
OPS_PER_THREAD = 40
START_MINUTES = 300


@pytest.fixture
def contended_bank(transactional_db: None) -> tuple[int, list[Member], list[User]]:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock contention is a PostgreSQL test")
    bank = do_create_org(None, name="并发银行", kind="head_office", parent=None)
    community = do_create_org(None, name="社区", kind="sub_branch", parent=bank)
    members = [
        do_register_member(
            None,
            home_org=community,
            data=MemberInput(name=f"会员{i}", id_number=new_id_number(dt.date(1950, 1, 1 + i))),
            approved=True,
        )
        for i in range(4)
    ]
    for i, a in enumerate(members):
        for b in members[i + 1 :]:
            do_link_relative(None, a, b, "亲属")
        actions.do_adjustment(None, member=a, minutes=START_MINUTES, bucket="reserve", reason="opening")
    actors = [User.objects.create_user(f"worker{i}", password="x-pass-word-1") for i in range(THREADS)]
    return bank.pk, members, actors


def test_contended_transfers_keep_every_invariant(contended_bank: tuple[int, list[Member], list[User]]) -> None:
    bank_id, members, actors = contended_bank
    shared_actor = actors[0]
    results: dict[tuple[int, str], set[int]] = defaultdict(set)  # (actor, key) -> transaction ids answered
    errors: list[BaseException] = []
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)
    refused = [0]

    def worker(n: int) -> None:
        rng = random.Random(n)
        try:
            barrier.wait()
            for i in range(OPS_PER_THREAD):
                a, b = rng.sample(members, 2)
                minutes = rng.randint(1, 120)
                op = rng.random()
                # A fifth of the calls replay a key that other threads use too, with the same body.
                if op < 0.2:
                    actor, key = shared_actor, f"shared-{i % 5}"
                    call: dict[str, Any] = {
                        "from_member": members[0],
                        "to_member": members[1],
                        "minutes": 7,
                        "kind": "relative",
                    }
                    fn: Any = actions.do_transfer
                elif op < 0.55:
                    actor, key = actors[n], f"t{n}-{i}"
                    call, fn = (
                        {"from_member": a, "to_member": b, "minutes": minutes, "kind": "relative"},
                        actions.do_transfer,
                    )
                elif op < 0.75:
                    actor, key = actors[n], f"d{n}-{i}"
                    call, fn = (
                        {"from_member": a, "to_member": None, "minutes": minutes, "kind": "donation"},
                        actions.do_transfer,
                    )
                elif op < 0.9:
                    actor, key = actors[n], f"w{n}-{i}"
                    call, fn = {"member": a, "minutes": minutes}, actions.do_withdrawal
                else:
                    actor, key = actors[n], f"p{n}-{i}"
                    call, fn = {"volunteer": a, "minutes": minutes, "payer": "pool"}, actions.do_deposit
                try:
                    tx, _replayed = fn(actor, idempotency_key=key, **call)
                except Conflict:
                    with lock:
                        refused[0] += 1
                    continue
                with lock:
                    results[(actor.pk, key)].add(tx.pk)
        except BaseException as exc:  # any escape (deadlock, 5xx-worthy error) fails the test
            with lock:
                errors.append(exc)
        finally:
            connections.close_all()

    before = Transaction.objects.filter(bank_id=bank_id).count()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a worker hung: a deadlock was left unhandled"
    assert errors == [], errors

    # Every key answered one and the same transaction, and nothing else was written.
    assert all(len(ids) == 1 for ids in results.values()), "a replayed key produced a second transaction"
    created = Transaction.objects.filter(bank_id=bank_id).count() - before
    assert created == len(results)
    assert refused[0] + sum(1 for _ in results) > 0

    assert ledger_problems(bank_id) == []
    report = verify([bank_id])
    assert report.ok, report.problems
    # Nothing lost: every minute is somewhere, and the members' total moved only by issuance-side legs.
    total = sum(Account.objects.filter(bank_id=bank_id).values_list("balance_minutes", flat=True))
    assert total == 0
