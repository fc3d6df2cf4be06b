"""`{% load federation %}`: whether a member's bank trades with peer nodes (so 我的时间 links the page that sends
minutes to another city)."""

from __future__ import annotations

from django import template

from timebank.federation.models import Peer
from timebank.members.models import Member

register = template.Library()


@register.filter
def bank_has_peers(member: Member | None) -> bool:
    return member is not None and Peer.objects.filter(bank_id=member.bank_id).exists()
