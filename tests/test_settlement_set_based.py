"""Settlement written set-based (PostgreSQL): the same results as the per-member rules, all or nothing per
member, resumable after a failure in the middle of a batch. The plain-rows path (SQLite) passes the same checks."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from tests.conftest import World, is_postgres, make_member
from tests.ledger_checks import ledger_problems
from timebank.ledger import actions
from timebank.ledger.models import Account, Leg, Settlement, SettlementLine, Transaction
from timebank.ledger.settlement import cutoff_for, run_settlement, split, start_settlement
from timebank.ledger.verify import verify
from timebank.members.models import Member
from timebank.orgs.actions import do_update_rules
from timebank.orgs.models import Rules

PATHS = [pytest.param(True, id="set_based"), pytest.param(False, id="rows")]


def _path(set_based: bool) -> bool:
    if set_based and not is_postgres():
        pytest.skip("the set-based settlement is PostgreSQL's")
    return set_based


def buckets(member: Member) -> dict[str, int]:
    return dict(Account.objects.filter(member=member).values_list("kind", "balance_minutes"))


def _people(world: World, period_end: dt.date) -> list[tuple[Member, int]]:
    """Members with earned minutes before the cutoff, some posted after it, one below zero, one with nothing.
    Returns each with the minutes the per-member rule moves: what was in earned at the cutoff, if above zero."""
    do_update_rules(
        None, Rules.objects.get(head_office=world.bank), {"goods_share_percent": 33, "overdraft_minutes": 500}
    )
    cutoff = cutoff_for(period_end)
    before, after = cutoff - dt.timedelta(hours=1), cutoff + dt.timedelta(hours=1)
    plan = [  # (minutes before the cutoff, minutes after it, withdrawn after it)
        (1, 0, 0),
        (2, 0, 0),
        (3, 5, 0),
        (99, 0, 0),
        (100, 60, 0),
        (421, 0, 0),
        (0, 0, 0),
        (0, 45, 0),
        (80, 0, 30),  # a withdrawal after the cutoff: earned now is below what it held at the cutoff
        (50, 0, 0),
    ]
    people: list[tuple[Member, int]] = []
    for i, (pre, post, withdrawn) in enumerate(plan):
        member = make_member(world.community if i % 2 else world.community2, f"结算会员{i}")
        expected = pre
        for moment, minutes in ((before, pre), (after, post)):
            if minutes:
                with mock.patch("django.utils.timezone.now", return_value=moment):
                    actions.do_deposit(None, volunteer=member, minutes=minutes, payer="subsidy")
        if withdrawn:
            with mock.patch("django.utils.timezone.now", return_value=after):
                actions.do_withdrawal(None, member=member, minutes=withdrawn)
            expected = min(pre, pre - withdrawn)  # only what is still in earned can move
        people.append((member, expected))
    # Below zero at the cutoff: nothing moves.
    overdrawn = make_member(world.community, "透支会员")
    with mock.patch("django.utils.timezone.now", return_value=before):
        actions.do_deposit(None, volunteer=overdrawn, minutes=20, payer="subsidy")
        actions.do_withdrawal(None, member=overdrawn, minutes=70)
    people.append((overdrawn, 0))
    return people


def _state(settlement: Settlement, people: list[tuple[Member, int]]) -> dict[str, Any]:
    settlement.refresh_from_db()
    return {
        "buckets": {m.pk: buckets(m) for m, _e in people},
        "lines": sorted(
            SettlementLine.objects.filter(settlement=settlement).values_list(
                "member_id", "org_id", "earned_minutes", "goods_minutes", "reserve_minutes"
            )
        ),
        "totals": (
            settlement.status,
            settlement.members,
            settlement.moved_minutes,
            settlement.goods_minutes,
            settlement.reserve_minutes,
        ),
    }


@pytest.mark.parametrize("set_based", PATHS)
def test_each_member_is_split_by_the_rules_share_with_one_line_each(world: World, set_based: bool) -> None:
    period_end = timezone.localdate() - dt.timedelta(days=2)
    people = _people(world, period_end)
    before = {m.pk: buckets(m) for m, _e in people}
    settlement, _ = start_settlement(None, world.bank, period_end)
    assert settlement.goods_share_percent == 33
    done = run_settlement(settlement, batch=3, set_based=_path(set_based))
    lines = {line.member_id: line for line in SettlementLine.objects.filter(settlement=done)}
    for member, moved in people:
        goods, reserve = split(moved, 33)
        was = before[member.pk]
        assert buckets(member) == {
            "earned": was["earned"] - moved,
            "goods": was["goods"] + goods,
            "reserve": was["reserve"] + reserve,
        }, member.name
        if moved:
            line = lines[member.pk]
            assert (line.org_id, line.earned_minutes, line.goods_minutes, line.reserve_minutes) == (
                member.home_org_id,
                moved,
                goods,
                reserve,
            )
        else:
            assert member.pk not in lines
    moved_total = sum(m for _p, m in people)
    assert (done.status, done.members, done.moved_minutes) == ("done", sum(1 for _p, m in people if m), moved_total)
    assert done.goods_minutes + done.reserve_minutes == moved_total
    assert done.goods_minutes == sum(split(m, 33)[0] for _p, m in people)
    # One balanced ledger transaction per batch that moved anything, its legs the members' three buckets.
    txs = Transaction.objects.filter(kind="settlement")
    assert all(len(lines_of) <= 3 for lines_of in [SettlementLine.objects.filter(transaction=t) for t in txs])
    assert Leg.objects.filter(transaction__in=txs).count() == sum(
        (1 if m else 0) + sum(1 for x in split(m, 33) if x) for _p, m in people
    )
    assert ledger_problems(world.bank.pk) == []
    report = verify()
    assert report.ok, report.problems


def test_the_set_based_path_writes_what_the_plain_rows_path_writes(world: World) -> None:
    if not is_postgres():
        pytest.skip("the set-based settlement is PostgreSQL's")
    period_end = timezone.localdate() - dt.timedelta(days=2)
    people = _people(world, period_end)
    with transaction.atomic():
        settlement, _ = start_settlement(None, world.bank, period_end)
        rows = _state(run_settlement(settlement, batch=4, set_based=False), people)
        transaction.set_rollback(True)
    assert not Settlement.objects.exists()
    settlement, _ = start_settlement(None, world.bank, period_end)
    set_based = _state(run_settlement(settlement, batch=4, set_based=True), people)
    assert set_based == rows
    assert rows["totals"][1] > 0
    assert verify().ok


@pytest.mark.parametrize("set_based", PATHS)
def test_a_failure_inside_a_batch_leaves_its_members_untouched_and_the_run_resumes(
    world: World, set_based: bool
) -> None:
    """The third batch fails after its legs, balances and lines were written (at its progress update): the first two
    batches' members stay settled, the third's are as before, and resuming settles each remaining member once."""
    _path(set_based)
    people = [make_member(world.community, f"续结会员{i}") for i in range(8)]
    for i, member in enumerate(people):
        actions.do_deposit(None, volunteer=member, minutes=100 + i, payer="subsidy")
    in_order = Account.objects.filter(bank=world.bank, kind="earned", member__isnull=False).order_by("pk")
    first_two_batches = set(in_order.values_list("member_id", flat=True)[:6])
    expected = {m.pk for m in people} & first_two_batches
    assert 0 < len(expected) < len(people)
    settlement, _ = start_settlement(None, world.bank, timezone.localdate())
    save = Settlement.save
    calls = {"n": 0}

    def failing_save(self: Settlement, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("update_fields") and "last_account_id" in kwargs["update_fields"]:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("the settling process died")
        save(self, *args, **kwargs)

    with mock.patch.object(Settlement, "save", failing_save), pytest.raises(RuntimeError):
        run_settlement(settlement, batch=3, set_based=set_based)
    stopped = Settlement.objects.get(pk=settlement.pk)
    settled = set(SettlementLine.objects.filter(settlement=stopped).values_list("member_id", flat=True))
    assert settled == expected
    assert stopped.status == "running" and stopped.members == len(expected)
    assert Leg.objects.filter(transaction__kind="settlement").count() == 3 * len(expected)  # earned, goods, reserve
    for member in people:
        assert (buckets(member)["earned"] == 0) == (member.pk in settled)  # all or nothing per member
    assert verify().ok  # nothing half-written: balances, legs and chains agree
    finished = run_settlement(stopped, batch=3, set_based=set_based)
    run_settlement(Settlement.objects.get(pk=settlement.pk), batch=3, set_based=set_based)  # once more: no-op
    assert finished.status == "done" and finished.members == len(people)
    assert finished.moved_minutes == sum(100 + i for i in range(len(people)))
    lines = list(SettlementLine.objects.filter(settlement=settlement).values_list("member_id", flat=True))
    assert sorted(lines) == sorted(m.pk for m in people)  # none twice, none skipped
    for i, member in enumerate(people):
        goods, reserve = split(100 + i, 50)
        assert buckets(member) == {"earned": 0, "goods": goods, "reserve": reserve}
    report = verify()
    assert report.ok, report.problems


def test_the_set_based_path_needs_postgresql(world: World) -> None:
    if is_postgres():
        pytest.skip("SQLite only")
    settlement, _ = start_settlement(None, world.bank, timezone.localdate())
    with pytest.raises(ValueError):
        run_settlement(settlement, set_based=True)
