"""Issue 16 races, on PostgreSQL (each thread its own connection, committed data; SQLite serialises writers):

- one incoming federation move decided twice at once (approve + approve, approve + reject, through the API and
  through the page's form): exactly one decision, one audit row, the member and the balances credited once;
- the storage cap (orgs rules `storage_cap_hours`) under parallel credits to one member: the member never ends
  above the cap and the donation pool gets exactly the excess."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from django.db import close_old_connections
from django.test import Client

from tests.conftest import World, build_world
from tests.ledger_checks import ledger_problems
from tests.test_city_rules import bucket, held, pool, set_rules
from tests.test_federation_move_pages import _incoming, _peer
from tests.test_trust_08_races import Call, fire, postgres_only
from timebank.audit.models import AuditEntry
from timebank.federation.models import FederatedMove, Peer
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account
from timebank.lib.errors import ApiError
from timebank.members.models import Member
from timebank.orgs.actions import do_issue_token


def _node(settings: Any) -> tuple[World, Peer]:
    settings.FEDERATION_NODE_ID = "node-here"
    settings.FEDERATION_SIGNING_KEY = "A" * 43 + "="
    settings.FEDERATION_ID_HASH_KEY = "test-id-hash-key"
    w = build_world()
    return w, _peer(w)


def _decided_once(w: World, peer: Peer, move: FederatedMove, clearing_before: int) -> str:
    """The move's one decision: its state, with one audit row, and the member and credits at most once."""
    move.refresh_from_db()
    approvals = AuditEntry.objects.filter(action="federation.move_approve", object_id=str(move.pk)).count()
    rejections = AuditEntry.objects.filter(action="federation.move_reject", object_id=str(move.pk)).count()
    assert approvals + rejections == 1, (approvals, rejections)
    clearing = Account.objects.get(pk=peer.clearing_account_id).balance_minutes
    arrived = Member.objects.filter(name="李四")
    if move.state == "completed":
        assert approvals == 1 and arrived.count() == 1 and move.member_id == arrived.get().pk
        assert (bucket(arrived.get(), "earned"), bucket(arrived.get(), "reserve")) == (60, 30)
        assert clearing == clearing_before - 90
    else:
        assert move.state == "refused" and rejections == 1 and not arrived.exists()
        assert clearing == clearing_before
    assert ledger_problems(w.bank.pk) == []
    return move.state


@postgres_only
def test_approving_one_move_twice_at_once_decides_it_once(settings: Any) -> None:
    w, peer = _node(settings)
    move = _incoming(peer, w.community.pk)
    before = Account.objects.get(pk=peer.clearing_account_id).balance_minutes
    answers = fire(w, Call("head_office_admin", f"/api/v1/federation/moves/{move.move_id}/approve", {}), "plain")
    assert sorted(a.status for a in answers) == [200] + [409] * (len(answers) - 1), [a.status for a in answers]
    assert {a.code() for a in answers if a.status == 409} == {"move_closed"}
    assert _decided_once(w, peer, move, before) == "completed"


def _approve_and_reject(token: str, move: FederatedMove, round_: int) -> list[tuple[str, int]]:
    """Three approvals and three rejections of `move` through the API at once: (kind, status) of each."""
    barrier = threading.Barrier(6)
    statuses: list[tuple[str, int]] = []

    def decide(kind: str, i: int) -> None:
        try:
            client = Client(raise_request_exception=False)
            body = '{"reason": "社区已满"}' if kind == "reject" else "{}"
            barrier.wait(timeout=30)
            resp = client.post(
                f"/api/v1/federation/moves/{move.move_id}/{kind}",
                body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                REMOTE_ADDR=f"10.9.{round_}.{i + 1}",
            )
            statuses.append((kind, resp.status_code))
        finally:
            close_old_connections()

    _run([partial(decide, "approve" if i % 2 else "reject", i) for i in range(6)])
    return statuses


