"""The schemas of the reports API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from ninja import Schema


class StatsOut(Schema):
    org_id: int
    date_from: dt.date | None
    date_to: dt.date | None
    members: int
    volunteers: int
    recipients: int
    referred_members: int
    new_members: int
    referred_volunteers: int
    orders_completed: int
    services_completed: int
    service_minutes: int
    credited_minutes: int
    service_records: int
    ledger_transactions: int
    outstanding_minutes: int


class ProjectionOut(Schema):
    years: int
    reaching_age: int
    newly_reaching: int
    new_volunteers: int
    alert: bool


class MonthRateOut(Schema):
    month: str
    orders: int
    unfilled: int
    percent: Decimal | None


class AlertOut(Schema):
    code: str
    message: str


class RiskOut(Schema):
    org_id: int
    org_name: str
    today: dt.date
    window_months: int
    earned_minutes: int
    goods_minutes: int
    reserve_minutes: int
    outstanding_minutes: int
    window_credited_minutes: int
    capacity_minutes_per_month: Decimal
    months_to_honour: Decimal | None
    reserve_age: int
    volunteers: int
    volunteers_unknown_age: int
    at_age_now: int
    joined_in_window: int
    new_volunteers_per_year: Decimal
    age_bands: list[dict[str, Any]]
    projections: list[ProjectionOut]
    months: list[MonthRateOut]
    window_orders: int
    window_unfilled: int
    unfilled_percent: Decimal | None
    unfilled_trend_points: Decimal | None
    max_months_to_honour: int
    max_unfilled_percent: int
    max_ageing_percent: int
    alerts: list[AlertOut]


class AnomalyOut(Schema):
    kind: str
    member_id: int
    minutes: int
    limit_minutes: int
    day: dt.date | None
    year: int | None
    service_record_id: int | None


class AnomaliesOut(Schema):
    org_id: int
    date_from: dt.date
    date_to: dt.date
    items: list[AnomalyOut]
