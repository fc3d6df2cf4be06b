"""The schemas of the hotline API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated

from ninja import Schema
from pydantic import AwareDatetime, Field, StrictBool

from timebank.api.types import Id, Memo, Phone, Reason
from timebank.hotline.models import CallKind, CheckMethod, ReturnVisitOutcome
from timebank.lib.masking import mask_phone
from timebank.needs.api import person_name
from timebank.needs.models import NeedLevel
from timebank.needs.schemas import ItemIds, LevelCode, PriorityOut

if TYPE_CHECKING:
    from timebank.hotline.models import CallLog, ReturnVisit, WelfareCheck

CallKindCode = CallKind


class NeedBrief(Schema):
    id: int
    level: str
    status: str
    notes: str
    created_at: dt.datetime


class OrderBrief(Schema):
    id: int
    state: str
    service_item_name: str
    scheduled_start: dt.datetime
    created_at: dt.datetime


class BalanceBrief(Schema):
    total_minutes: int
    buckets: dict[str, int]


class CallerOut(Schema):
    id: int
    name: str
    phone: str
    gender: str
    age: int | None
    home_org_id: int
    home_org_name: str
    status: str
    roles: list[str]
    recipient_categories: list[str]
    priority: PriorityOut
    open_needs: list[NeedBrief]
    recent_orders: list[OrderBrief]
    balance: BalanceBrief
    last_welfare_check_at: dt.datetime | None


class CallIn(Schema):
    kind: CallKindCode
    summary: Reason
    member_id: Id | None = Field(None, description="the caller, when known")
    phone: Phone = Field("", description="the number the caller gave or the screen showed")
    started_at: AwareDatetime | None = Field(None, description="default: now")
    ended_at: AwareDatetime | None = None
    order_id: Id | None = Field(None, description="the order this call produced")
    need_id: Id | None = None
    org_id: Id | None = Field(None, description="for an unknown caller: the org the call belongs to")


class CallPatch(Schema):
    summary: Reason | None = None
    ended_at: AwareDatetime | None = None
    order_id: Id | None = None
    need_id: Id | None = None


class CallOut(Schema):
    id: int
    org_id: int
    kind: str
    summary: str
    member_id: int | None
    member_name: str | None
    phone: str
    operator_id: int | None
    operator: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    order_id: int | None
    need_id: int | None
    created_at: dt.datetime

    # Read from the CallLog row (with its member and operator). Every answer masks the phone (mask_phone).
    @staticmethod
    def resolve_member_name(call: CallLog) -> str | None:
        return call.member.name if call.member else None

    @staticmethod
    def resolve_phone(call: CallLog) -> str:
        return mask_phone(call.phone)

    @staticmethod
    def resolve_operator(call: CallLog) -> str | None:
        return person_name(call.operator)


class DueVisitOut(Schema):
    order_id: int
    recipient_id: int
    recipient_name: str
    recipient_phone: str
    service_item_name: str
    volunteer_name: str | None
    state: str
    rating: int | None
    confirmed_at: dt.datetime
    due_since: dt.datetime
    attempts: int = Field(description="earlier calls that did not get through")
    last_attempt_at: dt.datetime | None


class ReturnVisitIn(Schema):
    order_id: Id
    outcome: ReturnVisitOutcome
    satisfaction: Annotated[int, Field(strict=True, ge=1, le=5)] | None = None
    note: Memo = ""


class ReturnVisitOut(Schema):
    id: int
    order_id: int
    outcome: str
    satisfaction: int | None
    note: str
    call_id: int | None
    created_by: str | None
    created_at: dt.datetime

    # Read from the ReturnVisit row (with created_by): the recorder's display name.
    @staticmethod
    def resolve_created_by(visit: ReturnVisit) -> str | None:
        return person_name(visit.created_by)


class DueCheckOut(Schema):
    member_id: int
    name: str
    phone: str
    home_org_id: int
    home_org_name: str
    recipient_categories: list[str]
    priority: PriorityOut
    last_checked_at: dt.datetime | None
    due_since: dt.datetime | None = Field(description="null: never checked")
    every_days: int


class NeedSpecIn(Schema):
    level: LevelCode = NeedLevel.GENERAL
    notes: Memo = ""
    item_ids: ItemIds = []


class WelfareCheckIn(Schema):
    member_id: Id
    method: CheckMethod
    found_ok: StrictBool
    health_changed: StrictBool = False
    note: Memo = ""
    checked_at: AwareDatetime | None = Field(None, description="default: now; at most 30 days ago")
    need: NeedSpecIn | None = Field(None, description="open a need in the same action (e.g. when health changed)")


class WelfareCheckOut(Schema):
    id: int
    member_id: int
    method: str
    found_ok: bool
    health_changed: bool
    note: str
    need_id: int | None
    call_id: int | None
    checked_at: dt.datetime
    created_by: str | None
    created_at: dt.datetime

    # Read from the WelfareCheck row (with created_by): the recorder's display name.
    @staticmethod
    def resolve_created_by(check: WelfareCheck) -> str | None:
        return person_name(check.created_by)
