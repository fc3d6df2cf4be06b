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
    from timebank.orders.rules import OPEN_STATES

    qs = between(within(qs, "org__path", org), "created_at", start, end)
    if state == "open":
        qs = qs.filter(state__in=OPEN_STATES)
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


def _yes(value: bool) -> Any:
    return _("是") if value else ""


def export_needs(
    user: User, qs: QuerySet[Any], *, org: Org | None, status: str = "", full: bool = False
) -> FileResponse:
    qs = within(qs, "recipient__home_org__path", org)
    if status:
        qs = qs.filter(status=status)
    rows = (
        qs.select_related("recipient", "recipient__home_org")
        .prefetch_related("items")
        .order_by("pk")
        .iterator(chunk_size=CHUNK)
    )
    columns = [
        Column(_("需求编号"), lambda n: n.pk),
        Column(_("服务对象"), lambda n: n.recipient.name, mask=mask_name),
        Column(_("电话"), lambda n: n.recipient.phone, mask=mask_phone),
        Column(_("所属机构"), lambda n: n.recipient.home_org.name),
        # Recipient categories (失能, 低保 …) are health and hardship data: shown only with the full file.
        Column(_("对象类别"), lambda n: "、".join(n.recipient.recipient_categories), mask=hide),
        Column(_("需求等级"), lambda n: n.get_level_display()),
        Column(_("发现方式"), lambda n: n.get_found_by_display()),
        Column(_("服务项目"), lambda n: "、".join(i.name for i in n.items.all())),
        Column(_("状态"), lambda n: n.get_status_display()),
        Column(_("备注"), lambda n: n.notes, mask=hide),
        Column(_("登记时间"), lambda n: n.created_at),
    ]
    return export_response(
        user,
        name="needs",
        title=_("需求清单"),
        columns=columns,
        rows=rows,
        reveal=reveal_by(user, full, lambda n: n.recipient.home_org_id),
        bank_id=bank_of(user, org),
        filters=filters(org=org, status=status, full=full),
    )


def export_insurance(user: User, qs: QuerySet[Any], *, org: Org | None, full: bool = False) -> FileResponse:
    qs = within(qs, "member__home_org__path", org)
    rows = qs.select_related("member", "member__home_org").order_by("ends_on", "pk").iterator(chunk_size=CHUNK)
    columns = [
        Column(_("会员编号"), lambda p: p.member_id),
        Column(_("姓名"), lambda p: p.member.name, mask=mask_name),
        Column(_("身份证号（已遮挡）"), lambda p: p.member.id_number_masked),
        Column(_("所属机构"), lambda p: p.member.home_org.name),
        Column(_("保险公司"), lambda p: p.insurer),
        Column(_("保单号"), lambda p: p.policy_number, mask=hide),
        Column(_("起保日期"), lambda p: p.starts_on),
        Column(_("终止日期"), lambda p: p.ends_on),
    ]
    return export_response(
        user,
        name="insurance",
        title=_("保险名单"),
        columns=columns,
        rows=rows,
        reveal=reveal_by(user, full, lambda p: p.member.home_org_id),
        bank_id=bank_of(user, org),
        filters=filters(org=org, full=full),
    )


def export_trainings(user: User, qs: QuerySet[Any], *, org: Org | None, full: bool = False) -> FileResponse:
    qs = within(qs, "session__org__path", org)
    rows = (
        qs.select_related("session", "session__org", "member", "member__home_org")
        .order_by("session__held_on", "pk")
        .iterator(chunk_size=CHUNK)
    )
    columns = [
        Column(_("培训"), lambda a: a.session.title),
        Column(_("日期"), lambda a: a.session.held_on),
        Column(_("举办机构"), lambda a: a.session.org.name),
        Column(_("会员编号"), lambda a: a.member_id),
        Column(_("姓名"), lambda a: a.member.name, mask=mask_name),
        Column(_("所属机构"), lambda a: a.member.home_org.name),
        Column(_("出席"), lambda a: _yes(a.attended)),
        Column(_("考核"), lambda a: a.get_assessment_display()),
        Column(_("成绩"), lambda a: a.score),
    ]
    return export_response(
        user,
        name="trainings",
        title=_("培训名单"),
        columns=columns,
        rows=rows,
        reveal=reveal_by(user, full, lambda a: a.member.home_org_id),
        bank_id=bank_of(user, org),
        filters=filters(org=org, full=full),
    )


