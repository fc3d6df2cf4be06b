"""Moving to another bank on the same deployment: credits follow, both head offices approve, verify stays clean."""

from __future__ import annotations

from django.db.models import Sum

from tests.conftest import World, error_code
from timebank.ledger import actions
from timebank.ledger.models import Account, InterBankMove
from timebank.ledger.verify import verify
from timebank.members.models import Member


def member_credits() -> int:
    return Account.objects.filter(member__isnull=False).aggregate(s=Sum("balance_minutes"))["s"] or 0


def test_an_interbank_move_keeps_every_minute(world: World) -> None:
    volunteer = world.members["volunteer"]
    actions.do_adjustment(None, member=volunteer, minutes=200, bucket="reserve", reason="开户")
    actions.do_adjustment(None, member=volunteer, minutes=50, bucket="goods", reason="开户")
    actions.do_deposit(None, volunteer=volunteer, minutes=30, payer="subsidy")
    before = member_credits()
    resp = world.api("volunteer").post(
        "/api/v1/interbank-moves", {"member_id": volunteer.pk, "to_org_id": world.other_community.pk}
    )
    assert resp.status_code == 201, resp.content
    move_id = resp.json()["id"]
    # Staff below the head office cannot approve; each head office approves for its side.
    assert world.api("staff").post(f"/api/v1/interbank-moves/{move_id}/approve").status_code == 403
    first = world.api("head_office_admin").post(f"/api/v1/interbank-moves/{move_id}/approve")
    assert first.json()["status"] == "requested" and first.json()["source_approved"]
    again = world.api("head_office_admin").post(f"/api/v1/interbank-moves/{move_id}/approve")
    assert again.status_code == 409 and error_code(again) == "already_approved"
    done = world.api("other_bank_admin").post(f"/api/v1/interbank-moves/{move_id}/approve")
    assert done.status_code == 200 and done.json()["status"] == "completed"
    new_id = done.json()["new_member_id"]
    assert member_credits() == before
    new = Member.objects.get(pk=new_id)
    assert new.bank_id == world.other_bank.pk and new.user_id == world.users["volunteer"].pk
    assert dict(Account.objects.filter(member=new).values_list("kind", "balance_minutes")) == {
        "earned": 30,
        "goods": 50,
        "reserve": 200,
    }
    assert Member.objects.get(pk=volunteer.pk).status == "left"
    # The volunteer's login now sees their balance in the new bank.
    assert world.api("volunteer").get(f"/api/v1/members/{new_id}/balance").json()["total_minutes"] == 280
    report = verify()
    assert report.ok, report.problems
    # The clearing accounts mirror each other.
    clearing = dict(Account.objects.filter(kind="clearing").values_list("bank_id", "balance_minutes"))
    assert clearing[world.bank.pk] == 280 and clearing[world.other_bank.pk] == -280


def test_a_move_within_the_same_bank_is_not_interbank(world: World) -> None:
    resp = world.api("staff").post(
        "/api/v1/interbank-moves", {"member_id": world.members["volunteer"].pk, "to_org_id": world.community2.pk}
    )
    assert resp.status_code == 422
    assert not InterBankMove.objects.exists()


def test_only_one_open_move_and_rejection(world: World) -> None:
    body = {"member_id": world.members["volunteer"].pk, "to_org_id": world.other_community.pk}
    first = world.api("staff").post("/api/v1/interbank-moves", body)
    assert first.status_code == 201
    dup = world.api("staff").post("/api/v1/interbank-moves", body)
    assert dup.status_code == 409 and error_code(dup) == "move_pending"
    rejected = world.api("other_bank_admin").post(
        f"/api/v1/interbank-moves/{first.json()['id']}/reject", {"reason": "材料不全"}
    )
    assert rejected.json()["status"] == "rejected"
    assert world.api("stranger").post("/api/v1/interbank-moves", body).status_code == 403


def test_pool_statement_for_staff_of_the_bank(world: World) -> None:
    actions.do_adjustment(None, member=world.members["volunteer"], minutes=100, bucket="reserve", reason="开户")
    actions.do_transfer(None, from_member=world.members["volunteer"], to_member=None, minutes=40, kind="donation")
    pool = world.api("staff_next").get(f"/api/v1/orgs/{world.bank.pk}/pool")
    assert pool.status_code == 200 and pool.json()["balance_minutes"] == 40
    assert [e["minutes"] for e in pool.json()["items"]] == [40]
    assert world.api("other_bank_admin").get(f"/api/v1/orgs/{world.bank.pk}/pool").status_code == 403
    assert world.api("volunteer").get(f"/api/v1/orgs/{world.bank.pk}/pool").status_code == 403
