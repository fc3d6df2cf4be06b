"""The hotline's subscriptions to lower apps' events (timebank.lib.events), registered from
HotlineConfig.ready(). Each runs inside the publishing action's transaction."""

from __future__ import annotations

from timebank.hotline.models import CallLog
from timebank.lib.events import subscribe
from timebank.members.events import MemberAnonymised


@subscribe(MemberAnonymised)
def on_member_anonymised(event: MemberAnonymised) -> None:
    """The call log forgets the phone number it copied of a member who was anonymised."""
    CallLog.objects.filter(member=event.member).update(phone="")
