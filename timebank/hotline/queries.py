"""What the 12349 desk reads: callers by name or number, and the two queues of calls to make.

Shared by the API (timebank/hotline/api.py) and the operator console (timebank/hotline/views.py),
so both show the same people in the same order.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, Count, Exists, IntegerField, Max, OuterRef, Q, QuerySet, Value, When

from timebank.hotline.access import desk_scope
from timebank.hotline.models import ReturnVisit, ReturnVisitOutcome
from timebank.lib import clock, crypto, idnumber
from timebank.members.models import Member, MemberStatus
from timebank.needs.priority import Priority, priority
from timebank.orders.models import Order
from timebank.orgs.models import Org, Rules, User

LOOKUP_LIMIT = 20


def in_scope(qs: QuerySet[Any], scope: Org | None, path_field: str) -> QuerySet[Any]:
    return qs if scope is None else qs.filter(**{f"{path_field}__startswith": scope.path})


def lookup_filter(text: str) -> Q:
    cond = Q(name__contains=text)
    digits = re.sub(r"[\s\-]", "", text)
    if digits.isdigit() and len(digits) >= 3:
        cond |= Q(phone__contains=digits)
    try:
        number = idnumber.normalise(text)
    except idnumber.IdNumberError:
        pass
    else:
        cond |= Q(id_number_hash=crypto.keyed_hash(number, scope="id_number"))
    return cond


def find_callers(user: User, text: str, limit: int = LOOKUP_LIMIT) -> list[Member]:
    """Members of the desk's subtree (not those who left) by name, phone (3 digits or more) or full ID number.
    The exact phone or name comes first: the caller is usually the one whose number the screen shows."""
    scope = desk_scope(user)
    qs = in_scope(Member.objects.exclude(status=MemberStatus.LEFT), scope, "home_org__path")
    found = list(qs.filter(lookup_filter(text)).select_related("home_org").order_by("pk")[: limit * 3])
    digits = re.sub(r"[\s\-]", "", text)
    found.sort(key=lambda m: (m.phone != digits, m.name != text, m.pk))
    return found[:limit]


def id_number_holder(bank_id: int, number: str) -> Member | None:
    """The member of this bank (one bank only: another bank's people are never looked at) who gave this ID number,
    whatever their status: an accepted member first, then the earliest pending registration."""
    if not number:
        return None
    pending_last = Case(When(status=MemberStatus.PENDING, then=Value(1)), default=Value(0), output_field=IntegerField())
    return (
        Member.objects.filter(bank_id=bank_id, id_number_hash=crypto.keyed_hash(number, scope="id_number"))
        .select_related("home_org")
        .order_by(pending_last, "pk")
        .first()
    )


def _rules(scope: Org | None) -> list[Rules]:
    qs = Rules.objects.all()
    return list(qs if scope is None else qs.filter(head_office_id=scope.head_office_id))


def return_visit_days(user: User) -> dict[int, int]:
    """Per bank of the desk: how many days after confirmation a return visit falls due."""
    return {r.head_office_id: r.return_visit_after_days for r in _rules(desk_scope(user))}


def due_return_visits(user: User, after: dict[int, int] | None = None) -> QuerySet[Any]:
    """满意度回访 queue: confirmed or reviewed orders of the desk's subtree, `return_visit_after_days` after
    confirmation, until a visit is recorded (one that did not get through keeps the order here).
    Orders annotated with `attempts` and `last_attempt_at` (hence `Any`: the stubs lose annotations here)."""
    scope = desk_scope(user)
    after = return_visit_days(user) if after is None else after
    now = clock.now()
    due = Q(pk__in=[])
    for bank_id, days in after.items():
        due |= Q(bank_id=bank_id, confirmed_at__lte=now - dt.timedelta(days=days))
    final = ReturnVisit.objects.filter(order=OuterRef("pk")).exclude(outcome=ReturnVisitOutcome.NOT_REACHED)
    return (
        in_scope(Order.objects.credited(), scope, "org__path")
        .filter(due)
        .filter(~Exists(final))
        .annotate(attempts=Count("return_visits"), last_attempt_at=Max("return_visits__created_at"))
        .select_related("recipient", "service_item", "volunteer")
    )


@dataclass(frozen=True)
class DueCheck:
    """One recipient waiting for a welfare check, with the key the queue is sorted (and paged) by."""

    key: tuple[int, int, int, int]
    member_id: int
    last_checked_at: dt.datetime | None
    priority: Priority
    every_days: int

    @property
    def due_since(self) -> dt.datetime | None:
        return self.last_checked_at + dt.timedelta(days=self.every_days) if self.last_checked_at else None


def due_welfare_checks(user: User, *, org: Org | None = None, category: str | None = None) -> list[DueCheck]:
    """定期巡访 due: active recipients of the desk's subtree (or of `org`'s) in the rules'
    `welfare_check_categories` whose last check is older than `welfare_check_every_days`, or who were never
    checked. Never checked first, then the longest waiting; within that, served-first priority."""
    scope = desk_scope(user)
    qs = in_scope(Member.objects.filter(is_recipient=True, status=MemberStatus.ACTIVE), scope, "home_org__path")
    if org is not None:
        qs = qs.filter(home_org__path__startswith=org.path)
    rules = {r.head_office_id: r for r in _rules(scope)}
    now = clock.now()
    today = clock.localdate()
    ranked = []
    rows = qs.annotate(last=Max("welfare_checks__checked_at")).values_list(
        "pk", "bank_id", "birth_date", "recipient_categories", "last"
    )
    for pk, bank_id, born, cats, last in rows:
        rule = rules.get(bank_id)
        cats = cats if isinstance(cats, list) else []
        if rule is None or not set(cats) & set(rule.welfare_check_categories or []):
            continue
        if category and category not in cats:
            continue
        every = dt.timedelta(days=rule.welfare_check_every_days)
        if last is not None and last > now - every:
            continue
        p = priority(born, cats, today)
        key = (0, 0, p.rank, pk) if last is None else (1, int(last.timestamp()), p.rank, pk)
        ranked.append(DueCheck(key, pk, last, p, rule.welfare_check_every_days))
    ranked.sort(key=lambda r: r.key)
    return ranked
