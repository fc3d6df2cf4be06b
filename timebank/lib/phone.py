"""Mainland China phone numbers, checked in one place: the API's `Phone` type, the page forms and the actions
(members, the hotline's call log, the census import) all read `PHONE_RE` or `clean_phone`.

A mobile is 11 digits starting with 1 (13x to 19x); a landline is its area code (0 and two or three digits, as
010 or 0632) and 7 or 8 digits, with or without a hyphen, optionally an extension after another hyphen."""

from __future__ import annotations

import re

PHONE_RE = re.compile(r"^(?:1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8}(?:-[0-9]{1,6})?)$")


def clean_phone(text: str) -> str | None:
    """The number as stored (spaces dropped; a mobile written +86 ... as its 11 digits), or None when it is not a
    mainland mobile or landline number. An empty text stays empty."""
    phone = re.sub(r"\s+", "", text)
    if phone.startswith("+86"):
        phone = phone[3:].removeprefix("-")
        if not phone.startswith("1"):
            return None
    if not phone:
        return ""
    return phone if PHONE_RE.match(phone) else None
