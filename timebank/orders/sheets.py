"""A day's paper sign-in sheet (签到表, issue 13 "Paper mode"): the orders of one day dispatched to volunteers,
printed (exports/sheets.py) and, once filled by hand, entered back on one page (orders/views_sheets.py).

Every filled time goes through the paper-mode actions (orders.actions `do_accept`, `do_check_in`,
`do_check_out`, for the volunteer with source 纸质签到表), each with its own rules; `do_enter_sheet` runs them
in one transaction, so a sheet with one refused row writes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.lib.errors import ApiError, Forbidden, Invalid, NotFound
from timebank.orders.access import check_roles, visible_orders
from timebank.orders.actions import on_behalf_for
from timebank.orders.models import Order, OrderQuerySet, OrderState, PaperSource
from timebank.orders.paper import STEPS
from timebank.orders.rules import sources_of
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, Role, User
from timebank.orgs.scope import get_org

# The sheet's readers: staff and operators of a subtree (the staff order list's readers).
SHEET_ROLES = frozenset(MANAGING_ROLES | {Role.OPERATOR})
# The steps in the order they happen, each with the sheet's column (a form field's suffix).
COLUMNS = (("accept", "accept"), ("check-in", "check_in"), ("check-out", "check_out"))
# Orders whose volunteer still has a step of the sheet to take, read from the transition table.
OPEN_STEP_STATES = tuple(dict.fromkeys(state for step, _column in COLUMNS for state in sources_of(step)))
MAX_ROWS = 500


def check_sheet_reader(user: User, org_id: str = "") -> Org | None:
    """Staff and operators only (a member's orders are not a sheet); an `org` inside the caller's subtree
    (another subtree's: 403; an unknown one: 404)."""
    if not user.is_superuser and (staff_scope(user) is None or user.role not in SHEET_ROLES):
        raise Forbidden(_("签到表只给社区工作人员和热线坐席使用。"), code="not_allowed")
    raw = org_id.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Invalid(_("机构编号不对。"), code="invalid_org", fields={"org": "invalid"})
    org = get_org(int(raw))
    if not has_role(user, SHEET_ROLES, org):
        raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")
    return org


def parse_day(raw: str) -> dt.date:
    """The URL's YYYY-MM-DD; a date that does not exist is 404."""
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise NotFound(_("日期格式应为 YYYY-MM-DD。"), code="invalid_date") from None


def day_orders(user: User, day: dt.date, org: Org | None = None) -> OrderQuerySet:
    """The orders of `day` dispatched to a volunteer, in the caller's subtree (`visible_orders`), not cancelled."""
    start, end = clock.day_bounds(day, day)  # the sheet's day is Asia/Shanghai's
    orders = (
        visible_orders(user)
        .filter(scheduled_start__gte=start, scheduled_start__lt=end, volunteer__isnull=False)
        .exclude(state=OrderState.CANCELLED)
        .select_related("org", "recipient", "volunteer", "service_item")
        .order_by("scheduled_start", "pk")
    )
    if org is not None:
        orders = orders.filter(org__path__startswith=org.path)
    return orders


def at_on(day: dt.date, hour: dt.time) -> dt.datetime:
    """HH:MM written on the sheet, on its day, in Asia/Shanghai."""
    return dt.datetime.combine(day, hour.replace(second=0, microsecond=0), tzinfo=timezone.get_default_timezone())


@dataclass(frozen=True)
class SheetRow:
    order: Order
    times: tuple[tuple[str, dt.datetime], ...]  # (action, when), in COLUMNS order


class SheetRefused(Exception):
    """Rows the actions refused: row key (an order id, a member id) -> (the action, its refusal). Raised out of the
    transaction, so the sheet's other rows are rolled back too."""

    def __init__(self, errors: dict[int, tuple[str, ApiError]]) -> None:
        super().__init__(f"{len(errors)} rows refused")
        self.errors = errors


Row = TypeVar("Row")
Done = TypeVar("Done")


class SheetStep:
    """The action a row is at, so that its refusal names it (a row of several steps sets it before each one)."""

    def __init__(self, action: str) -> None:
        self.action = action


def enter_rows(
    rows: Iterable[Row], key: Callable[[Row], int], enter: Callable[[Row, SheetStep], Done], *, action: str = ""
) -> list[Done]:
    """A paper sheet's rows, all or nothing, inside the caller's transaction: every row is tried in its own
    savepoint, in key order (two sheets entered at once lock their rows in the same order), so that the page can
    show every refusal at once; any refusal raises `SheetRefused` (by key, with the row's action), which rolls the
    whole sheet back. `enter(row, step)` writes one row through the actions and answers what it wrote."""
    errors: dict[int, tuple[str, ApiError]] = {}
    done: list[Done] = []
    for row in sorted(rows, key=key):
        step = SheetStep(action)
        try:
            with transaction.atomic():
                done.append(enter(row, step))
        except ApiError as exc:
            errors[key(row)] = (step.action, exc)
    if errors:
        raise SheetRefused(errors)
    return done


@transaction.atomic
def do_enter_sheet(actor: User, rows: list[SheetRow]) -> list[Order]:
    """Enter a filled sheet: each row's steps through the paper-mode actions for the volunteer (source 纸质签到表),
    all or nothing (`enter_rows`: every row tried, in order id order, any refusal rolls the sheet back)."""

    def enter(row: SheetRow, step: SheetStep) -> Order:
        order = row.order
        for action, at in row.times:
            step.action = action
            roles = check_roles(actor, order, action)
            on_behalf = on_behalf_for(action, roles, at, PaperSource.PAPER_SHEET)
            order = STEPS[action].act(actor, order, on_behalf=on_behalf)
        return order

    return enter_rows(rows, lambda r: r.order.pk, enter)
