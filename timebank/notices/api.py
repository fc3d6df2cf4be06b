"""通知公告 over the API: the caller's notices with their unread flag; publishing, withdrawing, reading."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from ninja import Query, Router, Status

from timebank.api.types import Cursor, Page, PathId, paginate
from timebank.notices import actions
from timebank.notices.access import (
    access_notice,
    access_notice_to_manage,
    access_publishing_org,
    managed_notices,
    reaching_notices,
)
from timebank.notices.models import Notice, NoticeRead
from timebank.notices.schemas import NoticeIn, NoticeOut
from timebank.orgs.api import caller

router = Router(tags=["notices"])


@router.get("/notices", response=Page[NoticeOut])
def list_notices(
    request: HttpRequest,
    scope: Literal["mine", "managed"] = "mine",
    unread: bool | None = None,
    limit: int = 50,
    cursor: Annotated[Cursor | None, Query()] = None,
) -> dict[str, Any]:
    """`mine` (default): the live notices that reach the caller, newest first, each with `unread`.
    `managed`: every notice published in the caller's subtree, withdrawn and expired ones too."""
    user = caller(request)
    qs = reaching_notices(user) if scope == "mine" else managed_notices(user)
    read = NoticeRead.objects.filter(user=user).values("notice_id")
    if unread is True:
        qs = qs.exclude(pk__in=read)
    elif unread is False:
        qs = qs.filter(pk__in=read)
    read_by_caller = Exists(NoticeRead.objects.filter(user=user, notice=OuterRef("pk")))
    rows, nxt = paginate(
        qs.select_related("org").annotate(read_by_caller=read_by_caller), limit, cursor, newest_first=True
    )
    return {"items": rows, "next_cursor": nxt}  # NoticeOut reads each row and the caller


@router.post("/notices", response={201: NoticeOut})
def publish_notice(request: HttpRequest, payload: NoticeIn) -> Status[Notice]:
    """Staff and admins publish to their own org or one below it (head office, branch or sub-branch)."""
    user = caller(request)
    org = access_publishing_org(user, payload.org_id)
    notice = actions.do_publish_notice(
        user,
        org=org,
        title=payload.title,
        body=payload.body,
        audience=payload.audience,
        pinned=payload.pinned,
        expires_on=payload.expires_on,
    )
    return Status(201, notice)


@router.get("/notices/{notice_id}", response=NoticeOut)
def get_notice(request: HttpRequest, notice_id: PathId) -> Notice:
    return access_notice(caller(request), notice_id)


@router.post("/notices/{notice_id}/read", response=NoticeOut)
def read_notice(request: HttpRequest, notice_id: PathId) -> Notice:
    user = caller(request)
    notice = access_notice(user, notice_id)
    actions.do_mark_read(user, notice)
    return notice


@router.post("/notices/{notice_id}/withdraw", response=NoticeOut)
def withdraw_notice(request: HttpRequest, notice_id: PathId) -> Notice:
    user = caller(request)
    return actions.do_withdraw_notice(user, access_notice_to_manage(user, notice_id))
