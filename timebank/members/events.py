"""What the members app tells other apps. Published inside the action's transaction (timebank.lib.events);
the apps above subscribe in their `AppConfig.ready()`, so members imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

from timebank.members.models import Member
from timebank.orgs.models import User


@dataclass(frozen=True)
class MemberRegistered:
    """A member row was created (by staff or by the person). The ledger opens the member's accounts."""

    actor: User | None
    member: Member


@dataclass(frozen=True)
class MemberStatusChanged:
    """A member's status changed (approved, suspended, left...); `member.status` is the new one. The teams app
    takes the leadership of a suspended or departed member away."""

    actor: User | None
    member: Member


@dataclass(frozen=True)
class MemberAnonymised:
    """A member who left was anonymised. Apps that copied the person's data forget it: the hotline's call log
    drops their phone number, the exports revoke their certificates."""

    actor: User | None
    member: Member
