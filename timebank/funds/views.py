"""公示 pages: anyone, without logging in, reads an org's money and service totals, and prints them."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from timebank.funds.disclosure import Period, as_text, chart_bars, check_period, disclose, hours_text
from timebank.funds.pdf import period_text, render_pdf
from timebank.lib.errors import Invalid
from timebank.orgs.models import Org, OrgKind

# The SVG chart's geometry (user units; it scales with the page).
CHART_LABEL_W, CHART_BAR_W, CHART_VALUE_W, CHART_ROW = 170, 300, 110, 28


def _org(org_id: int) -> Org:
    org = Org.objects.select_related("head_office").filter(pk=org_id).first()
    if org is None:
        raise Http404(_("找不到该机构。"))
    return org


def _date(request: HttpRequest, name: str) -> dt.date | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        if len(raw) != 10:
            raise ValueError(raw)
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise Invalid(_("日期格式应为 YYYY-MM-DD。"), fields={name: "invalid"}) from None


def _period(request: HttpRequest) -> Period:
    return check_period(_date(request, "from"), _date(request, "to"))


def _chart(report: dict[str, Any]) -> dict[str, Any]:
    bars = []
    for i, bar in enumerate(chart_bars(report)):
        y = i * CHART_ROW
        bars.append(
            {
                "label": bar.label,
                "amount": as_text(bar.amount),
                "group": bar.group,
                "y": y,
                "text_y": y + CHART_ROW // 2 + 5,
                "bar_y": y + 5,
                "width": f"{CHART_BAR_W * bar.share:.1f}",  # text: a float would be localised
            }
        )
    return {
        "bars": bars,
        "height": CHART_ROW * len(bars),
        "width": CHART_LABEL_W + CHART_BAR_W + CHART_VALUE_W,
        "bar_x": CHART_LABEL_W,
        "value_x": CHART_LABEL_W + CHART_BAR_W + CHART_VALUE_W,
        "bar_h": CHART_ROW - 10,
    }


def _ancestors(org: Org) -> list[Org]:
    ids = [int(p) for p in org.path.strip("/").split("/") if p.isdigit() and int(p) != org.pk]
    return list(Org.objects.filter(pk__in=ids).order_by("path"))


@require_GET
def disclosure_index(request: HttpRequest) -> HttpResponse:
    banks = list(Org.objects.filter(kind=OrgKind.HEAD_OFFICE).prefetch_related("children").order_by("name"))
    return render(request, "funds/disclosure_index.html", {"banks": banks})


@require_GET
def disclosure_page(request: HttpRequest, org_id: str) -> HttpResponse:
    org = _org(int(org_id))
    context: dict[str, Any] = {
        "org": org,
        "ancestors": _ancestors(org),
        "from": request.GET.get("from", "")[:10],
        "to": request.GET.get("to", "")[:10],
    }
    try:
        period = _period(request)
    except Invalid as exc:
        context["error"] = str(exc.message)
        return render(request, "funds/disclosure.html", context, status=400)
    report = disclose(org, period)
    services = report["services"]
    context.update(
        report=as_text(report),
        period_text=period_text(report),
        chart=_chart(report),
        service_hours=hours_text(services["service_minutes"]),
        credited_hours=hours_text(services["credited_minutes"]),
        query=urlencode({k: v.isoformat() for k, v in (("from", period.start), ("to", period.end)) if v}),
    )
    return render(request, "funds/disclosure.html", context)


@require_GET
def disclosure_pdf(request: HttpRequest, org_id: str) -> HttpResponse:
    org = _org(int(org_id))
    try:
        period = _period(request)
    except Invalid as exc:
        return HttpResponse(str(exc.message), status=400, content_type="text/plain; charset=utf-8")
    report = disclose(org, period)
    name = f"disclosure-{org.pk}-{period.start or 'start'}-{period.end or 'now'}.pdf"
    response = HttpResponse(render_pdf(report), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{name}"'
    return response
