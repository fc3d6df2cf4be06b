"""Publishing, withdrawing and reading notices. Every write is here, with its audit row."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.notices.models import Audience, Notice, NoticeRead, NoticeSource
from timebank.orgs.models import Org, User

MAX_TITLE = 100
MAX_BODY = 5000


def _text(value: str, field: str, max_length: int) -> str:
    text = (value or "").strip()
    if not text:
        raise Invalid(_("请填写这一项。"), fields={field: "required"})
    if len(text) > max_length or "\x00" in text:
        raise Invalid(_("内容太长或含有无效字符。"), fields={field: "invalid"})
    return text


def _real(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


@transaction.atomic
def do_publish_notice(
    actor: User | None,
    *,
    org: Org,
    title: str,
    body: str,
    audience: str = Audience.EVERYONE,
    pinned: bool = False,
    expires_on: dt.date | None = None,
    source: str = NoticeSource.MANUAL,
    source_key: str = "",
) -> Notice:
    """Publish to `org`'s subtree. An automatic notice with a `source_key` is published once."""
    title = _text(title, "title", MAX_TITLE)
    body = _text(body, "body", MAX_BODY)
    if audience not in Audience.values:
        raise Invalid(_("请选择通知对象。"), fields={"audience": "invalid"})
    if expires_on is not None and expires_on < clock.localdate():
        raise Invalid(_("截止日期不能早于今天。"), fields={"expires_on": "in_past"})
    assert org.head_office_id is not None
    if source_key:
        existing = Notice.objects.filter(bank_id=org.head_office_id, source_key=source_key).first()
        if existing is not None:
            return existing
    try:
        with transaction.atomic():
            notice = Notice.objects.create(
                org=org,
                bank_id=org.head_office_id,
                title=title,
                body=body,
                audience=audience,
                pinned=pinned,
                expires_on=expires_on,
                source=source,
                source_key=source_key[:64],
                published_by=_real(actor),
                published_at=clock.now(),
            )
    except IntegrityError:
        # Two automatic publishers raced: the other one's notice stands.
        return Notice.objects.get(bank_id=org.head_office_id, source_key=source_key)
    record(
        actor,
        "notice.publish",
        notice,
        bank_id=org.head_office_id,
        data={
            "org": org.pk,
            "title": title,
            "audience": audience,
            "pinned": pinned,
            "expires_on": expires_on.isoformat() if expires_on else None,
            "source": source,
        },
    )
    return notice


@transaction.atomic
def do_withdraw_notice(actor: User | None, notice: Notice) -> Notice:
    notice = Notice.objects.select_for_update().get(pk=notice.pk)
    if notice.withdrawn_at is not None:
        raise Conflict(_("这条通知已经撤回了。"), code="already_withdrawn")
    notice.withdrawn_at = clock.now()
    notice.withdrawn_by = _real(actor)
    notice.save(update_fields=["withdrawn_at", "withdrawn_by"])
    record(actor, "notice.withdraw", notice, bank_id=notice.bank_id, data={"title": notice.title})
    return notice


@transaction.atomic
def do_mark_read(actor: User, notice: Notice) -> NoticeRead:
    """Idempotent: the first read is kept (and audited); later ones change nothing."""
    existing = NoticeRead.objects.filter(notice=notice, user=actor).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            read = NoticeRead.objects.create(notice=notice, user=actor, read_at=clock.now())
    except IntegrityError:
        return NoticeRead.objects.get(notice=notice, user=actor)
    record(actor, "notice.read", notice, bank_id=notice.bank_id)
    return read
