"""Finding 4: staff of one community redeemed goods from the `goods` bucket of a member of another community,
whom they may not even read, and handed the goods to themselves. Now staff redeem for a member outside their
subtree only with the member's card code (proof of presence), and wrong codes lock the card."""

from __future__ import annotations

import pytest

from tests.conftest import World, error_code, web_client
from timebank.audit.models import AuditEntry
from timebank.goods import actions
from timebank.goods.models import Goods, Redemption
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account

CARD_LOCK_AFTER = actions.CARD_WRONG_LIMIT


def goods_minutes(member_id: int) -> int:
    return Account.objects.get(member_id=member_id, kind="goods").balance_minutes


@pytest.fixture
def shop(world: World) -> Goods:
    # 赵阿姨 lives in 泥沟村 (community2); the outlet belongs to 顺河社区, whose staff may not read her.
    ledger.do_adjustment(None, member=world.members["neighbour"], minutes=600, bucket="goods", reason="开户")
    return actions.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=5)


def body(world: World, goods: Goods, key: str, **extra: object) -> dict:
    return {
        "member_id": world.members["neighbour"].pk,
        "goods_id": goods.pk,
        "quantity": 1,
        "outlet_id": world.outlet.pk,
        "idempotency_key": key,
        **extra,
    }


def card_code(world: World, persona: str, member: str) -> str:
    resp = world.api(persona).get(f"/api/v1/members/{world.members[member].pk}/card-code")
    assert resp.status_code == 200, resp.content
    code = resp.json()["code"]
    assert isinstance(code, str) and code.isdigit() and len(code) == 8
    return code


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 100_000_000:08d}"


def test_finding_4_staff_cannot_redeem_another_communitys_member_and_take_the_goods(world: World, shop: Goods) -> None:
    neighbour = world.members["neighbour"]
    staff = world.api("staff")
    # The exact attack: staff of 顺河社区 cannot read 赵阿姨 ...
    assert staff.get(f"/api/v1/members/{neighbour.pk}").status_code == 403
    # ... and still redeemed from her goods at their own outlet. Now: 403, nothing moves.
    resp = staff.post("/api/v1/goods/redemptions", body(world, shop, "steal"))
    assert resp.status_code == 403, resp.content
    assert error_code(resp) == "member_code_required"
    assert goods_minutes(neighbour.pk) == 600
    assert Goods.objects.get(pk=shop.pk).stock == 5
    assert not Redemption.objects.exists()
    # A refused request does not consume its key: with her code (she is at the counter) the same key works.
    code = card_code(world, "neighbour", "neighbour")
    ok = staff.post("/api/v1/goods/redemptions", body(world, shop, "steal", member_code=code))
    assert ok.status_code == 201, ok.content
    assert goods_minutes(neighbour.pk) == 480 and Goods.objects.get(pk=shop.pk).stock == 4
    # The voucher is the outlet's: its staff hand it over; staff of her own community cannot.
    voucher = ok.json()["voucher_code"]
    assert world.api("staff_next").post(f"/api/v1/vouchers/{voucher}/hand-over").status_code == 403
    assert staff.post(f"/api/v1/vouchers/{voucher}/hand-over").status_code == 200


def test_wrong_or_missing_code_is_403_and_locks_the_card_after_a_few_tries(world: World, shop: Goods) -> None:
    neighbour = world.members["neighbour"]
    staff = world.api("staff")
    code = card_code(world, "neighbour", "neighbour")
    for n in range(CARD_LOCK_AFTER):
        resp = staff.post("/api/v1/goods/redemptions", body(world, shop, f"w{n}", member_code=wrong(code)))
        assert resp.status_code == 403 and error_code(resp) == "member_code_wrong"
    # Locked: even the right code is refused now, and every wrong try was audited.
    locked = staff.post("/api/v1/goods/redemptions", body(world, shop, "right", member_code=code))
    assert locked.status_code == 403 and error_code(locked) == "card_locked"
    assert AuditEntry.objects.filter(action="goods.card_code_wrong").count() == CARD_LOCK_AFTER
    assert AuditEntry.objects.filter(action="goods.card_locked").count() == 1
    assert goods_minutes(neighbour.pk) == 600 and not Redemption.objects.exists()
    # She gets a new code (lost card, or someone guessed): the old one stays dead, the new one works.
    new = world.api("neighbour").post(f"/api/v1/members/{neighbour.pk}/card-code/reissue")
    assert new.status_code == 200
    assert new.json()["code"] != code
    assert staff.post("/api/v1/goods/redemptions", body(world, shop, "old", member_code=code)).status_code == 403
    assert (
        staff.post("/api/v1/goods/redemptions", body(world, shop, "new", member_code=new.json()["code"])).status_code
        == 201
    )


def test_one_staff_cannot_spread_guesses_over_many_members(world: World, shop: Goods) -> None:
    from tests.conftest import make_member

    staff = world.api("staff")
    others = [make_member(world.community2, f"村民{n}") for n in range(actions.ACTOR_WRONG_LIMIT)]
    for n, m in enumerate(others):
        resp = staff.post(
            "/api/v1/goods/redemptions", {**body(world, shop, f"g{n}"), "member_id": m.pk, "member_code": "00000000"}
        )
        assert resp.status_code == 403
    # The neighbour's card is not locked, but this staff login may not try codes any more today.
    code = card_code(world, "neighbour", "neighbour")
    resp = staff.post("/api/v1/goods/redemptions", body(world, shop, "real", member_code=code))
    assert resp.status_code == 403 and error_code(resp) == "too_many_wrong_codes"
    assert AuditEntry.objects.filter(action="goods.card_code_wrong").count() == actions.ACTOR_WRONG_LIMIT


