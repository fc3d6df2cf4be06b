"""The demo generator: both banks, a ledger that verifies, and the same data for the same seed."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import transaction

from timebank.demo.generator import (
    BANK1,
    BANK2,
    DEMO_LOGINS,
    DemoDataExists,
    build_plan,
    generate,
)
from timebank.ledger.models import Account, Transaction
from timebank.ledger.verify import verify
from timebank.lib import idnumber
from timebank.members.models import Member, MemberStatus, RelativeLink
from timebank.orgs.models import Org, OrgKind, User

SIZE = 30


def snapshot() -> dict[str, Any]:
    """Everything that should repeat for the same seed; primary keys and timestamps left out."""
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
    txs = list(Transaction.objects.order_by("bank__name", "seq").values_list("bank__name", "kind", "minutes", "memo"))
    links = sorted(RelativeLink.objects.values_list("member__name", "relative__name", "relation"))
    return {"orgs": orgs, "members": members, "transactions": txs, "links": links}


def test_small_demo_builds_both_banks_and_verifies(db: None) -> None:
    result = generate(members=SIZE, seed=7)
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
    assert RelativeLink.objects.filter(member=recipient, relative=relative).exists()
    assert User.objects.get(username="staff").org == recipient.home_org

    # ID numbers are valid and agree with gender and birth date.
    for member in Member.objects.all():
        number = idnumber.normalise(member.id_number())
        assert idnumber.birth_date(number) == member.birth_date
        assert (int(number[16]) % 2 == 1) == (member.gender == "male")
    # Nobody is below the limit; goods never negative (verify checks too, but say it plainly).
    assert not Account.objects.filter(kind="goods", balance_minutes__lt=0).exists()

    with pytest.raises(DemoDataExists):
        generate(members=SIZE, seed=7)


def test_same_seed_same_data(db: None) -> None:
    assert build_plan(members=SIZE, seed=3) == build_plan(members=SIZE, seed=3)
    assert build_plan(members=SIZE, seed=3) != build_plan(members=SIZE, seed=4)
    snaps = []
    for seed in (3, 3, 4):
        with transaction.atomic():
            generate(members=SIZE, seed=seed)
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
    assert User.objects.get(username="root").is_superuser
    count = Member.objects.count()

    out = StringIO()
    call_command("seed_demo", members=SIZE, if_empty=True, stdout=out)
    assert "nothing to do" in out.getvalue()
    assert "nc_admin" in out.getvalue()
    assert Member.objects.count() == count
