"""Input types shared by every endpoint: bounded, strict, and safe for PostgreSQL."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Generic, TypeVar

from django.db.models import Model, QuerySet
from django.utils.translation import gettext_lazy as _
from ninja import Schema
from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from timebank.lib.errors import Invalid
from timebank.lib.phone import clean_phone

MAX_ID = 2**62  # ids beyond this would overflow a bigint column


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store NUL in text; refuse it here rather than fail in the database.
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


NoNul = AfterValidator(_no_nul)


def _phone(value: str) -> str:
    # 422 {"phone": "invalid"}, the code the actions answered before the type checked the format itself.
    phone = clean_phone(value)
    if phone is None:
        raise PydanticCustomError("invalid", "not a mainland mobile or landline number")
    return phone


def _text(max_length: int, min_length: int = 0) -> StringConstraints:
    return StringConstraints(strict=True, max_length=max_length, min_length=min_length)


# Named text types: mypy reads these aliases, pydantic enforces the bounds.
Username = Annotated[str, _text(150, 1), NoNul]
Password = Annotated[str, _text(128, 1), NoNul]
Token = Annotated[str, _text(200, 1), NoNul]
OrgName = Annotated[str, _text(100, 1), NoNul]
PersonName = Annotated[str, _text(50, 1), NoNul]
Phone = Annotated[str, _text(20), NoNul, AfterValidator(_phone)]  # mainland mobile or landline


def _mobile(value: str) -> str:
    phone = clean_phone(value)
    if not phone or not phone.startswith("1"):
        raise PydanticCustomError("invalid", "not a mainland mobile number")
    return phone


Mobile = Annotated[str, _text(20, 1), NoNul, AfterValidator(_mobile)]  # a mainland mobile: it can receive an SMS
SmsCode = Annotated[str, _text(6, 6), NoNul, StringConstraints(pattern=r"^[0-9]{6}$")]
IdNumberText = Annotated[str, _text(18), NoNul]
Address = Annotated[str, _text(200), NoNul]
Occupation = Annotated[str, _text(100), NoNul]
Tag = Annotated[str, _text(50, 1), NoNul]
Relation = Annotated[str, _text(30, 1), NoNul]
Memo = Annotated[str, _text(500), NoNul]
Reason = Annotated[str, _text(500, 1), NoNul]
Cursor = Annotated[str, _text(100), NoNul]
Search = Annotated[str, _text(50), NoNul]

Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]
PathId = Annotated[int, Field(ge=1, le=MAX_ID)]
Minutes = Annotated[int, Field(strict=True, ge=-(2**62), le=2**62)]
IdempotencyKey = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=64), AfterValidator(_no_nul)]

T = TypeVar("T")
M = TypeVar("M", bound=Model)


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(pk: int) -> str:
    return base64.urlsafe_b64encode(f"k{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith("k"):
            raise ValueError(raw)
        value = int(raw[1:])
        if not 0 < value <= MAX_ID:
            raise ValueError(raw)
        return value
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid(_("翻页参数无效。"), fields={"cursor": "invalid"}) from None


def paginate(
    qs: QuerySet[M], limit: int, cursor: str | None, *, newest_first: bool = False
) -> tuple[list[M], str | None]:
    """Keyset pagination on the primary key: stable under inserts, cheap at any depth."""
    if not 1 <= limit <= 200:
        raise Invalid(_("每页条数应在 1 到 200 之间。"), fields={"limit": "out_of_range"})
    if cursor:
        after = decode_cursor(cursor)
        qs = qs.filter(pk__lt=after) if newest_first else qs.filter(pk__gt=after)
    rows = list(qs.order_by("-pk" if newest_first else "pk")[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (encode_cursor(rows[-1].pk) if more and rows else None)
