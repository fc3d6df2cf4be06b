"""The teams' subscriptions to lower apps' events (timebank.lib.events), registered from TeamsConfig.ready().
Each runs inside the publishing action's transaction."""

from __future__ import annotations

from timebank.approvals.events import ApprovalDecided
from timebank.approvals.models import ApprovalKind
from timebank.lib.events import subscribe
from timebank.members.events import MemberStatusChanged
from timebank.members.models import MemberStatus
from timebank.orders.subscribers import post_approved_service_record
from timebank.teams.actions import drop_leadership
from timebank.teams.models import ActivitySignup


@subscribe(MemberStatusChanged)
def on_member_status_changed(event: MemberStatusChanged) -> None:
    """A member suspended or leaving stops leading their teams (and a member who leaves leaves them)."""
    if event.member.status in (MemberStatus.SUSPENDED, MemberStatus.LEFT):
        drop_leadership(event.actor, event.member)


@subscribe(ApprovalDecided)
def on_approval_decided(event: ApprovalDecided) -> list[int] | None:
    """An approved activity credit is posted as a service record and linked to its sign-up."""
    approval = event.approval
    if not event.approved or approval.kind != ApprovalKind.ACTIVITY_CLOSE:
        return None
    rec = post_approved_service_record(event.actor, approval)
    if signup_id := approval.payload.get("signup_id"):
        ActivitySignup.objects.filter(pk=signup_id, service_record__isnull=True).update(service_record=rec)
    assert rec.transaction_id is not None
    return [rec.transaction_id]
