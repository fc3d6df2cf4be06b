"""The schemas of the exports API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt

from ninja import Schema

from timebank.api.types import Tag


class ConsentIn(Schema):
    scope: Tag
    granted: bool


class ConsentOut(Schema):
    scope: str
    granted: bool | None
    channel: str | None = None
    text_version: str | None = None
    at: dt.datetime | None = None


class AnonymisedOut(Schema):
    id: int
    name: str
    status: str
    anonymised_at: dt.datetime
