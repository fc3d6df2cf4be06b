"""Settlement: earned minutes split into goods and reserve, once per period, resumable, without loss."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.conftest import World, error_code
from tests.ledger_checks import ledger_problems
from timebank.ledger import actions
from timebank.ledger.models import Account, Settlement, SettlementLine
from timebank.ledger.settlement import run_settlement, split, start_settlement
from timebank.ledger.verify import verify


def buckets(member_id: int) -> dict[str, int]:
    return dict(Account.objects.filter(member_id=member_id).values_list("kind", "balance_minutes"))


def test_split_never_creates_or_loses_a_minute() -> None:
    for moved in range(0, 300):
        for pct in (0, 33, 50, 67, 100):
            goods, reserve = split(moved, pct)
            assert goods + reserve == moved and goods >= 0 and reserve >= goods * 0 and reserve >= 0
    assert split(421, 50) == (210, 211)  # the odd minute stays in reserve


def test_420_earned_at_50_50_becomes_210_and_210(world: World) -> None:
    volunteer = world.members["volunteer"]
    actions.do_deposit(None, volunteer=volunteer, minutes=420, payer="subsidy")
    today = timezone.localdate()
    resp = world.api("head_office_admin").post(
        "/api/v1/settlements", {"head_office_id": world.bank.pk, "period_end": today.isoformat()}
    )
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["already_settled"] is False and body["moved_minutes"] == 420
    assert buckets(volunteer.pk) == {"earned": 0, "goods": 210, "reserve": 210}
    again = world.api("head_office_admin").post(
        "/api/v1/settlements", {"head_office_id": world.bank.pk, "period_end": today.isoformat()}
    )
    assert again.status_code == 200
    assert again.json() == {**body, "already_settled": True, "status": "done"}
    assert buckets(volunteer.pk) == {"earned": 0, "goods": 210, "reserve": 210}
    assert verify().ok


def test_odd_minutes_and_postings_after_the_period_end(world: World) -> None:
    volunteer, neighbour = world.members["volunteer"], world.members["neighbour"]
    actions.do_deposit(None, volunteer=volunteer, minutes=121, payer="subsidy")
    actions.do_deposit(None, volunteer=neighbour, minutes=59, payer="subsidy")
    # Yesterday's settlement counts only what was posted by the end of yesterday (Asia/Shanghai).
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    settlement, _ = start_settlement(None, world.bank, yesterday)
    run_settlement(settlement)
    assert buckets(volunteer.pk)["earned"] == 121  # posted today: not in yesterday's period
    today_run, _ = start_settlement(None, world.bank, timezone.localdate())
    run_settlement(today_run)
    assert buckets(volunteer.pk) == {"earned": 0, "goods": 60, "reserve": 61}
    assert buckets(neighbour.pk) == {"earned": 0, "goods": 29, "reserve": 30}
    assert ledger_problems(world.bank.pk) == []


def test_an_interrupted_settlement_resumes_without_double_moving(world: World) -> None:
    community = world.community
    from tests.conftest import make_member

    people = [make_member(community, f"志愿者{i}", roles=["volunteer"]) for i in range(7)]
    for i, person in enumerate(people):
        actions.do_deposit(None, volunteer=person, minutes=100 + i, payer="subsidy")
    settlement, _ = start_settlement(None, world.bank, timezone.localdate())
    # Batches of 3 accounts, stopped after the first: some members are settled, the rest untouched.
    partial = run_settlement(settlement, batch=3, stop_after_batches=1)
    assert partial.status == "running"
    settled_now = {line.member_id for line in SettlementLine.objects.filter(settlement=settlement)}
    for person in people:
        b = buckets(person.pk)
        assert (b["earned"] == 0) == (person.pk in settled_now)  # all or nothing per member
    # Resuming (even twice) finishes the rest exactly once.
    finished = run_settlement(Settlement.objects.get(pk=settlement.pk), batch=3)
    run_settlement(Settlement.objects.get(pk=settlement.pk), batch=3)
    assert finished.status == "done"
    assert all(buckets(p.pk)["earned"] == 0 for p in people)
    assert SettlementLine.objects.filter(settlement=settlement).count() == len(people)
    assert finished.moved_minutes == sum(100 + i for i in range(len(people)))
    assert verify().ok


def test_earlier_period_after_a_later_one_is_a_conflict(world: World) -> None:
    today = timezone.localdate()
    api = world.api("head_office_admin")
    assert (
        api.post("/api/v1/settlements", {"head_office_id": world.bank.pk, "period_end": today.isoformat()}).status_code
        == 200
    )
    resp = api.post(
        "/api/v1/settlements",
        {"head_office_id": world.bank.pk, "period_end": (today - dt.timedelta(days=30)).isoformat()},
    )
    assert resp.status_code == 409 and error_code(resp) == "period_before_last"
    future = api.post(
        "/api/v1/settlements",
        {"head_office_id": world.bank.pk, "period_end": (today + dt.timedelta(days=1)).isoformat()},
    )
    assert future.status_code == 422


@pytest.mark.parametrize("persona", ["branch_admin", "staff", "operator", "other_bank_admin", "volunteer"])
def test_only_the_head_office_settles(world: World, persona: str) -> None:
    resp = world.api(persona).post(
        "/api/v1/settlements", {"head_office_id": world.bank.pk, "period_end": timezone.localdate().isoformat()}
    )
    assert resp.status_code == 403
    assert not Settlement.objects.exists()


def test_the_command_settles_and_says_when_there_is_nothing_to_do(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    actions.do_deposit(None, volunteer=world.members["volunteer"], minutes=90, payer="subsidy")
    today = timezone.localdate().isoformat()
    call_command("settle", "--bank", str(world.bank.pk), "--period-end", today)
    call_command("settle", "--bank", str(world.bank.pk), "--period-end", today)
    out = capsys.readouterr().out
    assert "90 minutes moved" in out and "already settled" in out


def test_the_cutoff_is_midnight_in_shanghai(world: World) -> None:
    """Postings just before midnight (Asia/Shanghai) count; those just after do not, on every database."""
    from unittest import mock

    from timebank.ledger.settlement import cutoff_for

    period_end = timezone.localdate() - dt.timedelta(days=2)
    cutoff = cutoff_for(period_end)
    volunteer = world.members["volunteer"]
    for offset, minutes in ((-dt.timedelta(minutes=30), 40), (dt.timedelta(hours=2), 7)):
        with mock.patch("django.utils.timezone.now", return_value=cutoff + offset):
            actions.do_deposit(None, volunteer=volunteer, minutes=minutes, payer="subsidy")
    settlement, _ = start_settlement(None, world.bank, period_end)
    done = run_settlement(settlement)
    assert done.moved_minutes == 40
    assert buckets(volunteer.pk) == {"earned": 7, "goods": 20, "reserve": 20}
