"""The demo generator: both banks, every capability with data in it, a ledger that verifies, and the same data
for the same seed."""

from __future__ import annotations

import datetime as dt
import re
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from timebank.demo.generator import (
    BANK1,
    BANK2,
    DEMO_LOGINS,
    MIN_MEMBERS,
    DemoDataExists,
    build_plan,
    generate,
)
from timebank.funds.disclosure import Period, disclose
from timebank.funds.models import FundEntry
from timebank.goods.models import Goods, Redemption, StockMovement
from timebank.hotline.models import CallLog, ReturnVisit, WelfareCheck
from timebank.ledger.models import Account, Settlement, Transaction, TransactionKind
from timebank.ledger.verify import verify
from timebank.lib import idnumber
from timebank.members.models import Certificate, InsurancePolicy, Member, MemberStatus, RelativeLink
from timebank.needs.models import Need
from timebank.notify.models import Notification
from timebank.orders.models import Order, OrderState, ServiceRecord
from timebank.orgs.models import Org, OrgKind, User
from timebank.safety.models import IncidentReport, TrainingAttendance

SIZE = 30


def _no_pk(text: str) -> str:
    # Memos and descriptions name orders by primary key, which PostgreSQL does not reuse after a rollback.
    return re.sub(r"#\d+", "#", text)


def snapshot() -> dict[str, Any]:
    """Everything that should repeat for the same seed; primary keys, codes and timestamps left out."""
    orgs = sorted((o.name, o.kind, o.parent.name if o.parent else "") for o in Org.objects.select_related("parent"))
    members = sorted(
        (
            m.home_org.name,
            m.name,
            m.phone,
            str(m.birth_date),
            m.gender,
            m.id_number(),
            m.address,
            str(m.latitude),
            m.roles,
            m.recipient_categories,
            m.skills,
            m.occupation,
            m.willing_services,
            m.availability,
            m.status,
            m.referred_by.id_number() if m.referred_by else "",
            m.user.username if m.user else "",
            sorted((a.kind, a.balance_minutes) for a in m.accounts.all()),
        )
        for m in Member.objects.select_related("home_org", "referred_by", "user").prefetch_related("accounts")
    )
    txs = [
        (bank, kind, minutes, _no_pk(memo))
        for bank, kind, minutes, memo in Transaction.objects.order_by("bank__name", "seq").values_list(
            "bank__name", "kind", "minutes", "memo"
        )
    ]
    links = sorted(RelativeLink.objects.values_list("member__name", "relative__name", "relation"))
    orders = sorted(
        Order.objects.values_list(
            "recipient__name",
            "service_item__name",
            "state",
            "volunteer__name",
            "payer",
            "channel",
            "urgent",
            "planned_minutes",
            "actual_minutes",
            "credited_minutes",
            "rating",
            "review_comment",
            "cancel_reason",
            "dispute_reason",
            "notes",
        ),
        key=repr,
    )
    needs = sorted(Need.objects.values_list("recipient__name", "level", "found_by", "status", "notes"))
    calls = sorted(CallLog.objects.values_list("kind", "member__name", "summary"), key=repr)
    records = sorted(ServiceRecord.objects.values_list("volunteer__name", "service_item__name", "minutes", "memo"))
    goods = sorted(Goods.objects.values_list("outlet__name", "name", "price_minutes", "stock"))
    redemptions = sorted(Redemption.objects.values_list("member__name", "goods__name", "quantity", "status"))
    money = sorted(
        (org, direction, category, str(amount), _no_pk(description))
        for org, direction, category, amount, description in FundEntry.objects.values_list(
            "org__name", "direction", "source", "amount", "description"
        )
    )
    safety = (
        sorted(InsurancePolicy.objects.values_list("member__name", "insurer", "policy_number", "ends_on")),
        sorted(Certificate.objects.values_list("member__name", "kind", "issuer", "valid_until"), key=repr),
        sorted(TrainingAttendance.objects.values_list("member__name", "attended", "assessment", "score"), key=repr),
    )
    return {
        "orgs": orgs,
        "members": members,
        "transactions": txs,
        "links": links,
        "orders": orders,
        "needs": needs,
        "calls": calls,
        "records": records,
        "goods": goods,
        "redemptions": redemptions,
        "money": money,
        "safety": safety,
    }


