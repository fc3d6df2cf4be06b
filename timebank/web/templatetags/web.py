"""Filters that put numbers and times into plain words for the pages."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import template
from django.conf import settings
from django.utils import formats, timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from timebank.lib import clock
from timebank.web.views.common import person_of

register = template.Library()


@register.filter
def hours(minutes: int | None) -> str:
    """90 → "1 小时 30 分钟": time credits in the words people use (1 credit = 1 hour)."""
    if minutes is None:
        return ""
    sign = "−" if minutes < 0 else ""
    h, m = divmod(abs(int(minutes)), 60)
    parts = []
    if h:
        parts.append(ngettext("%(n)s 小时", "%(n)s 小时", h) % {"n": h})
    if not h and not m:
        parts.append(ngettext("%(n)s 小时", "%(n)s 小时", 0) % {"n": 0})
    elif m:
        parts.append(ngettext("%(n)s 分钟", "%(n)s 分钟", m) % {"n": m})
    return sign + " ".join(parts)


@register.filter
def signed_hours(minutes: int | None) -> str:
    """A statement line: "+1 小时" for money in, "−30 分钟" for money out."""
    if minutes is None:
        return ""
    return ("+" if minutes > 0 else "") + hours(minutes)


@register.filter
def when(value: dt.datetime | None) -> str:
    """今天 14:00 / 明天 09:00 / 4月5日 星期六 09:00 / 2025年4月5日 星期六 09:00 (the year where it is not this
    year's), in the bank's time zone."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    today = clock.localdate()
    days = (local.date() - today).days
    hour = formats.time_format(local, "H:i")
    named = {-1: _("昨天"), 0: _("今天"), 1: _("明天"), 2: _("后天")}
    if days in named:
        return f"{named[days]} {hour}"
    weekday = formats.date_format(local, "l")
    return f"{calendar_day(local)} {weekday} {hour}"


def calendar_day(value: dt.datetime | dt.date, *, always_year: bool = False) -> str:
    """4月5日, or 2025年4月5日 where it is not this year's (or `always_year`: a document kept for years)."""
    local = timezone.localtime(value) if isinstance(value, dt.datetime) else value
    this_year = local.year == clock.localdate().year and not always_year
    return formats.date_format(local, "MONTH_DAY_FORMAT" if this_year else "DATE_FORMAT")


@register.filter
def dated(value: dt.datetime | None, always_year: bool = False) -> str:
    """The day and time with no 今天/昨天, for a line read later (a download): 4月5日 09:00, 2025年4月5日 09:00."""
    if value is None:
        return ""
    local = timezone.localtime(value)
    return f"{calendar_day(local, always_year=always_year)} {formats.time_format(local, 'H:i')}"


@register.filter
def day(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    return formats.date_format(timezone.localtime(value), "SHORT_DATE_FORMAT")


@register.filter
def stars(rating: int | None) -> str:
    if not rating:
        return ""
    return "★" * rating + "☆" * (5 - rating)


@register.filter
def get(mapping: dict[Any, Any], key: Any) -> Any:
    return mapping.get(key) if mapping else None


@register.simple_tag(takes_context=True)
def whoami(context: template.Context) -> Any:
    """The person behind the page (None when nobody is logged in)."""
    request = context.get("request")
    if request is None or not request.user.is_authenticated:
        return None
    return person_of(request)


@register.simple_tag(takes_context=True)
def large_text(context: template.Context) -> bool:
    request = context.get("request")
    return request is not None and request.COOKIES.get("large_text") == "1"


@register.simple_tag
def bank_name(me: Any) -> str:
    """The name heading the page: the function settings.WEB_BANK_NAME names says it (the kit names no app)."""
    return str(import_string(settings.WEB_BANK_NAME)(me))


EVENT_WORDS = {
    "create": _("下单"),
    "dispatch": _("派单"),
    "take": _("志愿者接单"),
    "accept": _("志愿者接单"),
    "decline": _("志愿者拒绝"),
    "no-show": _("志愿者没来"),
    "check-in": _("签到，开始服务"),
    "check-out": _("签退，服务结束"),
    "confirm": _("确认完成"),
    "review": _("评价"),
    "cancel": _("取消"),
    "dispute": _("提出问题"),
}


@register.filter
def event_label(action: str) -> str:
    return str(EVENT_WORDS.get(action, action))
