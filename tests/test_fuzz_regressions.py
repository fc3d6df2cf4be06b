"""What the full fuzzing run (bench/fuzz.py) found, kept from coming back.

1. The stateful run as a head office's admin stopped with hypothesis' "Inconsistent data generation": each
   scenario ran on what the scenarios before it had written (members, orders, revoked tokens, throttle
   counters), so the same drawn steps met different answers and followed different links. Each scenario now
   starts from the same data: its writes are rolled back when it ends.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.test_fuzz_api import OperationReport, seed, state_machine
from timebank.orgs.actions import do_issue_token
from timebank.orgs.models import ApiToken, User


@pytest.mark.fuzz
def test_each_stateful_scenario_starts_from_the_same_data(db: None) -> None:
    callers = seed()
    tokens = ApiToken.objects.count()
    cache.set("throttle-counter", 5)

    scenario = state_machine(callers["ho_admin"], OperationReport("stateful (links)"))()  # setup() runs here
    assert cache.get("throttle-counter") is None
    do_issue_token(User.objects.get(username="ho_admin"))  # a write made during the scenario
    assert ApiToken.objects.count() == tokens + 1
    scenario.teardown()

    assert ApiToken.objects.count() == tokens