def overdue() -> list[Order]:
    """Requested orders not dispatched within the default 24 hours."""
    return list(
        Order.objects.filter(state=OrderState.REQUESTED, created_at__lt=timezone.now() - dt.timedelta(hours=24))
    )


def test_small_demo_builds_both_banks_and_verifies(db: None, django_capture_on_commit_callbacks: Any) -> None:
    # The order transitions queue notifications after the commit: run them, as `seed_demo` does.
    djangos_clock = timezone.now
    with django_capture_on_commit_callbacks(execute=True):
        result = generate(members=SIZE, seed=7)
    assert timezone.now is djangos_clock  # the demo ran on its own clock without patching Django's (issue 15)
    assert [b.name for b in result.banks] == [BANK1, BANK2]
    assert set(Org.objects.filter(kind=OrgKind.HEAD_OFFICE).values_list("name", flat=True)) == {BANK1, BANK2}
    assert Org.objects.filter(head_office__name=BANK1, kind=OrgKind.BRANCH).count() == 6
    assert Org.objects.filter(head_office__name=BANK2, kind=OrgKind.OUTLET).count() == 1
    assert Member.objects.count() == SIZE == result.members
    assert Member.objects.filter(status=MemberStatus.PENDING).count() == result.pending > 0
    assert result.transactions == Transaction.objects.count() > 0

    report = verify()
    assert report.ok, report.problems

    # Every demo login but the superuser (seed_demo's) exists, and only they have usable passwords.
    usernames = {x.username for x in result.logins}
    assert usernames == {x.username for x in DEMO_LOGINS} - {"root"}
    assert set(User.objects.values_list("username", flat=True)) == usernames
    recipient = Member.objects.get(user__username="recipient")
    relative = Member.objects.get(user__username="relative")
    volunteer = Member.objects.get(user__username="volunteer")
    assert RelativeLink.objects.filter(member=recipient, relative=relative).exists()
    staff = User.objects.get(username="staff")
    assert staff.org == recipient.home_org

    # ID numbers are valid and agree with gender and birth date.
    for member in Member.objects.all():
        number = idnumber.normalise(member.id_number())
        assert idnumber.birth_date(number) == member.birth_date
        assert (int(number[16]) % 2 == 1) == (member.gender == "male")
    # Nobody is below the limit; goods never negative (verify checks too, but say it plainly).
    assert not Account.objects.filter(kind="goods", balance_minutes__lt=0).exists()

    # Orders in every state, by every channel and payer.
    assert set(Order.objects.values_list("state", flat=True)) == set(OrderState.values)
    assert set(Order.objects.values_list("channel", flat=True)) == {"app", "hotline", "visit", "staff"}
    assert set(Order.objects.values_list("payer", flat=True)) == {"recipient", "subsidy", "pool"}
    assert Order.objects.filter(urgent=True).exists()
    assert Order.objects.exclude(rating=None).exists()
    assert Order.objects.exclude(cancel_reason="").exists()
    assert Order.objects.filter(state=OrderState.CONFIRMED, volunteer=None).exists()  # bought by the emergency fund

    # Each demo login has something to do.
    assert Order.objects.filter(volunteer=volunteer, state=OrderState.DISPATCHED).exists()
    assert Order.objects.filter(volunteer=volunteer, state=OrderState.ACCEPTED).exists()
    assert Order.objects.filter(recipient=recipient, state=OrderState.COMPLETED).exists()
    assert Order.objects.filter(volunteer=relative, state=OrderState.ACCEPTED).exists()
    shunhe = recipient.home_org.path
    assert any(o.org.path.startswith(shunhe) for o in overdue())
    assert Order.objects.filter(state=OrderState.DISPUTED, org__path__startswith=shunhe).exists()
    assert Notification.objects.filter(member=volunteer, template="order.dispatched").exists()
    assert Notification.objects.filter(user__username="operator", template="order.urgent").exists()

    # Group activities are real service records, never bare deposits.
    assert ServiceRecord.objects.filter(recipient=None).exists()
    assert ServiceRecord.objects.count() == Transaction.objects.filter(kind=TransactionKind.SERVICE_RECORD).count()

    # A past settlement moved earned time into goods and reserve; goods were redeemed after it.
    settlement = Settlement.objects.get(head_office__name=BANK1)
    assert settlement.status == "done" and settlement.moved_minutes > 0
    assert settlement.period_end < timezone.localdate()
    assert {"issued", "handed_over"} <= set(Redemption.objects.values_list("status", flat=True))
    assert {"restock", "count", "redemption"} <= set(StockMovement.objects.values_list("kind", flat=True))

    # Safety: a group policy, policies and certificates ending within 30 days, training with assessments.
    soon = timezone.localdate() + dt.timedelta(days=30)
    assert InsurancePolicy.objects.values("policy_number").distinct().count() < InsurancePolicy.objects.count()
    assert InsurancePolicy.objects.filter(ends_on__lte=soon, ends_on__gte=timezone.localdate()).exists()
    assert Certificate.objects.filter(valid_until__lte=soon).exists()
    assert TrainingAttendance.objects.filter(assessment="passed", certificate__isnull=False).exists()
    assert TrainingAttendance.objects.filter(assessment="failed").exists()
    assert IncidentReport.objects.exists()

    # Needs, calls of every kind, return visits and welfare checks.
    assert {"open", "met"} <= set(Need.objects.values_list("status", flat=True))
    assert {"census", "home_visit"} <= set(Need.objects.values_list("found_by", flat=True))
    kinds = {"order", "legal_advice", "psychological_advice", "complaint", "return_visit", "welfare_check", "other"}
    assert set(CallLog.objects.values_list("kind", flat=True)) == kinds
    assert ReturnVisit.objects.filter(outcome="reached").exists()
    assert WelfareCheck.objects.exists()

    # Money from all four sources and spent on every kind: the public disclosure shows real numbers.
    bank = Org.objects.get(name=BANK1)
    disclosure = disclose(bank, Period())
    assert all(s["total"] > 0 for s in disclosure["income"]["by_source"])
    assert all(k["amount"] > 0 for k in disclosure["expense"]["by_kind"])
    assert disclosure["donors"] and disclosure["services"]["credited_minutes"] > 0
    assert FundEntry.objects.filter(in_kind=True, goods__isnull=False).exists()

    with pytest.raises(DemoDataExists):
        generate(members=SIZE, seed=7)


