"""The contract's trust rules appear in GET/PATCH /orgs/{id}/rules with their defaults."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World

DEFAULTS = {
    "checkin_early_minutes": 60,
    "checkout_grace_minutes": 10,
    "serve_relatives": False,
    "approval_threshold_minutes": 600,
}


def test_a_new_bank_starts_with_the_contracts_defaults(world: World) -> None:
    for persona in ("head_office_admin", "staff"):
        rules = world.api(persona).get(f"/api/v1/orgs/{world.bank.pk}/rules").json()
        assert {k: rules[k] for k in DEFAULTS} == DEFAULTS


def test_head_office_admins_change_them_and_null_turns_approvals_off(world: World) -> None:
    api = world.api("head_office_admin")
    url = f"/api/v1/orgs/{world.bank.pk}/rules"
    changes = {"checkin_early_minutes": 30, "checkout_grace_minutes": 0, "serve_relatives": True}
    assert {k: api.patch(url, changes).json()[k] for k in changes} == changes
    assert api.patch(url, {"approval_threshold_minutes": None}).json()["approval_threshold_minutes"] is None
    assert api.patch(url, {"approval_threshold_minutes": 120}).json()["approval_threshold_minutes"] == 120


@pytest.mark.parametrize(
    "body",
    [
        {"checkin_early_minutes": -1},
        {"checkin_early_minutes": "60"},
        {"checkin_early_minutes": 10**9},
        {"checkout_grace_minutes": None},
        {"checkout_grace_minutes": 1.5},
        {"serve_relatives": None},
        {"serve_relatives": "yes"},
        {"approval_threshold_minutes": 0},
        {"approval_threshold_minutes": -600},
    ],
)
def test_bad_values_are_refused_and_change_nothing(world: World, body: dict[str, Any]) -> None:
    url = f"/api/v1/orgs/{world.bank.pk}/rules"
    response = world.api("head_office_admin").patch(url, body)
    assert response.status_code in (400, 422), response.content
    rules = world.api("head_office_admin").get(url).json()
    assert {k: rules[k] for k in DEFAULTS} == DEFAULTS


@pytest.mark.parametrize("persona", ["staff", "branch_admin", "other_bank_admin", "volunteer", "anonymous"])
def test_only_the_banks_head_office_admins_change_them(world: World, persona: str) -> None:
    url = f"/api/v1/orgs/{world.bank.pk}/rules"
    assert world.api(persona).patch(url, {"serve_relatives": True}).status_code in (401, 403, 404)
    assert world.api("head_office_admin").get(url).json()["serve_relatives"] is False
