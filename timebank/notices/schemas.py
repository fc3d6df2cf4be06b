"""The schemas of the notices API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from ninja import Schema
from pydantic import Field, StringConstraints

from timebank.api.types import Id, NoNul, OrgName
from timebank.notices import actions
from timebank.notices.access import can_manage_notice
from timebank.notices.models import Audience, Notice, NoticeRead

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

    # Read from the Notice row (with its org) and the caller, the request's user in the schema's context. `unread`
    # until the caller has read it (a list annotates `read_by_caller` in its one query; one notice asks here);
    # `can_withdraw` while live, by the one rule of notices.access.can_manage_notice.
    @staticmethod
    def resolve_org_name(notice: Notice) -> str:
        return notice.org.name

    @staticmethod
    def resolve_unread(notice: Notice, context: dict[str, Any]) -> bool:
        read = getattr(notice, "read_by_caller", None)
        if read is None:
            read = NoticeRead.objects.filter(user=context["request"].user, notice=notice).exists()
        return not read

    @staticmethod
    def resolve_can_withdraw(notice: Notice, context: dict[str, Any]) -> bool:
        return notice.withdrawn_at is None and can_manage_notice(context["request"].user, notice)
