from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router

from timebank.api.types import PathId
from timebank.lib import clock
from timebank.lib.errors import Invalid
from timebank.ops.replica import reading_from_replica
from timebank.orgs.api import caller
from timebank.reports import halfyear
from timebank.reports.access import access_stats_org
from timebank.reports.anomalies import find_anomalies
from timebank.reports.risk import compute_risk
from timebank.reports.schemas import AnomaliesOut, RiskOut, StatsOut
from timebank.reports.stats import compute

router = Router(tags=["reports"])


@router.get("/stats", response=StatsOut)
def stats(
    request: HttpRequest,
    org_id: PathId | None = None,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The seed's measures for an org's subtree and period (`from`/`to` dates; neither = all time):
    active members, volunteers, recipients and members brought in by others now; active members who joined in
    the period (`new_members`) and, of them, volunteers brought in by another member (`referred_volunteers`,
    from `referred_by`); orders confirmed, orders plus service records (`services_completed`), service
    minutes (actual) and credited minutes (weighted) from orders and service records, and ledger transactions
    in the period; outstanding minutes now. For staff and admins of the subtree."""
    user = caller(request)
    if date_from and date_to and date_from > date_to:
        raise Invalid(_("开始日期不能晚于结束日期。"), fields={"from": "after_to"})
    org = access_stats_org(user, org_id)
    with reading_from_replica():
        return compute(org, date_from, date_to).as_dict()


@router.get("/risk", response=RiskOut)
def risk(request: HttpRequest, org_id: PathId | None = None) -> dict[str, Any]:
    """供不应求 (demand exceeding supply) for an org's subtree: credits owed (earned + goods + reserve) and the
    months of current capacity (credited service minutes per month over the head office's risk window) needed to
    honour them; today's volunteers reaching the reserve age in 5 and 10 years against new volunteers at the
    current rate; the unfilled-order rate per month and its trend; and the alerts the head office's thresholds
    raise. For staff and admins of the subtree."""
    org = access_stats_org(caller(request), org_id)
    with reading_from_replica():
        return compute_risk(org).as_dict()


@router.get("/anomalies", response=AnomaliesOut)
def anomalies(
    request: HttpRequest,
    org_id: PathId | None = None,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The anomaly report (异常提醒) for an org's subtree and period (default: the last 30 days): members credited
    more than the daily limit on one day (`daily_over`) or the yearly cap in a calendar year the period touches
    (`yearly_over`), both from the head office's risk thresholds, and service records above the approval
    threshold that are not an activity's attendance (`record_without_source`). For staff and admins of the
    subtree."""
    org = access_stats_org(caller(request), org_id)
    today = clock.localdate()
    date_to = date_to or today
    date_from = date_from or date_to - dt.timedelta(days=30)
    if date_from > date_to:
        raise Invalid(_("开始日期不能晚于结束日期。"), fields={"from": "after_to"})
    if date_to - date_from > dt.timedelta(days=3 * 366):
        raise Invalid(_("一次最多看三年。"), fields={"from": "too_long"})
    with reading_from_replica():
        items = [a.as_dict() for a in find_anomalies(org, date_from, date_to)]
    return {"org_id": org.pk, "date_from": date_from, "date_to": date_to, "items": items}


def _half_year_file(request: HttpRequest, org_id: int | None, half_year: str, ext: str) -> HttpResponse:
    period = halfyear.parse_half_year(half_year)
    return halfyear.download(access_stats_org(caller(request), org_id), period, ext)


@router.get(
    "/reports/half-year.xlsx",
    response={200: None},
    summary="The half-year report for the civil affairs bureau (民政局) of an org's subtree, as .xlsx",
)
def half_year_xlsx(request: HttpRequest, half_year: str, org_id: PathId | None = None) -> HttpResponse:
    """`half_year` is `2026-H1` (January–June) or `2026-H2` (July–December); anything else is 422. Members
    (now and new in the half-year), services by category and tier, hours, 存取次数 (deposits and withdrawals:
    counts and minutes), funds in and out, and the 供不应求 headline. Aggregates only. For staff and admins of the
    subtree, as `/stats`."""
    return _half_year_file(request, org_id, half_year, "xlsx")


@router.get(
    "/reports/half-year.pdf",
    response={200: None},
    summary="The half-year report for the civil affairs bureau (民政局) of an org's subtree, as PDF",
)
def half_year_pdf(request: HttpRequest, half_year: str, org_id: PathId | None = None) -> HttpResponse:
    """The same report as `/reports/half-year.xlsx`, printable."""
    return _half_year_file(request, org_id, half_year, "pdf")
