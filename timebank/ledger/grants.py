"""Yearly grants of time (每年赠与时间; Nanjing grants time to people over 80 living alone): a head office's
`yearly_grant_minutes` go once a year into the stored time (`reserve`) of each active recipient who matches its
`yearly_grant_categories` (any one of them) and `yearly_grant_min_age` (reached by 1 January of that year).
With neither condition set nobody is granted: an empty choice never means "everyone".

Posted by a scheduled job (`manage.py yearly_grants`, or the django-tasks task `timebank.ledger.tasks.yearly_grants`),
each grant through `post_adjustment` with the system key `yearly-grant:<year>:<member>`: the job may run any
number of times in a year (and two at once) and each member is granted once. The storage cap applies to a grant
as to any credit."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from timebank.ledger.actions import post_adjustment
from timebank.ledger.models import AccountKind, Transaction
from timebank.lib import clock
from timebank.members.models import Member, MemberStatus
from timebank.ops.idempotency import KeyBusy, KeyReused, scope_of
from timebank.orgs.models import Rules

KEY_PREFIX = "yearly-grant:"


def grant_key(year: int, member_id: int) -> str:
    return f"{KEY_PREFIX}{year}:{member_id}"


def grant_memo(year: int) -> str:
    return f"{year} 年度赠与时间（总行规则）"


def eligible(rules: Rules, year: int) -> list[Member]:
    """The bank's active recipients the rules grant time to in `year`."""
    categories = set(rules.yearly_grant_categories or [])
    min_age = rules.yearly_grant_min_age
    if rules.yearly_grant_minutes is None or (not categories and min_age is None):
        return []
    qs = Member.objects.filter(bank_id=rules.head_office_id, status=MemberStatus.ACTIVE, is_recipient=True)
    if min_age is not None:
        # Reached `min_age` by 1 January: born on or before 1 January, `min_age` years earlier.
        qs = qs.filter(birth_date__lte=dt.date(year - min_age, 1, 1))
    members = list(qs.order_by("pk"))
    if categories:
        # A JSON list: filtered here, the same on SQLite and PostgreSQL.
        members = [m for m in members if categories & set(m.recipient_categories or [])]
    return members


@dataclass
class GrantReport:
    year: int
    granted: list[int] = field(default_factory=list)  # member ids granted by this run
    already: int = 0  # granted earlier this year
    minutes: int = 0


def run_yearly_grants(year: int | None = None, *, bank_id: int | None = None) -> GrantReport:
    """Grant this year's time (or `year`'s) in every bank whose rules grant it (or only `bank_id`)."""
    year = year or clock.localdate().year
    report = GrantReport(year)
    banks = Rules.objects.filter(yearly_grant_minutes__isnull=False)
    if bank_id is not None:
        banks = banks.filter(head_office_id=bank_id)
    for rules in banks.order_by("head_office_id"):
        members = eligible(rules, year)
        done = set(
            Transaction.objects.filter(
                idem_scope=scope_of(None), idempotency_key__in=[grant_key(year, m.pk) for m in members]
            ).values_list("idempotency_key", flat=True)
        )
        for member in members:
            key = grant_key(year, member.pk)
            if key in done:
                report.already += 1
                continue
            minutes = rules.yearly_grant_minutes
            assert minutes is not None
            try:
                _tx, replayed = post_adjustment(
                    None,
                    member=member,
                    minutes=minutes,
                    bucket=AccountKind.RESERVE,
                    reason=grant_memo(year),
                    idempotency_key=key,
                )
            except (KeyReused, KeyBusy):  # granted meanwhile (by a run with other rules) or being granted now
                report.already += 1
                continue
            if replayed:  # a parallel run granted it first
                report.already += 1
            else:
                report.granted.append(member.pk)
                report.minutes += minutes
    return report
