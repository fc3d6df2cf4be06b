"""The one seam for the time the code sees.

Every action reads the time through `now()`, `localdate()` or `localtime()` here, and every moment a row stamps
by itself (`auto_now` / `auto_now_add`) through `ClockDateTimeField`. Code that must run as of other moments — the
demo replays a hundred days through the actions, so ledger and audit timestamps, a settlement's cut-off and
"overdue" come out as they would have — does so inside `running(source)`, where `source()` answers the moment:

    with clock.running(lambda: moment):
        do_something(...)

Outside such a block, and in every other thread or request, `now()` is Django's `timezone.now()`: the moment is
held in a `ContextVar`, not in a global, so a web process serving requests while the demo seeds keeps its own
clock. Nothing patches Django: `django.utils.timezone.now` stays Django's own function (a test may still patch it,
and `now()` looks it up at each call, so such a test moves this clock too). `tests/test_clock_seam.py` holds
both: no module of `timebank/` reads `timezone.now()` itself, and seeding the demo leaves Django's clock alone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, overload

from django.db import models
from django.utils import timezone

_source: ContextVar[Callable[[], dt.datetime] | None] = ContextVar("timebank_clock_source", default=None)


def now() -> dt.datetime:
    """The moment: the current `running()` block's, else the real time."""
    source = _source.get()
    return timezone.now() if source is None else source()


def localdate() -> dt.date:
    """Today in the bank's time zone, as of `now()`."""
    return timezone.localdate(now())


def localtime() -> dt.datetime:
    """`now()` in the bank's time zone."""
    return timezone.localtime(now())


@overload
def day_bounds(first: dt.date, last: dt.date) -> tuple[dt.datetime, dt.datetime]: ...
@overload
def day_bounds(first: dt.date | None, last: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]: ...
def day_bounds(first: dt.date | None, last: dt.date | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The moments [the start of `first`, the start of the day after `last`) in the bank's time zone (Asia/Shanghai,
    settings.TIME_ZONE), for `start <= t < end` filters over whole days; None leaves that side open. One day is
    `day_bounds(day, day)`. The one home of the bank's day boundaries (the paper sheet's day, the stats' periods)."""
    start = start_of_day(first) if first is not None else None
    end = start_of_day(last + dt.timedelta(days=1)) if last is not None else None
    return start, end


def start_of_day(day: dt.date) -> dt.datetime:
    """Midnight starting `day` in the bank's time zone (`day_bounds` for one side)."""
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


@contextmanager
def running(source: Callable[[], dt.datetime]) -> Iterator[None]:
    """Inside the block, `now()` (and so `localdate()` and the rows' own stamps) answers `source()`."""
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)


class ClockDateTimeField(models.DateTimeField):
    """A `DateTimeField` whose `auto_now` / `auto_now_add` stamp reads `now()` above instead of Django's clock.

    Django's own field calls `timezone.now()` in `pre_save` and has no other hook; this is the same field in the
    database (no schema change), stamped from the seam."""

    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        if self.auto_now or (self.auto_now_add and add):
            value = now()
            setattr(model_instance, self.attname, value)
            return value
        return super().pre_save(model_instance, add)
