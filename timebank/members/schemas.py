"""The schemas of the members API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from ninja import Schema
from pydantic import Field

from timebank.api.types import (
    Address,
    Id,
    IdNumberText,
    Occupation,
    Password,
    PersonName,
    Phone,
    Relation,
    Tag,
    Username,
)
from timebank.members.models import Gender, RecipientCategory

Category = RecipientCategory
Slot = Literal["morning", "afternoon", "evening"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ShortList = Annotated[list[Tag], Field(max_length=50)]
Coordinate = Annotated[Decimal, Field(allow_inf_nan=False, ge=-180, le=180, max_digits=12)]


class LoginIn(Schema):
    username: Username
    password: Password


class MemberFields(Schema):
    name: PersonName | None = None
    phone: Phone | None = None
    birth_date: dt.date | None = None
    gender: Gender | None = None
    id_number: IdNumberText | None = Field(None, description="Write-only; read back as id_number_masked")
    address: Address | None = None
    latitude: Coordinate | None = None
    longitude: Coordinate | None = None
    roles: Annotated[list[Literal["volunteer", "recipient"]], Field(max_length=2)] | None = None
    recipient_categories: Annotated[list[Category], Field(max_length=10)] | None = None
    skills: ShortList | None = None
    occupation: Occupation | None = None
    willing_services: ShortList | None = None
    availability: dict[Day, Annotated[list[Slot], Field(max_length=3)]] | None = None
    referred_by_id: Id | None = None


class MemberIn(MemberFields):
    name: PersonName
    home_org_id: Id
    login: LoginIn | None = None


class MemberPatch(MemberFields):
    home_org_id: Id | None = None
    login: LoginIn | None = Field(
        None, description="Gives a member who has no login their own (as when creating); 409 has_login if they have one"
    )


class MemberOut(Schema):
    id: int
    bank_id: int
    home_org_id: int
    name: str
    phone: str
    birth_date: dt.date | None
    gender: str
    id_number_masked: str
    address: str | None
    latitude: Decimal | None
    longitude: Decimal | None
    roles: list[str]
    recipient_categories: list[str]
    skills: list[str]
    occupation: str
    willing_services: list[str]
    availability: dict[str, list[str]]
    referred_by_id: int | None
    status: str
    has_login: bool
    created_at: dt.datetime
    duplicate_of_id: int | None = Field(
        None,
        description="For the staff who review a pending registration: the member (or earlier registration) "
        "with the same ID number. Always null for anyone else.",
    )


class IdNumberOut(Schema):
    member_id: int
    id_number: str


class RelativeIn(Schema):
    relative_id: Id
    relation: Relation
    # The relative becomes the member's contact for SMS (an accepted order's code goes to them).
    contact: Annotated[bool, Field(strict=True)] = False


class RelativeOut(Schema):
    member_id: int
    relative_id: int
    relation: str
    name: str


class MeOut(Schema):
    username: str
    roles: list[str]
    org_id: int | None
    member: MemberOut | None
