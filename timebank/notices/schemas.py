"""The schemas of the notices API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from ninja import Schema
from pydantic import Field, StringConstraints

from timebank.api.types import Id, NoNul, OrgName
from timebank.notices import actions
from timebank.notices.models import Audience

Body = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=actions.MAX_BODY), NoNul]


class NoticeIn(Schema):
    org_id: Id
    title: OrgName
    body: Body
    audience: Audience = Audience.EVERYONE
    pinned: Annotated[bool, Field(strict=True)] = False
    expires_on: dt.date | None = None


class NoticeOut(Schema):
    id: int
    org_id: int
    org_name: str
    title: str
    body: str
    audience: str
    pinned: bool
    expires_on: dt.date | None
    source: str
    published_at: dt.datetime
    withdrawn_at: dt.datetime | None
    unread: bool
    can_withdraw: bool
