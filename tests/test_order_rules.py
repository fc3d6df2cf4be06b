"""The orders' rulebook (timebank/orders/rules.py): one transition table and the named groups of states.

The groups and the table must say exactly what the code said before they had one home (these are the
state sets each place wrote out by hand), a state the table does not place must fail loudly, and each
domain filter's QuerySet form must agree with its one-row twin."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import models
from django.test import Client
from django.utils import timezone

from tests.conftest import World
from timebank.catalogue.actions import do_create_service_item
from timebank.members.models import Certificate, InsurancePolicy
from timebank.orders.access import ACTION_ROLES
from timebank.orders.actions import do_create_order
from timebank.orders.models import Order, OrderState
from timebank.orders.rules import (
    ACTIVE_STATES,
    CANCELLABLE_STATES,
    CREDITED_STATES,
    DISPATCHABLE_STATES,
    INITIAL_STATE,
    OPEN_STATES,
    STAGES,
    TASK_STATES,
    TRANSITIONS,
    RulebookError,
    Stage,
    Transition,
    allows,
    check_rulebook,
    sources_of,
)
from timebank.orgs.models import Rules

S = OrderState


def test_each_group_is_the_set_it_was_before_it_had_one_home() -> None:
    # orders/models.py ACTIVE_STATES
    assert set(ACTIVE_STATES) == {S.DISPATCHED, S.ACCEPTED, S.IN_SERVICE}
    # web/views/member.py OPEN_STATES, used by the member, care and staff pages
    assert set(OPEN_STATES) == {S.REQUESTED, S.DISPATCHED, S.ACCEPTED, S.IN_SERVICE, S.COMPLETED, S.DISPUTED}
    # web/views/volunteer.py MINE_STATES, and member.py's OPEN_STATES[1:5]
    assert set(TASK_STATES) == {S.DISPATCHED, S.ACCEPTED, S.IN_SERVICE, S.COMPLETED}
    # hotline VISITED_STATES and "credited" in the disclosure, the certificates, the stats, the volunteer page
    assert set(CREDITED_STATES) == {S.CONFIRMED, S.REVIEWED}
    # the exports' "open" excluded confirmed, reviewed and cancelled
    assert set(OPEN_STATES) == set(S.values) - {S.CONFIRMED, S.REVIEWED, S.CANCELLED}
    # web/views/staff.py CANCELLABLE
    assert set(CANCELLABLE_STATES) == {S.REQUESTED, S.DISPATCHED, S.ACCEPTED, S.IN_SERVICE, S.DISPUTED}
    # web/views/operator.py DISPATCHABLE and the staff page's can_dispatch
    assert set(DISPATCHABLE_STATES) == {S.REQUESTED, S.DISPATCHED}


def test_the_table_allows_what_each_action_allowed_before() -> None:
    # The `allowed` tuples and targets of orders/actions.py and funds.actions.do_buy_market_service.
    before = {
        "dispatch": ({S.REQUESTED, S.DISPATCHED}, set(), S.DISPATCHED),
        "take": ({S.REQUESTED}, set(), S.ACCEPTED),
        "accept": ({S.DISPATCHED}, set(), S.ACCEPTED),
        "decline": ({S.DISPATCHED}, set(), S.REQUESTED),
        "no-show": ({S.DISPATCHED, S.ACCEPTED}, set(), S.REQUESTED),
        "check-in": ({S.ACCEPTED}, set(), S.IN_SERVICE),
        "check-out": ({S.IN_SERVICE}, set(), S.COMPLETED),
        "confirm": ({S.COMPLETED}, {S.COMPLETED, S.DISPUTED}, S.CONFIRMED),
        "review": ({S.CONFIRMED}, set(), S.REVIEWED),
        "cancel": (
            {S.REQUESTED, S.DISPATCHED, S.ACCEPTED},
            {S.REQUESTED, S.DISPATCHED, S.ACCEPTED, S.IN_SERVICE, S.DISPUTED},
            S.CANCELLED,
        ),
        "dispute": ({S.COMPLETED}, set(), S.DISPUTED),
        "buy-service": ({S.REQUESTED}, set(), S.CONFIRMED),
    }
    assert set(TRANSITIONS) == set(before)
    for action, (parties, staff, target) in before.items():
        assert set(sources_of(action)) == parties, action
        assert set(sources_of(action, by_staff=True)) == (staff or parties), action
        assert TRANSITIONS[action].target == target, action
        for state in S:
            assert allows(action, state) == (state in parties), (action, state)


def test_the_access_table_is_the_one_it_was() -> None:
    staff, op, rec, rel, vol, area = "staff", "operator", "recipient", "relative", "volunteer", "area_volunteer"
    before = {
        "read": {staff, op, rec, rel, vol, area},
        "dispatch": {staff, op},
        "take": {area},
        # Paper mode (issue 13, the contract's "Paper mode"): staff and operators of the order's subtree act for
        # the dispatched volunteer; before it, only the volunteer ({vol}).
        "accept": {vol, staff, op},
        "decline": {vol},
        "check-in": {vol, staff, op},
        "check-out": {vol, staff, op},
        "confirm": {staff, rec, rel, vol},
        "review": {rec, rel},
        "cancel": {staff, op, rec, rel},
        "dispute": {rec, rel},
        "no-show": {staff, op, rec, rel},
        "candidates": {staff, op},
        "buy-service": {staff},  # new in the table: funds.api checks it by its own words
    }
    assert {action: set(roles) for action, roles in ACTION_ROLES.items()} == before


def test_the_api_names_every_state(db: None) -> None:
    document = Client().get("/api/v1/openapi.json").json()
    (state,) = [p for p in document["paths"]["/api/v1/orders"]["get"]["parameters"] if p["name"] == "state"]
    assert state["schema"]["anyOf"][0]["enum"] == list(S.values)  # built from OrderState


def _extended(extra: str) -> type[models.TextChoices]:
    members = [(state.name, (state.value, state.label)) for state in S]
    return models.TextChoices("ExtendedState", [*members, (extra.upper(), (extra, extra))])  # type: ignore[call-overload]


def test_a_new_state_fails_loudly_until_the_table_places_it() -> None:
    check_rulebook(S, INITIAL_STATE, TRANSITIONS, STAGES)  # today's rulebook holds
    extended = _extended("paused")
    with pytest.raises(RulebookError) as refused:
        check_rulebook(extended, INITIAL_STATE, TRANSITIONS, STAGES)
    message = str(refused.value)
    assert "'paused': no transition leads to it" in message
    assert "'paused': no stage" in message
    # A transition alone is not enough: the stage decides which groups (open, active, tasks...) it joins.
    pause = Transition(frozenset({S.IN_SERVICE}), "paused", frozenset({"volunteer"}))
    with pytest.raises(RulebookError, match="'paused': no stage"):
        check_rulebook(extended, INITIAL_STATE, {**TRANSITIONS, "pause": pause}, STAGES)
    with pytest.raises(RulebookError, match="no transition leads to it"):
        check_rulebook(extended, INITIAL_STATE, TRANSITIONS, {**STAGES, "paused": Stage.ON_IT})
    check_rulebook(extended, INITIAL_STATE, {**TRANSITIONS, "pause": pause}, {**STAGES, "paused": Stage.ON_IT})


def test_the_rulebook_refuses_stale_names_and_leaving_credited_or_cancelled() -> None:
    reopen = Transition(frozenset({S.CONFIRMED}), S.COMPLETED, frozenset({"staff"}))
    with pytest.raises(RulebookError, match="leaves 'confirmed' \\(credited\\): that is final"):
        check_rulebook(S, INITIAL_STATE, {**TRANSITIONS, "reopen": reopen}, STAGES)
    revive = Transition(frozenset({S.CANCELLED}), S.REQUESTED, frozenset({"staff"}))
    with pytest.raises(RulebookError, match="leaves 'cancelled'"):
        check_rulebook(S, INITIAL_STATE, {**TRANSITIONS, "revive": revive}, STAGES)
    ghost = Transition(frozenset({"ghost"}), S.REQUESTED, frozenset({"nobody"}))
    with pytest.raises(RulebookError, match="names 'ghost', which is not a state"):
        check_rulebook(S, INITIAL_STATE, {**TRANSITIONS, "haunt": ghost}, STAGES)
    with pytest.raises(RulebookError, match="unknown roles"):
        check_rulebook(S, INITIAL_STATE, {**TRANSITIONS, "haunt": ghost}, STAGES)


def test_the_stages_cover_every_state_once() -> None:
    assert set(STAGES) == set(S.values)
    assert all(isinstance(stage, Stage) for stage in STAGES.values())


# The QuerySet methods and their one-row twins -------------------------------------------------------------


def test_order_groups_and_overdue_queries_agree_with_the_rows(world: World) -> None:
    item = do_create_service_item(None, head_office=world.bank, name="保洁", category="mutual_care", tier="ordinary")
    now = timezone.now()
    made = []
    for state, hours_ago in itertools.product(S.values, (1, 23, 25, 49)):
        order = do_create_order(
            None,
            recipient=world.members["recipient"],
            service_item=item,
            scheduled_start=now + dt.timedelta(hours=2),
            planned_minutes=60,
            payer="subsidy",
            channel="app",
        )
        Order.objects.filter(pk=order.pk).update(state=state, created_at=now - dt.timedelta(hours=hours_ago))
        made.append(order.pk)
    rows = list(Order.objects.filter(pk__in=made))
    for method, group in (("open", OPEN_STATES), ("active", ACTIVE_STATES), ("tasks", TASK_STATES)):
        got = set(getattr(Order.objects, method)().filter(pk__in=made).values_list("pk", flat=True))
        assert got == {o.pk for o in rows if o.state in group}, method
    credited = set(Order.objects.credited().filter(pk__in=made).values_list("pk", flat=True))
    assert credited == {o.pk for o in rows if o.is_credited}
    for hours in (24, 48):
        Rules.objects.filter(head_office=world.bank).update(dispatch_within_hours=hours)
        overdue = set(Order.objects.overdue(now).filter(pk__in=made).values_list("pk", flat=True))
        assert overdue == {o.pk for o in rows if o.is_overdue(hours, now)}
        assert overdue == {
            o.pk for o in rows if o.state == S.REQUESTED and o.created_at < now - dt.timedelta(hours=hours)
        }
        assert len(overdue) == (2 if hours == 24 else 1)


DAYS = (None, -1, 0, 1)  # no date, yesterday, today, tomorrow


def test_valid_certificates_query_and_row_agree(world: World) -> None:
    today = timezone.localdate()
    member = world.members["volunteer"]
    when = lambda offset: None if offset is None else today + dt.timedelta(days=offset)  # noqa: E731
    for start, end in itertools.product(DAYS, DAYS):
        Certificate.objects.create(member=member, kind=f"k{start}_{end}", valid_from=when(start), valid_until=when(end))
    rows = list(Certificate.objects.filter(member=member))
    valid = set(Certificate.objects.filter(member=member).valid_on(today).values_list("pk", flat=True))
    assert valid == {c.pk for c in rows if c.valid_on(today)}
    # Not expired and not starting later: the rule dispatch and matching apply.
    assert valid == {
        c.pk
        for c in rows
        if (c.valid_until is None or c.valid_until >= today) and (c.valid_from is None or c.valid_from <= today)
    }


def test_a_certificate_that_starts_later_is_not_valid_now_in_the_api(world: World) -> None:
    member = world.members["volunteer"]
    today = timezone.localdate()
    body = {"kind": "nursing", "issuer": "卫健委", "valid_from": (today + dt.timedelta(days=3)).isoformat()}
    answer = world.api("staff").post(f"/api/v1/members/{member.pk}/certificates", body)
    assert answer.status_code == 201, answer.content
    assert answer.json()["valid_now"] is False  # as dispatch and matching see it


def test_insurance_in_force_query_and_row_agree(world: World) -> None:
    today = timezone.localdate()
    member = world.members["volunteer"]
    offsets = (-2, -1, 0, 1, 2)
    for n, (start, end) in enumerate(itertools.product(offsets, offsets)):
        if start <= end:
            InsurancePolicy.objects.create(
                member=member,
                insurer="人保",
                policy_number=f"P-{n}",
                starts_on=today + dt.timedelta(days=start),
                ends_on=today + dt.timedelta(days=end),
            )
    rows = list(InsurancePolicy.objects.filter(member=member))
    in_force = set(InsurancePolicy.objects.filter(member=member).in_force(today).values_list("pk", flat=True))
    assert in_force == {p.pk for p in rows if p.in_force_on(today)}
    assert in_force == {p.pk for p in rows if p.starts_on <= today <= p.ends_on}
    assert in_force  # some are, some are not
    assert len(in_force) < len(rows)


def test_the_pages_buttons_read_the_table() -> None:
    from timebank.orders.rules import allowed_actions

    assert set(allowed_actions(S.REQUESTED)) == {action.replace("-", "_") for action in TRANSITIONS}
    assert allowed_actions(S.ACCEPTED)["check_in"] and not allowed_actions(S.IN_SERVICE)["check_in"]
    assert allowed_actions(S.COMPLETED)["confirm"] and not allowed_actions(S.DISPUTED)["confirm"]
    assert allowed_actions(S.DISPUTED, by_staff=True)["confirm"]
    assert not allowed_actions(S.IN_SERVICE)["cancel"] and allowed_actions(S.IN_SERVICE, by_staff=True)["cancel"]
    assert Order(state=S.CONFIRMED).can == allowed_actions(S.CONFIRMED)  # what the pages read
    assert Order(state=S.CONFIRMED).can["review"] and not Order(state=S.REVIEWED).can["review"]


def test_penalties_in_force_query_and_row_agree(world: World) -> None:
    from timebank.evaluation.models import Penalty, PenaltyKind

    today = timezone.localdate()
    member = world.members["volunteer"]
    for kind, start, end, lifted in itertools.product(PenaltyKind.values, (-1, 0, 1), (None, -1, 0, 1), (False, True)):
        if end is not None and end < start:
            continue
        Penalty.objects.create(
            bank=world.bank,
            member=member,
            kind=kind,
            reason="测试",
            starts_on=today + dt.timedelta(days=start),
            ends_on=None if end is None else today + dt.timedelta(days=end),
            lifted_at=timezone.now() if lifted else None,
        )
    rows = list(Penalty.objects.filter(member=member))
    in_force = set(Penalty.objects.filter(member=member).in_force(today).values_list("pk", flat=True))
    assert in_force == {p.pk for p in rows if p.in_force_on(today)}
    # The rule the penalties' API and page wrote out: not a warning, not lifted, started, not ended.
    assert in_force == {
        p.pk
        for p in rows
        if p.kind != "warning"
        and p.lifted_at is None
        and p.starts_on <= today
        and (p.ends_on is None or p.ends_on >= today)
    }
    assert 0 < len(in_force) < len(rows)