@postgres_only
def test_approve_and_reject_at_once_decide_once(settings: Any) -> None:
    w, peer = _node(settings)
    token = do_issue_token(w.users["head_office_admin"])
    for round_ in range(3):
        move = _incoming(peer, w.community.pk, name="李四")
        before = Account.objects.get(pk=peer.clearing_account_id).balance_minutes
        statuses = _approve_and_reject(token, move, round_)
        assert sorted(s for _k, s in statuses) == [200] + [409] * 5, statuses
        state = _decided_once(w, peer, move, before)
        winner = next(k for k, s in statuses if s == 200)
        assert state == ("completed" if winner == "approve" else "refused"), (winner, state)
        if state == "completed":
            # Keep the rounds' arrivals apart (each move carries the same name).
            Member.objects.filter(name="李四").update(name=f"李四{round_}")


@postgres_only
def test_the_pages_approve_and_reject_forms_at_once_decide_once(settings: Any) -> None:
    w, peer = _node(settings)
    move = _incoming(peer, w.community.pk)
    before = Account.objects.get(pk=peer.clearing_account_id).balance_minutes
    url = f"/federation/moves/{move.move_id}/"
    # The same approve form sent by every thread (a double click many times over): one decision.
    same = fire(w, Call("head_office_admin", url + "approve/", {"idempotency_key": "one-form"}, form=True), "plain")
    assert all(a.status in (302, 409) for a in same), [a.status for a in same]
    assert _decided_once(w, peer, move, before) == "completed"
    # Reject forms (each its own key) after that: all refused, nothing changes.
    late = fire(
        w, Call("head_office_admin", url + "reject/", {"idempotency_key": "", "reason": "晚了"}, form=True), "plain"
    )
    assert {a.status for a in late} == {409}
    assert _decided_once(w, peer, move, before) == "completed"


def _run(jobs: list[Callable[[], None]]) -> None:
    errors: list[BaseException] = []

    def guard(job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=guard, args=(j,)) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a thread hung (a lock never released)"
    assert errors == [], errors


@postgres_only
def test_parallel_credits_never_take_a_member_above_the_storage_cap() -> None:
    w = build_world()
    son, elder = w.members["relative"], w.members["recipient"]  # linked: the elder may give his son time
    ledger.do_adjustment(None, member=son, minutes=70, bucket="reserve", reason="开户")
    ledger.do_adjustment(None, member=elder, minutes=200, bucket="reserve", reason="开户")
    set_rules(w, storage_cap_hours=2)  # 120 minutes (the elder's 200 were stored before)
    pool_before = pool(w.bank)
    barrier = threading.Barrier(9)
    refused: list[str] = []

    def credit(kind: str, i: int) -> None:
        try:
            barrier.wait(timeout=30)
            if kind == "deposit":
                ledger.do_deposit(None, volunteer=son, minutes=15, payer="subsidy", memo=f"订单 {i}")
            elif kind == "adjustment":
                ledger.do_adjustment(None, member=son, minutes=15, bucket="earned", reason=f"补录 {i}")
            else:  # a gift from his father
                ledger.do_transfer(None, from_member=elder, to_member=son, minutes=15, kind="relative")
        except ApiError as exc:
            refused.append(exc.code)
        finally:
            close_old_connections()

    kinds = ["deposit", "adjustment", "gift"] * 3
    _run([partial(credit, k, i) for i, k in enumerate(kinds)])
    assert refused == [], refused
    # 70 held + 9 x 15 credited = 205: 120 kept, 85 to the pool, exactly.
    assert held(son) == 120
    assert pool(w.bank) - pool_before == 70 + 9 * 15 - 120
    assert held(elder) == 200 - 3 * 15
    assert ledger_problems(w.bank.pk) == []


@postgres_only
def test_parallel_credits_at_the_cap_all_go_to_the_pool() -> None:
    w = build_world()
    set_rules(w, storage_cap_hours=1)
    volunteer = w.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=60, bucket="reserve", reason="开户")
    pool_before = pool(w.bank)
    barrier = threading.Barrier(8)

    def deposit(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            ledger.do_deposit(None, volunteer=volunteer, minutes=7, payer="subsidy", memo=f"订单 {uuid.uuid4()}")
        finally:
            close_old_connections()

    _run([partial(deposit, i) for i in range(8)])
    assert held(volunteer) == 60 and pool(w.bank) - pool_before == 56
    assert ledger_problems(w.bank.pk) == []
