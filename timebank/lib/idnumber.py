"""China resident ID numbers (GB 11643-1999): check digit, birth date, masking."""

from __future__ import annotations

import datetime as dt
import random

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


class IdNumberError(ValueError):
    """The text is not a valid resident ID number; `reason` is a short code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalise(value: str) -> str:
    """Validate and return the canonical form (upper-case X). Raises IdNumberError."""
    text = value.strip().upper()
    if len(text) != 18:
        raise IdNumberError("length")
    if not text[:17].isdigit() or not (text[17].isdigit() or text[17] == "X"):
        raise IdNumberError("characters")
    try:
        dt.date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise IdNumberError("birth_date") from None
    if check_digit(text[:17]) != text[17]:
        raise IdNumberError("checksum")
    return text


def birth_date(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def mask(value: str) -> str:
    """3704**********1234: region prefix and last four, as the contract shows."""
    if len(value) < 8:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 8) + value[-4:]


def make(region: str, born: dt.date, rng: random.Random, *, male: bool) -> str:
    """A valid number for demo data and tests."""
    seq = rng.randrange(0, 100) * 10 + (rng.choice((1, 3, 5, 7, 9)) if male else rng.choice((0, 2, 4, 6, 8)))
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + check_digit(first17)
