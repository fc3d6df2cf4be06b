"""One way for an app to tell other apps that something happened.

An event is a frozen dataclass declared by the app that publishes it, in `<app>/events.py`. Apps that care
subscribe in their `AppConfig.ready()`; the publisher never imports them, so no import runs up the layers.
`publish` calls every subscriber at once, inside the caller's transaction: whatever a subscriber writes
(an outbox row, a lost leadership, a voided voucher) commits or rolls back with the action that published,
so a crash between the two cannot lose it. A subscriber may answer a list of values (audit notes, say),
which `publish` hands back to the publisher in subscription order; it answers None when it has nothing.

Side effects outside the database (sending an SMS, enqueuing a task) stay in `transaction.on_commit`,
registered by the subscriber.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

E = TypeVar("E")
Handler = Callable[[Any], Iterable[Any] | None]

_subscribers: dict[type, list[Handler]] = {}


def subscribe(event_type: type[E]) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
    """Decorator: `@subscribe(OrderMoved)` registers the function for that event type (once)."""

    def register(handler: Callable[[E], Any]) -> Callable[[E], Any]:
        handlers = _subscribers.setdefault(event_type, [])
        if handler not in handlers:  # ready() may run twice under some test runners
            handlers.append(handler)
        return handler

    return register


def publish(event: object) -> list[Any]:
    """Run every subscriber of the event's exact type now; answer what they answered, flattened."""
    answers: list[Any] = []
    for handler in list(_subscribers.get(type(event), ())):
        got = handler(event)
        if got is not None:
            answers.extend(got)
    return answers


def subscribers(event_type: type) -> list[Handler]:
    """Who listens to an event type (for tests and for the import check's story)."""
    return list(_subscribers.get(event_type, ()))
