"""The teams' subscriptions to lower apps' events (timebank.lib.events), registered from TeamsConfig.ready().
Each runs inside the publishing action's transaction."""

from __future__ import annotations

from timebank.lib.events import subscribe
from timebank.members.events import MemberStatusChanged
from timebank.members.models import MemberStatus
from timebank.teams.actions import drop_leadership


@subscribe(MemberStatusChanged)
def on_member_status_changed(event: MemberStatusChanged) -> None:
    """A member suspended or leaving stops leading their teams (and a member who leaves leaves them)."""
    if event.member.status in (MemberStatus.SUSPENDED, MemberStatus.LEFT):
        drop_leadership(event.actor, event.member)
