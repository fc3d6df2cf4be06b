"""When a pending transfer counts as stuck (滞留, issue 16: "a refused or stuck transfer shows its reason"), declared
once for the member's transfer page, the head office's peer pages and the API's transfer output.

A transfer to a peer stays `pending` until the peer answers (the contract's states do not change): the outbox
retries it with back-off. It is stuck when a delivery has failed (the outbox has attempts and a last error), or
when it has waited longer than STUCK_AFTER whatever the reason (a peer that answers nothing useful)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from timebank.federation.models import Direction, FederatedTransfer, Outbox, TransferState
from timebank.lib import clock

STUCK_AFTER = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Delivery:
    stuck: bool
    attempts: int
    last_error: str
    next_attempt_at: dt.datetime | None


def delivery(t: FederatedTransfer, now: dt.datetime | None = None) -> Delivery:
    """How an outgoing transfer's delivery stands (an incoming one, or one settled, is never stuck)."""
    box: Outbox | None = None
    if t.direction == Direction.OUT:
        try:
            box = t.outbox  # select_related("outbox") in lists; one query otherwise
        except Outbox.DoesNotExist:
            box = None
    attempts = box.attempts if box is not None else 0
    last_error = box.last_error if box is not None else ""
    pending = t.state == TransferState.PENDING and t.direction == Direction.OUT
    failed = attempts > 0 and bool(last_error)
    old = (now or clock.now()) - t.agreed_at > STUCK_AFTER
    return Delivery(
        stuck=pending and (failed or old),
        attempts=attempts,
        last_error=last_error,
        next_attempt_at=box.next_attempt_at if box is not None and pending else None,
    )
