"""The schemas of the approvals API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Schema

from timebank.api.types import Reason


class PendingApprovalOut(Schema):
    """The 202 answer of a credit that waits for approval."""

    approval_id: int
    state: str
    kind: str
    member_id: int
    minutes: int


class ApprovalOut(Schema):
    id: int
    approval_id: int
    kind: str
    state: str
    member_id: int
    member_name: str
    org_id: int
    minutes: int
    payload: dict[str, Any]
    maker_id: int | None
    decided_by_id: int | None
    decided_at: dt.datetime | None
    reason: str
    transaction_id: int | None
    created_at: dt.datetime


class ApprovalsDecisionOut(Schema):
    approval_id: int
    state: str
    transaction_id: int | None


class RejectIn(Schema):
    reason: Reason
