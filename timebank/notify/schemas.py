"""The schemas of the notify API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from ninja import Schema
from pydantic import Field


# Read from the Notification row. `last_error` stays out: a provider's error text is for operators, not the reader.
class NotificationOut(Schema):
    id: int
    channel: str
    template: str
    title: str
    body: str
    order_id: int | None
    payload: dict[str, Any]
    urgent: bool
    status: str
    created_at: dt.datetime
    sent_at: dt.datetime | None
    read_at: dt.datetime | None


class NotificationPage(Schema):
    items: list[NotificationOut]
    next_cursor: str | None
    unread_count: int


class ReadAllOut(Schema):
    marked: int


class DutyIn(Schema):
    on_duty: Annotated[bool, Field(strict=True)]


class DutyOut(Schema):
    on_duty: bool
    updated_at: dt.datetime | None
