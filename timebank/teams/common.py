"""What the teams' writes share: the bank of an org, who is staff of an activity's org, and free text."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Invalid
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, Org, User


def person_or_none(actor: User | None) -> User | None:
    return actor if actor is not None and actor.pk else None


def is_staff_of(actor: User | None, activity_org: Org) -> bool:
    """Staff or an admin of the activity's org or above: the only ones who may backdate or close early."""
    return actor is not None and bool(actor.pk) and has_role(actor, MANAGING_ROLES, activity_org)


def clean_text(value: str, field_name: str, max_length: int, *, required: bool = False) -> str:
    text = (value or "").strip()
    if required and not text:
        raise Invalid(_("这一项必须填写。"), fields={field_name: "required"})
    if len(text) > max_length:
        raise Invalid(_("内容太长。"), fields={field_name: "too_long"})
    if "\x00" in text:
        raise Invalid(_("内容含有无效字符。"), fields={field_name: "invalid"})
    return text
