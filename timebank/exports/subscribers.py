"""The exports' subscriptions to lower apps' events (timebank.lib.events), registered from
ExportsConfig.ready(). Each runs inside the publishing action's transaction."""

from __future__ import annotations

from timebank.exports.actions import do_revoke_member_certificates
from timebank.lib.events import subscribe
from timebank.members.events import MemberAnonymised


@subscribe(MemberAnonymised)
def on_member_anonymised(event: MemberAnonymised) -> None:
    """An anonymised member's certificates are revoked and resealed without the name."""
    do_revoke_member_certificates(event.actor, event.member, reason="anonymised")
