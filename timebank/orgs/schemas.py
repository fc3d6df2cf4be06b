"""The schemas of the orgs API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

from typing import Annotated

from ninja import Schema
from pydantic import Field

from timebank.api.types import Id, Mobile, OrgName, Password, SmsCode, Token, Username
from timebank.orgs import rules as rule_registry
from timebank.orgs.models import OrgKind, Role, User


class TokenIn(Schema):
    """A username and password, or a phone and the code sent to it by SMS (`POST /auth/sms-code`); the handler
    answers 422 for a half of either pair, or for both ways at once."""

    username: Username | None = None
    password: Password | None = None
    phone: Mobile | None = None
    sms_code: SmsCode | None = None


class TokenOut(Schema):
    token: str
    member_id: int | None
    roles: list[str]
    expires_in_days: int
    # After a reset: this token may only choose a new password (POST /me/password).
    must_change_password: bool


class PasswordIn(Schema):
    old_password: Password
    new_password: Password


class PasswordOut(Schema):
    changed: bool
    must_change_password: bool


class TemporaryPasswordOut(Schema):
    temporary_password: str


class RevokeIn(Schema):
    token: Token


class OrgIn(Schema):
    name: OrgName
    kind: OrgKind
    parent_id: Id | None = None


class OrgOut(Schema):
    id: int
    name: str
    kind: str
    parent_id: int | None
    head_office_id: int | None


class StaffIn(Schema):
    username: Username
    password: Password
    name: OrgName
    org_id: Id
    role: Role


class StaffOut(Schema):
    id: int
    username: str
    name: str
    org_id: int
    role: str
    is_active: bool

    # Read from the staff login; its `name` is the login's display name.
    @staticmethod
    def resolve_name(staff: User) -> str:
        return staff.display_name


class StaffPatch(Schema):
    org_id: Id | None = None
    role: Role | None = None
    is_active: Annotated[bool, Field(strict=True)] | None = None


# Both schemas are built from the rules' registry (`timebank.orgs.rules`), one field per declared rule.
RulesOut = rule_registry.out_schema(name="RulesOut")
RulesPatch = rule_registry.patch_schema(name="RulesPatch")
