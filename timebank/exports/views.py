"""Export downloads for the registers (.xlsx), certificates and statements (PDF), and the public check page."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _

from timebank.exports import registers
from timebank.lib.errors import Forbidden, Invalid
from timebank.members.access import visible_members
from timebank.orders.access import visible_orders
from timebank.orgs.access import has_role
from timebank.orgs.models import Org, User
from timebank.web.views.common import View, is_workbench_user, page, user_of
from timebank.web.views.scope import get_org

READ = frozenset({"head_office_admin", "branch_admin", "staff", "operator"})


def _date(request: HttpRequest, name: str) -> dt.date | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise Invalid(_("日期格式应为 YYYY-MM-DD。"), code="invalid_date", fields={name: "invalid"}) from None


def _org(request: HttpRequest, user: User) -> Org | None:
    """An optional `org` filter; it must lie in the reader's part of the tree (else 403, another bank's is 404)."""
    raw = request.GET.get("org", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Invalid(_("机构编号不对。"), code="invalid_org", fields={"org": "invalid"})
    org = get_org(int(raw))
    if not has_role(user, READ, org):
        raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")
    return org


def _full(request: HttpRequest) -> bool:
    return request.GET.get("full") == "1"


def _workbench(request: HttpRequest) -> User:
    user = user_of(request)
    if not is_workbench_user(user):
        raise Forbidden(_("这个页面只给社区工作人员和热线坐席使用。"), code="not_staff")
    return user


def refuse_bad_input(view: View) -> View:
    """A bad filter (a date that is no date) is a 422 with the reason, not a server error."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Invalid as exc:
            return HttpResponse(str(exc.message), status=422, content_type="text/plain; charset=utf-8")

    return wrapped


def _stream(response: object) -> HttpResponse:
    return cast(HttpResponse, response)  # streamed: the pages' guard passes any response through


@refuse_bad_input
@page("workbench")
def members_xlsx(request: HttpRequest) -> HttpResponse:
    user = _workbench(request)
    return _stream(
        registers.export_members(
            user,
            visible_members(user),
            org=_org(request, user),
            status=request.GET.get("status", "")[:10],
            full=_full(request),
        )
    )


@refuse_bad_input
@page("workbench")
def orders_xlsx(request: HttpRequest) -> HttpResponse:
    user = _workbench(request)
    return _stream(
        registers.export_orders(
            user,
            visible_orders(user),
            org=_org(request, user),
            state=request.GET.get("state", "")[:12],
            start=_date(request, "from"),
            end=_date(request, "to"),
            full=_full(request),
        )
    )