@pytest.mark.parametrize("bad", ["", "1234567", "123456789", "abcdefgh", 12345678, None])
def test_malformed_codes_are_refused_without_moving_anything(world: World, shop: Goods, bad: object) -> None:
    resp = world.api("staff").post("/api/v1/goods/redemptions", body(world, shop, "x", member_code=bad))
    assert resp.status_code in (403, 422)
    assert not Redemption.objects.exists()


def test_inside_the_subtree_and_the_member_themselves_need_no_code(world: World, shop: Goods) -> None:
    assert world.api("neighbour").post("/api/v1/goods/redemptions", body(world, shop, "own")).status_code == 201
    ledger.do_adjustment(None, member=world.members["volunteer"], minutes=300, bucket="goods", reason="开户")
    mine = {**body(world, shop, "in"), "member_id": world.members["volunteer"].pk}
    assert world.api("staff").post("/api/v1/goods/redemptions", mine).status_code == 201
    # The head office's admin manages both the outlet and 泥沟村.
    assert world.api("head_office_admin").post("/api/v1/goods/redemptions", body(world, shop, "ho")).status_code == 201


def test_card_code_is_for_the_member_and_their_relatives_only(world: World) -> None:
    recipient = world.members["recipient"]
    code = card_code(world, "recipient", "recipient")
    assert card_code(world, "relative", "recipient") == code  # the linked relative reads it to print a card
    assert card_code(world, "recipient", "recipient") == code  # stable until re-issued
    for persona in ("staff", "branch_admin", "head_office_admin", "operator", "volunteer", "neighbour", "stranger"):
        resp = world.api(persona).get(f"/api/v1/members/{recipient.pk}/card-code")
        assert resp.status_code == 403, persona
    assert world.api("anonymous").get(f"/api/v1/members/{recipient.pk}/card-code").status_code == 401
    assert world.api("recipient").get("/api/v1/members/999999999/card-code").status_code == 404
    # The member's code differs from their relative's.
    assert card_code(world, "relative", "relative") != code
    # Staff of another community may not re-issue it (his home staff may: tests/test_trust_11_logins_attacks.py).
    assert world.api("staff_next").post(f"/api/v1/members/{recipient.pk}/card-code/reissue").status_code == 403


def test_card_page_shows_the_code_to_the_member_and_the_relative(world: World) -> None:
    code = card_code(world, "recipient", "recipient")
    grouped = f"{code[:4]} {code[4:]}"
    mine = web_client(world.users["recipient"]).get("/me/card/")
    assert mine.status_code == 200 and grouped in mine.content.decode()
    family = web_client(world.users["relative"]).get("/me/card/")
    assert family.status_code == 200 and grouped in family.content.decode()
    assert grouped not in web_client(world.users["neighbour"]).get("/me/card/").content.decode()


def test_counter_page_redeems_for_an_outside_member_only_with_the_card_code(world: World, shop: Goods) -> None:
    neighbour = world.members["neighbour"]
    client = web_client(world.users["staff"])
    url = f"/outlet/{world.outlet.pk}/redeem/"
    form = {"via": "card", "card": neighbour.pk, "goods": shop.pk, "quantity": 1, "idempotency_key": "p1"}
    refused = client.post(url, {**form, "member_code": "00000000"})
    assert refused.status_code in (403, 422)
    assert not Redemption.objects.exists()
    code = card_code(world, "neighbour", "neighbour")
    done = client.post(url, {**form, "member_code": code})
    assert done.status_code == 302, done.content.decode()[:2000]
    assert Redemption.objects.get().member_id == neighbour.pk
    assert goods_minutes(neighbour.pk) == 480


def test_home_staff_print_a_paper_card_with_a_new_code_audited(world: World, shop: Goods) -> None:
    # 赵阿姨 has no phone at hand: staff of her own community (泥沟村) print her card.
    neighbour = world.members["neighbour"]
    old = card_code(world, "neighbour", "neighbour")
    url = f"/outlet/card/{neighbour.pk}/"
    for persona in ("staff", "operator", "neighbour"):  # another community's staff, an operator, herself
        assert web_client(world.users[persona]).get(url).status_code in (403, 404), persona
    client = web_client(world.users["staff_next"])
    assert client.get(url).status_code == 200
    printed = client.post(url)
    assert printed.status_code == 200
    new = card_code(world, "neighbour", "neighbour")
    assert new != old and f"{new[:4]} {new[4:]}" in printed.content.decode()
    assert AuditEntry.objects.filter(action="goods.card_printed").count() == 1
    # The old code is dead, the printed one works at the other community's outlet.
    staff = world.api("staff")
    assert staff.post("/api/v1/goods/redemptions", body(world, shop, "o", member_code=old)).status_code == 403
    assert staff.post("/api/v1/goods/redemptions", body(world, shop, "n", member_code=new)).status_code == 201
    # The member list links to it for staff of her community.
    assert url in client.get("/staff/members/", {"q": neighbour.name}).content.decode()
