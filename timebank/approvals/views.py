"""待审核: the page where a second staff member or admin approves or rejects a large credit."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.approvals.access import access_approval, check_decider, visible_approvals
from timebank.approvals.actions import credited_lately, do_approve, do_reject
from timebank.approvals.models import Approval, ApprovalState
from timebank.lib.errors import ApiError
from timebank.orgs.models import User
from timebank.orgs.scope import user_of
from timebank.web.views.common import back, explain, page

STATES = {
    "pending": ApprovalState.PENDING,
    "approved": ApprovalState.APPROVED,
    "rejected": ApprovalState.REJECTED,
}


def _row(approval: Approval, user: User) -> Approval:
    p = approval.payload
    approval.what = p.get("reason") or p.get("memo") or ""  # type: ignore[attr-defined]
    approval.own = approval.maker_id == user.pk  # type: ignore[attr-defined]
    approval.refused = ""  # type: ignore[attr-defined]
    if approval.state == ApprovalState.PENDING and not approval.own:  # type: ignore[attr-defined]
        # No buttons for a login that may not decide (not independent of the maker, or the member moved away).
        try:
            check_decider(user, approval)
        except ApiError as exc:
            approval.refused = explain(exc)  # type: ignore[attr-defined]
    if approval.state == ApprovalState.PENDING:
        # What the approver weighs: the member's credits of the last 24 hours, this one included.
        approval.lately = credited_lately(approval.member)  # type: ignore[attr-defined]
    return approval


@page("workbench")
def approval_list(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    state = request.GET.get("state", "pending")
    if state not in STATES:
        state = "pending"
    qs = (
        visible_approvals(user)
        .filter(state=STATES[state])
        .select_related("member__home_org", "org", "maker", "decided_by")
        .order_by("-pk")
    )
    rows = Paginator(qs, 30).get_page(request.GET.get("page"))
    for approval in rows:
        _row(approval, user)
    return render(
        request,
        "approvals/list.html",
        {"rows": rows, "state": state, "query": f"state={state}", "states": list(STATES)},
    )


@require_POST
@page("workbench")
def approval_approve(request: HttpRequest, approval_id: int) -> HttpResponse:
    user = user_of(request)
    approval = access_approval(user, approval_id)
    try:
        approval = do_approve(user, approval)
    except ApiError as exc:
        messages.error(request, explain(exc))
    else:
        messages.success(
            request,
            _("已批准：%(name)s 记入 %(minutes)s 分钟。") % {"name": approval.member.name, "minutes": approval.minutes},
        )
    return back(request, "/staff/approvals/")


@require_POST
@page("workbench")
def approval_reject(request: HttpRequest, approval_id: int) -> HttpResponse:
    user = user_of(request)
    approval = access_approval(user, approval_id)
    try:
        approval = do_reject(user, approval, reason=request.POST.get("reason", ""))
    except ApiError as exc:
        messages.error(request, explain(exc))
    else:
        messages.success(request, _("已驳回：%(name)s 的记录没有入账。") % {"name": approval.member.name})
    return back(request, "/staff/approvals/")
