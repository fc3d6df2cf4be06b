"""Evaluation's subscriptions to lower apps' events (timebank.lib.events), registered from
EvaluationConfig.ready(). Each runs inside the publishing action's transaction."""

from __future__ import annotations

from typing import Any

from timebank.approvals.events import ApprovalDecided
from timebank.approvals.models import ApprovalKind
from timebank.evaluation.actions import post_award_bonus
from timebank.evaluation.dispatch import check_dispatchable, not_blocked
from timebank.lib.events import subscribe
from timebank.orders.events import VolunteersMatched, VolunteerVetted


@subscribe(VolunteerVetted)
def refuse_suspended(event: VolunteerVetted) -> None:
    """A volunteer under a suspension from dispatch (奖惩) is not dispatched or credited: 409."""
    check_dispatchable(event.volunteer, event.today)


@subscribe(VolunteersMatched)
def match_no_suspended(event: VolunteersMatched) -> list[Any]:
    """Matching lists nobody under a suspension from dispatch."""
    return [not_blocked(event.today)]


@subscribe(ApprovalDecided)
def on_approval_decided(event: ApprovalDecided) -> list[int] | None:
    """An approved award bonus is credited, once, and linked to its award."""
    approval = event.approval
    if not event.approved or approval.kind != ApprovalKind.AWARD_BONUS:
        return None
    return [post_award_bonus(int(approval.payload["award_id"]), approval.minutes).pk]
