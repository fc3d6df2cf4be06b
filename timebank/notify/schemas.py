"""The schemas of the notify API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from ninja import Schema
from pydantic import Field

from timebank.api.types import Mobile
from timebank.lib.masking import mask_name, mask_phone
from timebank.notify.models import Notification, NotifyChannel


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


def _mask_email(email: str) -> str:
    name, _at, domain = email.partition("@")
    return f"{name[:1]}***@{domain}" if domain else mask_name(email)


# A message sent to a member or about them, as staff of their subtree read it (GET /members/{id}/messages).
class MemberMessageOut(Schema):
    id: int
    channel: str
    to_masked: str
    body: str
    status: str
    created_at: dt.datetime

    @staticmethod
    def resolve_to_masked(obj: Notification) -> str:
        member, user = obj.member, obj.user
        if obj.channel == NotifyChannel.SMS and member is not None:
            return mask_phone(member.phone)
        if obj.channel == NotifyChannel.EMAIL and user is not None and user.email:
            return _mask_email(user.email)
        if member is not None:
            return mask_name(member.name)
        return mask_name(user.get_full_name() or user.username) if user is not None else ""


class MemberMessagePage(Schema):
    items: list[MemberMessageOut]
    next_cursor: str | None


class SmsCodeIn(Schema):
    phone: Mobile


class SmsCodeOut(Schema):
    # Always true: the answer never tells whether the phone is known.
    accepted: bool
