"""The demo's plan, as every app's demo module writes its part of it: moments (minutes from today's midnight,
`when`, `ago`), and the steps that happen at them, planned calls of actions (`do`) whose arguments name what the
database will hold once the plan is applied (`Ref`). Plain data, no database and no app: the driver in
`timebank/demo/` (`apply.Applier`) resolves the references and calls the actions in time order."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# --------------------------------------------------------------------------------------------------------------
# The timeline: moments, and the steps that happen at them

DAY = 24 * 60
LAUNCH = -100  # the platform went live this many days ago: paper records moved in, members registered
SETTLED = -28  # the settlement's period end (run early the next morning)
# `at` values from RECENT on are the last few hours before the demo is made (RECENT_SPAN minutes at most).
RECENT = 10**7
RECENT_SPAN = 180


def when(day: int, hour: int, minute: int = 0) -> int:
    """A moment as minutes from today's midnight: `day` days from today (negative: before), at hour:minute."""
    return day * DAY + hour * 60 + minute


def ago(minutes: int) -> int:
    """`minutes` before the demo is made (at most RECENT_SPAN)."""
    return RECENT + RECENT_SPAN - minutes


def day_of(at: int) -> int:
    return at // DAY


def daytime(at: int) -> int:
    """Move a moment in the night to 08:00 the next morning: volunteers and staff work by day. It also keeps
    the night after the settlement's period end free of postings."""
    if at >= RECENT:
        return at
    minute = at % DAY
    if minute < 8 * 60:
        return at - minute + 8 * 60
    if minute > 21 * 60:
        return at - minute + DAY + 8 * 60
    return at


@dataclass(frozen=True)
class Step:
    at: int  # when it happens: see `when` and `ago`


RefKind = Literal[
    "member",
    "login",
    "org",
    "order",
    "kept",
    "day",
    "moment",
    "item",
    "item_ids",
    "policy",
    "key",
    "order_code",
    "maker",
    "second",
]


@dataclass(frozen=True)
class Ref:
    """A name in the plan for what the database will hold once the plan is applied (a person's member, a
    login's user, an org, an order, a day or moment counted from today...). The applier resolves it just
    before the action is called."""

    kind: RefKind
    key: Any = None

    # The references a planned call may carry, typed `Any` so that they stand in any argument of an action.

    @staticmethod
    def member(index: int | None) -> Any:
        """The member of planned person `index` (None stays None)."""
        return None if index is None else Ref("member", index)

    @staticmethod
    def login(name: str) -> Any:
        """The user of a demo login; "" is the system (None)."""
        return Ref("login", name)

    @staticmethod
    def org(name: str) -> Any:
        return Ref("org", name)

    @staticmethod
    def order(key: int | None) -> Any:
        return None if key is None else Ref("order", key)

    @staticmethod
    def need(key: int | None) -> Any:
        return None if key is None else Ref("kept", f"need:{key}")

    @staticmethod
    def order_code(key: int) -> Any:
        """The confirmation code of planned order `key` (which the volunteer types in when the party confirms)."""
        return Ref("order_code", key)

    @staticmethod
    def maker(login: str) -> Any:
        """The user of `login` entering a credit; the system's import (None) when nobody could approve it."""
        return Ref("maker", login)

    @staticmethod
    def second_of(login: str) -> Any:
        """Who approves a large credit `login` made: their superior; for a head office's admin, the superuser."""
        return Ref("second", login)

    @staticmethod
    def kept(name: str) -> Any:
        """What an earlier step kept under `name` (its `keep`)."""
        return Ref("kept", name)

    @staticmethod
    def day(offset: int) -> Any:
        """The date `offset` days from today."""
        return Ref("day", offset)

    @staticmethod
    def moment(at: int, back: int = 0) -> Any:
        """The time of moment `at` (see `when`, `ago`), less `back` minutes."""
        return Ref("moment", (at, back))

    @staticmethod
    def item(person: int, name: str) -> Any:
        """The service item `name` of the bank of planned person `person`."""
        return Ref("item", (person, name))

    @staticmethod
    def item_ids(person: int, names: tuple[str, ...]) -> Any:
        return Ref("item_ids", (person, names))

    @staticmethod
    def policy(member: int, number: str) -> Any:
        """The insurance policy `number` of planned person `member`."""
        return Ref("policy", (member, number))

    @staticmethod
    def idempotency_key() -> Any:
        """A fresh key for an action that takes one ("demo-1", "demo-2", ... in the order they are applied)."""
        return Ref("key")


@dataclass(frozen=True)
class Do(Step):
    """At `at`, call `action(*args, **kwargs)` with every `Ref` in them (also inside lists, tuples and input
    dataclasses) resolved. `keep` says where the answer goes for later steps: a str keeps it for `Ref.kept`; a
    `Ref.member` or `Ref.order` makes it that person's member or that planned order; a tuple of `Ref.member`s
    takes one member each from the list it answers (the census import). An answer (record, replayed) of an action
    taking an idempotency key keeps the record."""

    action: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    keep: Any = None


def do(at: int, action: Callable[..., Any], *args: Any, keep: Any = None, **kwargs: Any) -> Do:
    """A planned call of `action`: `do(at, do_add_certificate, Ref.login("staff"), Ref.member(3), kind=...)`."""
    return Do(at, action, args, kwargs, keep)
