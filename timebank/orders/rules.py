"""The orders' rulebook: the states, who may move an order between them, and the named groups of states.

Everything that decides on an order's state reads it from here: `orders.actions.transition` checks the
from-states, `orders.access` asks the table who may act, the pages ask `allows` (or `Order.can`) which
buttons to show, the API builds its state enum from `OrderState`, and the QuerySet methods of `Order`
(`open`, `active`, `credited`, ...) filter on the groups below.

Adding a state: add it to `OrderState`, give it a `STAGES` entry (which decides the groups it joins) and
the transitions that lead to it and out of it. `check_rulebook` runs when this module is imported and
refuses a state the table does not place.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.utils.translation import gettext_lazy as _


class OrderState(models.TextChoices):
    REQUESTED = "requested", _("待派单")
    DISPATCHED = "dispatched", _("已派单")
    ACCEPTED = "accepted", _("已接单")
    IN_SERVICE = "in_service", _("服务中")
    COMPLETED = "completed", _("待确认")
    CONFIRMED = "confirmed", _("已确认")
    REVIEWED = "reviewed", _("已评价")
    CANCELLED = "cancelled", _("已取消")
    DISPUTED = "disputed", _("有争议")


# An order is made in this state (点单); every other state is reached by a transition.
INITIAL_STATE = OrderState.REQUESTED

# The parties' roles on one order (orders.access.party_roles answers them).
STAFF = "staff"
OPERATOR = "operator"
RECIPIENT = "recipient"
RELATIVE = "relative"
VOLUNTEER = "volunteer"  # the volunteer the order is dispatched to
AREA_VOLUNTEER = "area_volunteer"  # a volunteer who may take it from the pool
ROLES = frozenset({STAFF, OPERATOR, RECIPIENT, RELATIVE, VOLUNTEER, AREA_VOLUNTEER})


@dataclass(frozen=True)
class Transition:
    """One action of the service loop: the states it leaves, the state it makes, the roles that may do it.

    `staff_sources`: further states the action may leave only when staff (or an operator) do it (the
    action's `by_staff`): staff resolve a dispute by confirming it, and cancel an order already in service.

    `on_behalf`: the roles among `roles` that act for the order's volunteer (paper mode, for a volunteer
    without a smartphone: from a paper sign-in sheet or a phone call); they may give the time it happened
    and how they know (the contract's `at` and `source`), and the audit entry says for whom they acted."""

    sources: frozenset[str]
    target: str
    roles: frozenset[str]
    staff_sources: frozenset[str] = frozenset()
    on_behalf: frozenset[str] = frozenset()

    def leaves(self, state: str, *, by_staff: bool = False) -> bool:
        return state in self.sources or (by_staff and state in self.staff_sources)


def _t(
    sources: Iterable[str],
    target: str,
    roles: Iterable[str],
    staff_sources: Iterable[str] = (),
    *,
    on_behalf: Iterable[str] = (),
) -> Transition:
    return Transition(
        frozenset(sources),
        target,
        frozenset(roles) | frozenset(on_behalf),
        frozenset(staff_sources),
        frozenset(on_behalf),
    )


S = OrderState
# The service loop: 点单 → 派单 → 接单 → service → confirmation → 评单, and its other endings.
TRANSITIONS: dict[str, Transition] = {
    "dispatch": _t({S.REQUESTED, S.DISPATCHED}, S.DISPATCHED, {STAFF, OPERATOR}),  # again: re-dispatch
    "take": _t({S.REQUESTED}, S.ACCEPTED, {AREA_VOLUNTEER}),  # from the pool: taking is accepting
    # Paper mode: staff and operators of the order's subtree accept, check in and check out for the volunteer.
    "accept": _t({S.DISPATCHED}, S.ACCEPTED, {VOLUNTEER}, on_behalf={STAFF, OPERATOR}),
    "decline": _t({S.DISPATCHED}, S.REQUESTED, {VOLUNTEER}),
    "no-show": _t({S.DISPATCHED, S.ACCEPTED}, S.REQUESTED, {STAFF, OPERATOR, RECIPIENT, RELATIVE}),
    "check-in": _t({S.ACCEPTED}, S.IN_SERVICE, {VOLUNTEER}, on_behalf={STAFF, OPERATOR}),
    "check-out": _t({S.IN_SERVICE}, S.COMPLETED, {VOLUNTEER}, on_behalf={STAFF, OPERATOR}),
    "confirm": _t({S.COMPLETED}, S.CONFIRMED, {STAFF, RECIPIENT, RELATIVE, VOLUNTEER}, staff_sources={S.DISPUTED}),
    "review": _t({S.CONFIRMED}, S.REVIEWED, {RECIPIENT, RELATIVE}),
    "cancel": _t(
        {S.REQUESTED, S.DISPATCHED, S.ACCEPTED},
        S.CANCELLED,
        {STAFF, OPERATOR, RECIPIENT, RELATIVE},
        staff_sources={S.IN_SERVICE, S.DISPUTED},
    ),
    "dispute": _t({S.COMPLETED}, S.DISPUTED, {RECIPIENT, RELATIVE}),
    # 专项基金 (funds.actions.do_buy_market_service): a paid provider serves an order nobody took.
    "buy-service": _t({S.REQUESTED}, S.CONFIRMED, {STAFF}),
}


class Stage(enum.Enum):
    """Where an order is in its life: each state has one, and the named groups below follow from it."""

    WAITING = "waiting"  # for a volunteer
    ON_IT = "on_it"  # a volunteer is dispatched, on the way or at work
    TO_CONFIRM = "to_confirm"  # the service is over, its time not yet confirmed
    DISPUTED = "disputed"  # the recipient's side says the service was not right; staff resolve it
    CREDITED = "credited"  # the time is posted to the ledger (once: no transition leaves this stage)
    CANCELLED = "cancelled"


STAGES: dict[str, Stage] = {
    S.REQUESTED: Stage.WAITING,
    S.DISPATCHED: Stage.ON_IT,
    S.ACCEPTED: Stage.ON_IT,
    S.IN_SERVICE: Stage.ON_IT,
    S.COMPLETED: Stage.TO_CONFIRM,
    S.CONFIRMED: Stage.CREDITED,
    S.REVIEWED: Stage.CREDITED,
    S.CANCELLED: Stage.CANCELLED,
    S.DISPUTED: Stage.DISPUTED,
}

# The actions that are not transitions, and who may do them (orders.access.ACTION_ROLES adds the table's).
READ_ROLES = frozenset({STAFF, OPERATOR, RECIPIENT, RELATIVE, VOLUNTEER, AREA_VOLUNTEER})
CANDIDATES_ROLES = frozenset({STAFF, OPERATOR})


def in_stages(*stages: Stage) -> tuple[str, ...]:
    """The states of `stages`, in the order `OrderState` declares them."""
    return tuple(state for state in OrderState if STAGES.get(state) in stages)  # check_rulebook: none unplaced


def sources_of(action: str, *, by_staff: bool = False) -> tuple[str, ...]:
    """The states `action` may leave (with `by_staff`, those staff may also leave), in declared order."""
    move = TRANSITIONS[action]
    return tuple(state for state in OrderState if move.leaves(state, by_staff=by_staff))


def allows(action: str, state: str, *, by_staff: bool = False) -> bool:
    """Whether an order in `state` may take `action` (the pages' buttons ask this)."""
    return TRANSITIONS[action].leaves(state, by_staff=by_staff)


def acts_on_behalf(action: str, roles: Iterable[str]) -> bool:
    """Whether a caller with `roles` on an order does `action` for its volunteer (paper mode): they hold a role
    the table lets act on the volunteer's behalf, and are not the volunteer themselves (who act as themselves,
    whatever other role they also hold)."""
    held = frozenset(roles)
    return VOLUNTEER not in held and bool(held & TRANSITIONS[action].on_behalf)


def allowed_actions(state: str, *, by_staff: bool = False) -> dict[str, bool]:
    """`allows` for every action, for a template (`can.check_in`: a hyphen becomes an underscore)."""
    return {action.replace("-", "_"): move.leaves(state, by_staff=by_staff) for action, move in TRANSITIONS.items()}


# The named groups of states, each defined here once.
# Not yet credited nor cancelled: the recipient's, the volunteer's and staff's open orders.
OPEN_STATES = in_stages(Stage.WAITING, Stage.ON_IT, Stage.TO_CONFIRM, Stage.DISPUTED)
# A volunteer is on it: they see the address, and they are busy at its time.
ACTIVE_STATES = in_stages(Stage.ON_IT)
# The volunteer's tasks: on it, or done and waiting for the recipient's confirmation.
TASK_STATES = in_stages(Stage.ON_IT, Stage.TO_CONFIRM)
# The service happened and its time is posted (served, visited, counted in the stats and certificates).
CREDITED_STATES = in_stages(Stage.CREDITED)
# What staff may cancel, and what may still be dispatched (again): read from the table.
CANCELLABLE_STATES = sources_of("cancel", by_staff=True)
DISPATCHABLE_STATES = sources_of("dispatch")


class RulebookError(ImproperlyConfigured):
    pass


def check_rulebook(
    states: Iterable[str],
    initial: str,
    transitions: Mapping[str, Transition],
    stages: Mapping[str, Stage],
) -> None:
    """Refuse a rulebook that leaves a state unplaced: every state is the initial state or the target of a
    transition, has a stage (which decides its groups), and the table names only known states and roles.
    Credited time is posted once: no transition leaves the credited stage for another, nor a cancelled
    order. Raises RulebookError naming every problem."""
    known = [str(state) for state in states]  # the values (a TextChoices member's str is its value)
    problems: list[str] = []
    if initial not in known:
        problems.append(f"initial state {str(initial)!r} is not a state")
    targets = {move.target for move in transitions.values()}
    for state in known:
        if state != initial and state not in targets:
            problems.append(f"state {str(state)!r}: no transition leads to it (add it to TRANSITIONS)")
        if state not in stages:
            problems.append(f"state {str(state)!r}: no stage (add it to STAGES; the stage decides its groups)")
    for state in stages:
        if state not in known:
            problems.append(f"STAGES names {str(state)!r}, which is not a state")
    for action, move in transitions.items():
        for state in {move.target} | move.sources | move.staff_sources:
            if state not in known:
                problems.append(f"transition {action!r} names {str(state)!r}, which is not a state")
        if unknown := move.roles - ROLES:
            problems.append(f"transition {action!r} names unknown roles {sorted(unknown)}")
        if move.on_behalf - move.roles:
            problems.append(f"transition {action!r}: roles acting on behalf must be among its roles")
        if move.on_behalf and VOLUNTEER not in move.roles:
            problems.append(f"transition {action!r}: acts on behalf of a volunteer who may not do it")
        target_stage = stages.get(move.target)
        for state in move.sources | move.staff_sources:
            stage = stages.get(state)
            if stage is Stage.CANCELLED or (stage is Stage.CREDITED and target_stage is not Stage.CREDITED):
                problems.append(f"transition {action!r} leaves {str(state)!r} ({stage.value}): that is final")
    if problems:
        raise RulebookError("orders.rules: " + "; ".join(problems))


check_rulebook(OrderState, INITIAL_STATE, TRANSITIONS, STAGES)
