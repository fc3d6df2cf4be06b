"""The registers as .xlsx: which rows each reader may export, and the columns. Views call these.

Each function takes the reader and already-checked filters and returns an `export_response`. Personal data
(names, phones, addresses) is masked unless the reader asked for the full file (`full=True`) and the role may
see that member's data; ID numbers are only ever exported masked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet
from django.http import FileResponse
from django.utils.translation import gettext_lazy as _

from timebank.exports.xlsx import CHUNK, Column, OrgShield, export_response
from timebank.lib.masking import mask_name, mask_phone
from timebank.members.models import Member
from timebank.orgs.access import staff_scope
from timebank.orgs.models import Org, User


def hide(_value: str) -> str:
    """For free text that may hold anything personal (an address): nothing of it is shown."""
    return "***"


def hours(minutes: int | None) -> float | None:
    return None if minutes is None else round(minutes / 60, 2)


def bank_of(user: User, org: Org | None = None) -> int | None:
    """The audit chain an export is written on: the org's bank, or the reader's; None (global) for the superuser."""
    if org is not None:
        return org.head_office_id
    scope = staff_scope(user)
    return scope.head_office_id if scope is not None else None


def within(qs: QuerySet[Any], path_field: str, org: Org | None) -> QuerySet[Any]:
    return qs if org is None else qs.filter(**{f"{path_field}__startswith": org.path})


def between(qs: QuerySet[Any], field: str, start: dt.date | None, end: dt.date | None) -> QuerySet[Any]:
    if start is not None:
        qs = qs.filter(**{f"{field}__date__gte": start})
    if end is not None:
        qs = qs.filter(**{f"{field}__date__lte": end})
    return qs


def reveal_by(user: User, full: bool, org_id: Callable[[Any], int | None]) -> bool | Callable[[Any], bool]:
    if not full:
        return False
    shield = OrgShield(user)
    return lambda row: shield.allows(org_id(row))


def filters(**kw: Any) -> dict[str, Any]:
    return {k: (v.pk if isinstance(v, Org) else v) for k, v in kw.items() if v not in (None, "", False)}


def export_members(
    user: User, qs: QuerySet[Member], *, org: Org | None, status: str = "", full: bool = False
) -> FileResponse:
    qs = within(qs, "home_org__path", org)
    if status:
        qs = qs.filter(status=status)
    rows = qs.select_related("home_org").order_by("pk").iterator(chunk_size=CHUNK)
    columns = [
        Column(_("会员编号"), lambda m: m.pk),
        Column(_("姓名"), lambda m: m.name, mask=mask_name),
        Column(_("性别"), lambda m: m.get_gender_display()),
        Column(_("出生年份"), lambda m: m.birth_date.year if m.birth_date else None),
        Column(_("电话"), lambda m: m.phone, mask=mask_phone),
        Column(_("身份证号（已遮挡）"), lambda m: m.id_number_masked),
        Column(_("地址"), lambda m: m.address, mask=hide),
        Column(_("所属机构"), lambda m: m.home_org.name),
        Column(_("志愿者"), lambda m: _("是") if m.is_volunteer else ""),
        Column(_("服务对象"), lambda m: _("是") if m.is_recipient else ""),
        Column(_("状态"), lambda m: m.get_status_display()),
        Column(_("登记时间"), lambda m: m.created_at),
    ]
    return export_response(
        user,
        name="members",
        title=_("会员名册"),
        columns=columns,
        rows=rows,
        reveal=reveal_by(user, full, lambda m: m.home_org_id),
        bank_id=bank_of(user, org),
        filters=filters(org=org, status=status, full=full),
    )


def export_orders(
    user: User,
    qs: QuerySet[Any],
    *,
    org: Org | None,
    state: str = "",
    start: dt.date | None = None,
    end: dt.date | None = None,
    full: bool = False,
) -> FileResponse:
    from timebank.orders.models import OrderState

    qs = between(within(qs, "org__path", org), "created_at", start, end)
    if state == "open":
        qs = qs.exclude(state__in=(OrderState.CONFIRMED, OrderState.REVIEWED, OrderState.CANCELLED))
    elif state:
        qs = qs.filter(state=state)
    rows = qs.select_related("org", "recipient", "volunteer", "service_item").order_by("pk").iterator(chunk_size=CHUNK)
    shield = OrgShield(user)

    def person(member: Member | None) -> str:
        # A volunteer from another community is named only to readers of their home subtree.
        if member is None:
            return ""
        return member.name if full and shield.allows(member.home_org_id) else mask_name(member.name)

    columns = [
        Column(_("订单编号"), lambda o: o.pk),
        Column(_("服务项目"), lambda o: o.service_item.name),
        Column(_("服务类别"), lambda o: o.service_item.get_category_display()),
        Column(_("服务对象"), lambda o: o.recipient.name, mask=mask_name),
        Column(_("志愿者"), lambda o: person(o.volunteer)),
        Column(_("所属机构"), lambda o: o.org.name),
        Column(_("状态"), lambda o: o.get_state_display()),
        Column(_("渠道"), lambda o: o.get_channel_display()),
        Column(_("加急"), lambda o: _("是") if o.urgent else ""),
        Column(_("预约时间"), lambda o: o.scheduled_start),
        Column(_("计划时长（小时）"), lambda o: hours(o.planned_minutes)),
        Column(_("实际时长（小时）"), lambda o: hours(o.actual_minutes)),
        Column(_("存入时间（小时）"), lambda o: hours(o.credited_minutes)),
        Column(_("评分"), lambda o: o.rating),
        Column(_("下单时间"), lambda o: o.created_at),
    ]
    return export_response(
        user,
        name="orders",
        title=_("订单"),
        columns=columns,
        rows=rows,
        reveal=reveal_by(user, full, lambda o: o.recipient.home_org_id),
        bank_id=bank_of(user, org),
        filters=filters(org=org, state=state, start=start, end=end, full=full),
    )


def text_search(qs: QuerySet[Any], q: str, name_field: str, phone_field: str) -> QuerySet[Any]:
    return qs.filter(Q(**{f"{name_field}__contains": q}) | Q(**{f"{phone_field}__contains": q})) if q else qs
