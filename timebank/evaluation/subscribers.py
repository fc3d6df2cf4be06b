"""Evaluation's subscriptions to lower apps' events (timebank.lib.events), registered from
EvaluationConfig.ready(). Each runs inside the publishing action's transaction."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _

from timebank.approvals.events import ApprovalDecided
from timebank.approvals.models import ApprovalKind
from timebank.evaluation.actions import post_award_bonus
from timebank.evaluation.dispatch import check_dispatchable, not_blocked
from timebank.evaluation.stars import star_level
from timebank.ledger.events import StoredTimeSpending
from timebank.lib.errors import Conflict
from timebank.lib.events import subscribe
from timebank.members.models import Member
from timebank.orders.events import VolunteersMatched, VolunteerVetted


@subscribe(VolunteerVetted)
def refuse_suspended(event: VolunteerVetted) -> None:
    """A volunteer under a suspension from dispatch (奖惩) is not dispatched or credited: 409."""
    check_dispatchable(event.volunteer, event.today)


@subscribe(StoredTimeSpending)
def refuse_below_star_level(event: StoredTimeSpending) -> None:
    """The head office's `spend_min_star_level` (Guangzhou: one star): a member whose star level (after any
    hold-back) is below it does not spend stored time on their own service yet: 409 `below_star_level`."""
    member = Member.objects.get(pk=event.member_id)
    level = star_level(member).level
    if level < event.min_level:
        raise Conflict(
            _("星级还不到%(min)s星（现在%(level)s星），储存的时间还不能用于本人的服务；可以转赠给亲属使用。")
            % {"min": event.min_level, "level": level},
            code="below_star_level",
            fields={"spend_min_star_level": event.min_level, "star_level": level},
        )


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