def export_redemptions(
    user: User,
    qs: QuerySet[Any],
    *,
    org: Org | None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    full: bool = False,
) -> FileResponse:
    qs = between(within(qs, "outlet__path", org), "created_at", start, end)
    rows = qs.select_related("member", "goods", "outlet").order_by("pk").iterator(chunk_size=CHUNK)
    columns = [
        Column(_("兑换编号"), lambda r: r.pk),
        Column(_("会员"), lambda r: r.member.name, mask=mask_name),
        Column(_("物品"), lambda r: r.goods.name),
        Column(_("网点"), lambda r: r.outlet.name),
        Column(_("数量"), lambda r: r.quantity),
        Column(_("时间（分钟）"), lambda r: r.minutes),
        Column(_("状态"), lambda r: r.get_status_display()),
        Column(_("兑换时间"), lambda r: r.created_at),
        Column(_("领取时间"), lambda r: r.handed_over_at),
    ]
    return export_response(
        user,
        name="redemptions",
        title=_("物品兑换"),
        columns=columns,
        rows=rows,
        reveal=reveal_by(user, full, lambda r: r.member.home_org_id),
        bank_id=bank_of(user, org),
        filters=filters(org=org, start=start, end=end, full=full),
    )


def export_calls(
    user: User,
    qs: QuerySet[Any],
    *,
    org: Org | None,
    start: dt.date | None = None,
    end: dt.date | None = None,
    full: bool = False,
) -> FileResponse:
    qs = between(within(qs, "org__path", org), "started_at", start, end)
    rows = qs.select_related("member", "org", "operator").order_by("pk").iterator(chunk_size=CHUNK)
    columns = [
        Column(_("通话编号"), lambda c: c.pk),
        Column(_("开始时间"), lambda c: c.started_at),
        Column(_("结束时间"), lambda c: c.ended_at),
        Column(_("类型"), lambda c: c.get_kind_display()),
        Column(_("来电人"), lambda c: c.member.name if c.member else "", mask=mask_name),
        Column(_("电话"), lambda c: c.phone, mask=mask_phone),
        Column(_("所属机构"), lambda c: c.org.name),
        Column(_("坐席"), lambda c: (c.operator.display_name or c.operator.username) if c.operator else ""),
        Column(_("摘要"), lambda c: c.summary, mask=hide),
        Column(_("订单"), lambda c: c.order_id),
    ]
    return export_response(
        user,
        name="calls",
        title=_("通话记录"),
        columns=columns,
        rows=rows,
        reveal=reveal_by(user, full, lambda c: c.member.home_org_id if c.member else c.org_id),
        bank_id=bank_of(user, org),
        filters=filters(org=org, start=start, end=end, full=full),
    )


def export_fund_entries(
    user: User,
    qs: QuerySet[Any],
    *,
    org: Org | None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> FileResponse:
    qs = within(qs, "org__path", org)
    if start is not None:
        qs = qs.filter(occurred_on__gte=start)
    if end is not None:
        qs = qs.filter(occurred_on__lte=end)
    rows = qs.select_related("org").order_by("occurred_on", "pk").iterator(chunk_size=CHUNK)
    columns = [
        Column(_("编号"), lambda e: e.pk),
        Column(_("日期"), lambda e: e.occurred_on),
        Column(_("机构"), lambda e: e.org.name),
        Column(_("收支"), lambda e: e.get_direction_display()),
        Column(_("资金"), lambda e: e.get_fund_display()),
        Column(_("来源"), lambda e: e.get_source_display() if e.source else ""),
        Column(_("支出类别"), lambda e: e.get_kind_display() if e.kind else ""),
        Column(_("金额（元）"), lambda e: e.amount),
        Column(_("实物"), lambda e: _yes(e.in_kind)),
        Column(_("捐赠方"), lambda e: e.donor_name),
        Column(_("服务商"), lambda e: e.provider),
        Column(_("说明"), lambda e: e.description),
        Column(_("冲正"), lambda e: e.reverses_id),
    ]
    # The fund book holds no member's personal data (a resident donor's name is managed by the fund book's
    # rules); it is for managing staff only, who see it as it is.
    return export_response(
        user,
        name="fund_entries",
        title=_("资金账目"),
        columns=columns,
        rows=rows,
        reveal=True,
        bank_id=bank_of(user, org),
        filters=filters(org=org, start=start, end=end),
    )
