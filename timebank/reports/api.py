from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Schema

from timebank.api.types import PathId
from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.orgs.access import caller_bank_id, has_role
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES, Org
from timebank.reports.stats import compute

router = Router(tags=["reports"])


class StatsOut(Schema):
    org_id: int
    date_from: dt.date | None
    date_to: dt.date | None
    members: int
    volunteers: int
    recipients: int
    referred_members: int
    orders_completed: int
    service_minutes: int
    credited_minutes: int
    service_records: int
    ledger_transactions: int
    outstanding_minutes: int


@router.get("/stats", response=StatsOut)
def stats(
    request: HttpRequest,
    org_id: PathId | None = None,
    date_from: Annotated[dt.date | None, Query(alias="from")] = None,
    date_to: Annotated[dt.date | None, Query(alias="to")] = None,
) -> dict[str, Any]:
    """The seed's measures for an org's subtree and period (`from`/`to` dates; neither = all time):
    active members, volunteers, recipients and members brought in by others now; orders confirmed, service
    minutes (actual) and credited minutes (weighted) from orders and service records, and ledger transactions
    in the period; outstanding minutes now. For staff and admins of the subtree."""
    user = caller(request)
    if date_from and date_to and date_from > date_to:
        raise Invalid(_("开始日期不能晚于结束日期。"), fields={"from": "after_to"})
    if org_id is None:
        org_id = user.org_id if user.org_id else caller_bank_id(user)
    org = Org.objects.filter(pk=org_id).first() if org_id else None
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("只有本机构及上级的工作人员可以查看统计。"), code="outside_subtree")
    return compute(org, date_from, date_to).as_dict()
