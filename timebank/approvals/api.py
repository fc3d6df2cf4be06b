"""Four eyes: what waits for a second person, and their decision."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Query, Router

from timebank.api.types import Page, PathId, paginate
from timebank.approvals.access import access_approval, visible_approvals
from timebank.approvals.actions import do_approve, do_reject
from timebank.approvals.models import Approval, ApprovalState
from timebank.approvals.schemas import ApprovalOut, ApprovalsDecisionOut, RejectIn
from timebank.orgs.api import caller

router = Router(tags=["approvals"])

STATE_FILTER = {
    "pending": ApprovalState.PENDING,
    "approved": ApprovalState.APPROVED,
    "rejected": ApprovalState.REJECTED,
}


def approval_out(a: Approval) -> dict[str, Any]:
    return {
        "id": a.pk,
        "approval_id": a.pk,
        "kind": a.kind,
        "state": a.state,
        "member_id": a.member_id,
        "member_name": a.member.name,
        "org_id": a.org_id,
        "minutes": a.minutes,
        "payload": a.payload,
        "maker_id": a.maker_id,
        "decided_by_id": a.decided_by_id,
        "decided_at": a.decided_at,
        "reason": a.reason,
        "transaction_id": a.transaction_id,
        "created_at": a.created_at,
    }


@router.get("/approvals", response=Page[ApprovalOut])
def list_approvals(
    request: HttpRequest,
    state: Literal["pending", "approved", "rejected"] | None = None,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """Approvals in the caller's subtree, newest first; `?state=pending` is what waits."""
    qs = visible_approvals(caller(request)).select_related("member")
    if state:
        qs = qs.filter(state=STATE_FILTER[state])
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": [approval_out(a) for a in rows], "next_cursor": nxt}


@router.post("/approvals/{approval_id}/approve", response=ApprovalsDecisionOut)
def approve(request: HttpRequest, approval_id: PathId) -> dict[str, Any]:
    """A second person (not the maker) posts the waiting credit."""
    user = caller(request)
    approval = do_approve(user, access_approval(user, approval_id))
    return {"approval_id": approval.pk, "state": approval.state, "transaction_id": approval.transaction_id}


@router.post("/approvals/{approval_id}/reject", response=ApprovalsDecisionOut)
def reject(request: HttpRequest, approval_id: PathId, payload: RejectIn) -> dict[str, Any]:
    user = caller(request)
    approval = do_reject(user, access_approval(user, approval_id), reason=payload.reason)
    return {"approval_id": approval.pk, "state": approval.state, "transaction_id": None}