def test_the_smallest_demo_still_has_every_order_state(db: None) -> None:
    generate(members=MIN_MEMBERS, seed=1)
    assert set(Order.objects.values_list("state", flat=True)) == set(OrderState.values)
    report = verify()
    assert report.ok, report.problems


def test_same_seed_same_data(db: None) -> None:
    size = 16
    assert build_plan(members=size, seed=3) == build_plan(members=size, seed=3)
    assert build_plan(members=size, seed=3) != build_plan(members=size, seed=4)
    snaps = []
    for seed in (3, 3, 4):
        with transaction.atomic():
            generate(members=size, seed=seed)
            snaps.append(snapshot())
            transaction.set_rollback(True)
    assert snaps[0] == snaps[1]
    assert snaps[0] != snaps[2]


def test_seed_demo_command_and_if_empty(db: None) -> None:
    out = StringIO()
    call_command("seed_demo", members=SIZE, seed=1, stdout=out)
    text = out.getvalue()
    assert "demo12345" in text
    assert "ho_admin" in text
    assert "订单" in text
    assert User.objects.get(username="root").is_superuser
    count = Member.objects.count()

    out = StringIO()
    call_command("seed_demo", members=SIZE, if_empty=True, stdout=out)
    assert "nothing to do" in out.getvalue()
    assert "nc_admin" in out.getvalue()
    assert Member.objects.count() == count
