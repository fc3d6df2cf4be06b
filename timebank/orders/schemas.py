"""The schemas of the orders API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import BeforeValidator, Field

from timebank.api.types import Id, IdempotencyKey, Memo, Reason
from timebank.ledger.schemas import TransactionOut
from timebank.orders import actions
from timebank.orders.models import Channel, PaperSource, Payer

Coordinate = Annotated[Decimal, Field(allow_inf_nan=False, ge=-180, le=180, max_digits=12)]


class OrderIn(Schema):
    recipient_id: Id
    service_item_id: Id
    scheduled_start: dt.datetime
    planned_minutes: Annotated[int, Field(strict=True, ge=1, le=actions.MAX_PLANNED_MINUTES)]
    payer: Payer
    channel: Channel
    notes: Memo = ""
    urgent: bool = False


class PartyOut(Schema):
    id: int
    name: str
    phone: str | None
    address: str | None


class OrderOut(Schema):
    id: int
    state: str
    recipient_id: int
    recipient: PartyOut
    volunteer_id: int | None
    volunteer_name: str | None
    service_item_id: int
    service_item_name: str
    tier: str
    multiplier: float
    org_id: int
    payer: str
    channel: str
    urgent: bool
    scheduled_start: dt.datetime
    planned_minutes: int
    notes: str
    code: str | None
    overdue: bool
    created_at: dt.datetime
    dispatched_at: dt.datetime | None
    accepted_at: dt.datetime | None
    check_in_at: dt.datetime | None
    check_out_at: dt.datetime | None
    actual_minutes: int | None
    credited_minutes: int | None
    transaction_id: int | None
    confirmed_at: dt.datetime | None
    rating: int | None
    review_comment: str
    cancel_reason: str
    dispute_reason: str


class EventOut(Schema):
    action: str
    from_state: str
    to_state: str
    actor: str | None
    volunteer_id: int | None
    note: str
    created_at: dt.datetime


class DispatchIn(Schema):
    volunteer_id: Id
    idempotency_key: IdempotencyKey | None = None


def _time_text(value: object) -> object:
    # A recorded time is ISO 8601 text with its offset; pydantic would also read a number as seconds since 1970.
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("a time is ISO 8601 text with its offset, e.g. 2026-05-01T09:30:00+08:00")
    return value


RecordedTime = Annotated[dt.datetime, BeforeValidator(_time_text)]


class LocationIn(Schema):
    latitude: Coordinate | None = None
    longitude: Coordinate | None = None
    # Paper mode: staff and operators acting for the volunteer (accept, check-in, check-out) give the time written
    # on the paper sheet or said on the phone (default now; not in the future, not before dispatch) and how they
    # know. The volunteer acting for themselves sends neither (422 `on_behalf_only`).
    at: RecordedTime | None = None
    source: PaperSource | None = None
    idempotency_key: IdempotencyKey | None = None


class ConfirmIn(Schema):
    actual_minutes: Annotated[int, Field(strict=True, ge=1, le=24 * 60)] | None = None
    code: Annotated[str, Field(strict=True, min_length=1, max_length=12)] | None = None
    # Staff only, to confirm more than the clock measured (plus grace); kept in the audit entry.
    reason: Memo = ""
    idempotency_key: IdempotencyKey | None = None
    # Staff only: confirm it paid by the subsidy instead (the donation pool or the recipient cannot pay).
    payer: Literal["subsidy"] | None = None


class ReviewIn(Schema):
    rating: Annotated[int, Field(strict=True, ge=1, le=5)]
    comment: Memo = ""
    idempotency_key: IdempotencyKey | None = None


class ReasonIn(Schema):
    reason: Reason
    idempotency_key: IdempotencyKey | None = None


class OptionalReasonIn(Schema):
    reason: Memo = ""
    idempotency_key: IdempotencyKey | None = None


class EmptyIn(Schema):
    idempotency_key: IdempotencyKey | None = None


class ServiceRecordIn(Schema):
    volunteer_id: Id
    service_item_id: Id
    minutes: Annotated[int, Field(strict=True, ge=1, le=24 * 60)]
    served_at: dt.datetime
    recipient_id: Id | None = None
    memo: Memo = ""
    idempotency_key: IdempotencyKey


class CandidateOut(Schema):
    volunteer_id: int
    name: str
    score: float
    distance_km: float | None
    reasons: list[str]


class ServiceRecordOut(TransactionOut):
    service_record_id: int
    credited_minutes: int
