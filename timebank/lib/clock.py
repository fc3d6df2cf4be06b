"""The one seam for the time the actions see.

Every action, every `auto_now`/`auto_now_add` field and `timezone.localdate()` read the time through
`django.utils.timezone.now()`. Code that must run as of other moments — the demo replays a hundred days
through the actions, so ledger and audit timestamps, a settlement's cut-off and "overdue" come out as they
would have — does so inside `running(source)`, where `source()` answers the moment:

    with clock.running(lambda: moment):
        do_something(...)

Outside such a block, and in every other thread or request, `now()` is the real time: the moment is held in a
`ContextVar`, not in a global, so a web process serving requests while the demo seeds keeps its own clock.

How it works: on the first `running()`, `django.utils.timezone.now` is routed through `now()` below, once and
for good (Django's fields and `localdate()` look the function up on that module at each call, and offer no
other hook). With no source set, `now()` answers Django's own function, so nothing changes for code that never
enters `running()`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.utils import timezone

_real_now: Callable[[], dt.datetime] = timezone.now
_source: ContextVar[Callable[[], dt.datetime] | None] = ContextVar("timebank_clock_source", default=None)


def now() -> dt.datetime:
    """The moment: the current `running()` block's, else the real time."""
    source = _source.get()
    return _real_now() if source is None else source()


@contextmanager
def running(source: Callable[[], dt.datetime]) -> Iterator[None]:
    """Inside the block, `timezone.now()` (and so `localdate()` and `auto_now` fields) answers `source()`."""
    if timezone.now is not now:
        timezone.now = now
    token = _source.set(source)
    try:
        yield
    finally:
        _source.reset(token)
