"""The schemas of the needs API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, Literal

from ninja import Schema
from pydantic import Field

from timebank.api.types import Id, IdempotencyKey, Memo, Reason
from timebank.lib.masking import mask_phone
from timebank.needs import actions
from timebank.needs.models import FoundBy, NeedFollowUp, NeedLevel

if TYPE_CHECKING:
    from timebank.catalogue.models import ServiceItem
    from timebank.needs.models import Need
    from timebank.orgs.models import User

LevelCode = NeedLevel
FoundByCode = FoundBy

ItemIds = Annotated[list[Id], Field(max_length=actions.MAX_ITEMS)]


def person_name(user: User | None) -> str | None:
    return (user.display_name or user.username) if user is not None else None


class PriorityOut(Schema):
    rank: int = Field(description="1 is served first: 1 the seed's five groups, 2 living alone or advanced age")
    label: str
    reasons: list[str]
    reason_labels: list[str]


class RecipientOut(Schema):
    id: int
    name: str
    phone: str
    gender: str
    birth_date: dt.date | None
    age: int | None
    home_org_id: int
    home_org_name: str
    status: str
    recipient_categories: list[str]
    priority: PriorityOut
    open_needs: int


class ItemRef(Schema):
    id: int
    name: str


class FollowUpOut(Schema):
    id: int
    note: str
    from_status: str
    to_status: str
    created_by: str | None
    created_at: dt.datetime

    @staticmethod
    def resolve_created_by(follow_up: NeedFollowUp) -> str | None:
        return person_name(follow_up.created_by)


class NeedOut(Schema):
    id: int
    recipient_id: int
    recipient_name: str
    recipient_phone: str
    home_org_id: int
    level: str
    found_by: str
    status: str
    item_ids: list[int]
    items: list[ItemRef]
    notes: str
    order_ids: list[int]
    census_import_id: int | None
    created_by: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    met_at: dt.datetime | None
    closed_at: dt.datetime | None
    close_reason: str

    # Read from the Need row with its recipient and who opened it, its items and its orders prefetched (the orders in
    # id order). The recipient's phone is masked; items are listed in id order.
    @staticmethod
    def resolve_recipient_name(need: Need) -> str:
        return need.recipient.name

    @staticmethod
    def resolve_recipient_phone(need: Need) -> str:
        return mask_phone(need.recipient.phone)

    @staticmethod
    def resolve_home_org_id(need: Need) -> int:
        return need.recipient.home_org_id

    @staticmethod
    def resolve_item_ids(need: Need) -> list[int]:
        return [i.pk for i in _items(need)]

    @staticmethod
    def resolve_items(need: Need) -> list[ServiceItem]:
        return _items(need)

    @staticmethod
    def resolve_order_ids(need: Need) -> list[int]:
        return [o.pk for o in need.orders.all()]

    @staticmethod
    def resolve_created_by(need: Need) -> str | None:
        return person_name(need.created_by)


def _items(need: Need) -> list[ServiceItem]:
    return sorted(need.items.all(), key=lambda i: i.pk)


class NeedDetailOut(NeedOut):
    follow_ups: list[FollowUpOut]

    @staticmethod
    def resolve_follow_ups(need: Need) -> list[NeedFollowUp]:
        return list(NeedFollowUp.objects.filter(need=need).select_related("created_by").order_by("pk"))


class NeedIn(Schema):
    recipient_id: Id
    level: LevelCode = NeedLevel.GENERAL
    found_by: FoundByCode
    item_ids: ItemIds = []
    notes: Memo = ""


class NeedPatch(Schema):
    level: LevelCode | None = None
    item_ids: ItemIds | None = None
    notes: Memo | None = None
    status: Literal["in_progress", "met"] | None = None


class FollowUpIn(Schema):
    note: Reason
    status: Literal["in_progress", "met"] | None = None


class CloseIn(Schema):
    reason: Reason


class LinkOrderIn(Schema):
    order_id: Id


class ReasonOut(Schema):
    code: str
    message: str
    params: dict[str, Any] | None = None


class ImportRowOut(Schema):
    row: int
    status: str = Field(description="accepted | rejected (dry run); written | failed (after confirmation)")
    name: str
    id_number_masked: str
    community: str
    reasons: list[ReasonOut]
    warnings: list[ReasonOut]
    member_id: int | None = None
    need_id: int | None = None


class ImportCountsOut(Schema):
    rows: int
    accepted: int
    rejected: int
    empty_rows: int
    written: int | None = None
    failed: int | None = None


class CensusImportOut(Schema):
    id: int
    org_id: int
    filename: str
    status: str = Field(description="dry_run | confirming | confirmed")
    processed_rows: int = Field(
        description="accepted rows confirmation has worked through; an interrupted confirmation resumes from here"
    )
    counts: ImportCountsOut
    columns: dict[str, str]
    ignored_columns: list[str]
    rows: list[ImportRowOut]
    created_by: str | None
    created_at: dt.datetime
    confirmed_at: dt.datetime | None


# ---- 工作交接 (a staff login's open work and its hand-over) -----------------------------------------------------


class HandoverOrderOut(Schema):
    id: int
    state: str
    org_id: int
    service_item: str
    scheduled_start: dt.datetime


class HandoverNeedOut(Schema):
    id: int
    status: str
    level: str
    recipient_id: int
    home_org_id: int


class HandoverTargetOut(Schema):
    id: int
    username: str
    name: str
    org_id: int
    role: str


class StaffOpenWorkOut(Schema):
    staff_id: int
    orders: list[HandoverOrderOut] = Field(description="open orders the login follows (at most 200, soonest first)")
    needs: list[HandoverNeedOut] = Field(description="open needs the login follows (at most 200, oldest first)")
    order_count: int = Field(description="open orders the login follows within the caller's reach")
    need_count: int = Field(description="open needs the login follows within the caller's reach")
    orders_out_of_reach: int = Field(
        description="open orders the login follows outside the caller's subtree: counted, never listed"
    )
    needs_out_of_reach: int = Field(
        description="open needs the login follows outside the caller's subtree: counted, never listed"
    )
    targets: list[HandoverTargetOut] = Field(
        description="the staff logins of the caller's subtree who may take the work over (at most 500)"
    )


class HandoverIn(Schema):
    to_staff_id: Id
    idempotency_key: IdempotencyKey | None = None


class HandoverOut(Schema):
    from_staff_id: int
    to_staff_id: int
    order_ids: list[int]
    need_ids: list[int]
