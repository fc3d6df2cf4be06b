"""Dashboard pages: the overview for a head office or branch, the sub-branch's day, and the 供不应求 risk page
with its thresholds. Wired into the management pages by timebank/reports/urls_web.py."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import CertificateKind
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.members.person import NameShield
from timebank.ops.replica import reading_from_replica
from timebank.orgs.access import has_role
from timebank.orgs.models import FIGURE_READERS, Org, OrgKind, User
from timebank.orgs.scope import banks_for, can_manage, require_manager, user_of
from timebank.reports import dashboards as dash
from timebank.reports import halfyear
from timebank.reports.access import access_risk_rules, access_stats_org, may_edit_risk_rules, require_figure_reader
from timebank.reports.actions import RISK_FIELDS, do_update_risk_rules, risk_rules_for
from timebank.reports.anomalies import find_anomalies
from timebank.reports.forms import PeriodForm, RiskRulesForm
from timebank.reports.risk import compute_risk, months_before
from timebank.reports.stats import compute
from timebank.web.views.common import add_form_error, page

DAILY_KINDS = (OrgKind.SUB_BRANCH, OrgKind.OUTLET)
ANOMALY_LABELS = {
    "daily_over": _("一天记入超过上限"),
    "yearly_over": _("一年记入超过上限"),
    "record_without_source": _("大额服务记录（不属于活动）"),
}


@page("login")  # staff, admins and supervisors: require_figure_reader
def dashboard_home(request: HttpRequest) -> HttpResponse:
    """The caller's own dashboard: a community's day for sub-branch staff, the overview for admins above."""
    user = user_of(request)
    scope = require_figure_reader(user)
    if scope is None:
        banks = banks_for(user)
        if not banks:
            return redirect("web:manage")
        scope = banks[0]
    if scope.kind in DAILY_KINDS and can_manage(user):
        return redirect("web:dashboard_today", org_id=scope.pk)
    return redirect("web:dashboard", org_id=scope.pk)


def _period(request: HttpRequest) -> tuple[PeriodForm, dt.date, dt.date]:
    """The chosen period; by default the last twelve months up to today."""
    today = clock.localdate()
    default_from = months_before(today.replace(day=1), 11)
    form = PeriodForm(request.GET or None)
    date_from, date_to = default_from, today
    if form.is_bound and form.is_valid():
        date_to = form.cleaned_data["date_to"] or today
        date_from = form.cleaned_data["date_from"] or months_before(date_to.replace(day=1), 11)
        if date_to - date_from > dt.timedelta(days=3 * 366):
            date_from = months_before(date_to.replace(day=1), 11)
    if not form.is_bound:
        form = PeriodForm(initial={"date_from": date_from, "date_to": date_to})
    return form, date_from, date_to


def _charts_context(charts: list[dash.Chart]) -> dict[str, Any]:
    return {"charts": charts, "uses_charts": True}


def _parent_visible(user: User, org: Org) -> bool:
    """Link up to the parent org only for those who may open it (a community's staff may not)."""
    return org.parent is not None and has_role(user, FIGURE_READERS, org.parent)


@page("login")  # staff, admins and supervisors: require_figure_reader
def overview(request: HttpRequest, org_id: int) -> HttpResponse:
    user = user_of(request)
    require_figure_reader(user)
    org = access_stats_org(user, org_id)
    with reading_from_replica():  # the figures; who may see them was decided above, on the primary
        form, date_from, date_to = _period(request)
        services, credited = dash.activity(org, date_from, date_to)
        categories = dash.by_category(org, date_from, date_to)
        fulfilment = dash.fulfilment(org, date_from, date_to)
        subs = dash.sub_orgs(org, date_from, date_to)
        charts = [services, credited, categories, fulfilment]
        if subs:
            charts.append(dash.sub_org_chart(subs))
        shield = NameShield(user)
        top = dash.top_volunteers(org, date_from, date_to)
        for row in top:
            row.name = shield.member(row.member)
        risk = compute_risk(org)
        stats = compute(org, date_from, date_to)
        anomalies = find_anomalies(org, date_from, date_to)
        anomaly_rows = [
            {"a": a, "label": ANOMALY_LABELS[a.kind], "name": shield.member(a.member) if a.member else "—"}
            for a in anomalies
        ]
        return render(
            request,
            "reports/overview.html",
            {
                "org": org,
                "form": form,
                "date_from": date_from,
                "date_to": date_to,
                "stats": stats,
                "service_hours": dash.hours(stats.service_minutes),
                "credited_hours": dash.hours(stats.credited_minutes),
                "services_chart": services,
                "hours_chart": credited,
                "categories_chart": categories,
                "fulfilment_chart": fulfilment,
                "subs_chart": charts[-1] if subs else None,
                "unfilled": dash.unfilled(org, date_from, date_to),
                "subs": subs,
                "top": top,
                "shows_stars": dash.star_level_function() is not None,
                "risk": risk,
                "anomalies": anomaly_rows,
                "is_daily": org.kind in DAILY_KINDS,
                "parent_visible": _parent_visible(user, org),
                "manages": can_manage(user),
                **_charts_context(charts),
            },
        )


@page("workbench")
def today(request: HttpRequest, org_id: int) -> HttpResponse:
    """A community's working day names people and their needs: staff and admins only (not supervisors)."""
    user = user_of(request)
    require_manager(user)
    org = access_stats_org(user, org_id)
    with reading_from_replica():
        day = dash.today_for(org)
        shield = NameShield(user)
        for order in [*day.orders, *day.overdue]:
            order.recipient_name = shield.member(order.recipient)  # type: ignore[attr-defined]
            order.volunteer_name = shield.member(order.volunteer) if order.volunteer else ""  # type: ignore[attr-defined]
        for need in day.needs:
            need.recipient_name = shield.member(need.recipient)  # type: ignore[attr-defined]
        for member in day.insurance:
            member.display_name = shield.member(member)  # type: ignore[attr-defined]
        kinds = dict(CertificateKind.choices)
        for cert in day.certificates:
            cert.kind_label = kinds.get(cert.kind, cert.kind)
            cert.member_name = shield.member(cert.member)
            cert.days_left = (cert.valid_until - day.today).days if cert.valid_until else None
        context = {"org": org, "day": day, "soon_days": dash.SOON_DAYS, "manages": True}
        return render(request, "reports/today.html", context)


@page("login")  # staff, admins and supervisors: require_figure_reader
def risk_page(request: HttpRequest, org_id: int) -> HttpResponse:
    """供不应求 for the org and each org under it; head-office admins set the thresholds here."""
    user = user_of(request)
    require_figure_reader(user)
    org = access_stats_org(user, org_id)
    bank = org.bank
    can_edit = may_edit_risk_rules(user, bank)
    current = risk_rules_for(bank)
    form = RiskRulesForm(initial={f: getattr(current, f) for f in RISK_FIELDS}) if can_edit else None
    if request.method == "POST":
        access_risk_rules(user, bank)
        form = RiskRulesForm(request.POST)
        if form.is_valid():
            try:
                do_update_risk_rules(user, bank, {f: form.cleaned_data[f] for f in RISK_FIELDS})
            except ApiError as exc:
                add_form_error(form, exc)
            else:
                messages.success(request, _("风险阈值已保存，下面的提醒已按新阈值重新计算。"))
                return redirect("web:risk", org_id=org.pk)
    with reading_from_replica():
        risk = compute_risk(org)
        children = [compute_risk(c) for c in org.children.exclude(kind=OrgKind.OUTLET).order_by("name")]
        age_chart = dash.Chart(
            "chart-ages",
            str(_("志愿者年龄结构：现在、5 年后、10 年后")),
            "bar",
            [band_label(b["low"], b["high"]) for b in risk.age_bands],
            [
                {"name": str(_("现在")), "data": [b["in_0"] for b in risk.age_bands]},
                {"name": str(_("5 年后")), "data": [b["in_5"] for b in risk.age_bands]},
                {"name": str(_("10 年后")), "data": [b["in_10"] for b in risk.age_bands]},
            ],
            unit=str(_("人")),
        )
        unfilled_chart = dash.Chart(
            "chart-unfilled",
            str(_("每月没有派出志愿者的订单占比")),
            "line",
            [m.month for m in risk.months],
            [{"name": "%", "data": [float(m.percent) if m.percent is not None else None for m in risk.months]}],
            unit="%",
        )
        return render(
            request,
            "reports/risk.html",
            {
                "org": org,
                "bank": bank,
                "risk": risk,
                "children": children,
                "form": form,
                "can_edit": can_edit,
                "age_chart": age_chart,
                "unfilled_chart": unfilled_chart,
                "age_rows": [(band_label(b["low"], b["high"]), b) for b in risk.age_bands],
                "outstanding_hours": dash.hours(risk.outstanding_minutes),
                "capacity_hours": round(float(risk.capacity_minutes_per_month) / 60, 1),
                "parent_visible": _parent_visible(user, org),
                "manages": can_manage(user),
                **_charts_context([age_chart, unfilled_chart]),
            },
        )


def band_label(low: int, high: int | None) -> str:
    if high is None:
        return str(_("%(low)s 岁及以上") % {"low": low})
    if low == 0:
        return str(_("%(high)s 岁以下") % {"high": high})
    return str(_("%(low)s–%(high)s 岁") % {"low": low, "high": high - 1})


@page("login")  # staff, admins and supervisors: require_figure_reader
def half_year_page(request: HttpRequest, org_id: int) -> HttpResponse:
    """The half-year report for the 民政局: pick a half-year, download it as .xlsx or PDF."""
    user = user_of(request)
    require_figure_reader(user)
    org = access_stats_org(user, org_id)
    choices = halfyear.recent_half_years()
    chosen = choices[0]
    if request.GET.get("half_year"):
        chosen = halfyear.parse_half_year(request.GET["half_year"])
    return render(
        request,
        "reports/half_year.html",
        {
            "org": org,
            "choices": choices,
            "chosen": chosen,
            "parent_visible": _parent_visible(user, org),
            "manages": can_manage(user),
        },
    )


@page("login")  # staff, admins and supervisors: require_figure_reader
def half_year_file(request: HttpRequest, org_id: int, ext: str) -> HttpResponse:
    """The report's file; the same function as the API's `/reports/half-year.{xlsx,pdf}`."""
    user = user_of(request)
    require_figure_reader(user)
    period = halfyear.parse_half_year(request.GET.get("half_year"))
    return halfyear.download(access_stats_org(user, org_id), period, ext)
