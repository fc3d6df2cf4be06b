"""Goods at outlets: redemption from the goods bucket, stock in the same transaction, vouchers once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from tests.conftest import World, build_world, error_code
from tests.ledger_checks import ledger_problems
from timebank.goods import actions
from timebank.goods.models import Goods, Redemption, StockMovement
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account
from timebank.lib.errors import Conflict


def goods_minutes(member_id: int) -> int:
    return Account.objects.get(member_id=member_id, kind="goods").balance_minutes


@pytest.fixture
def shop(world: World) -> Goods:
    ledger.do_adjustment(None, member=world.members["volunteer"], minutes=300, bucket="goods", reason="开户")
    return actions.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=2)


def redeem_body(world: World, goods: Goods, key: str, quantity: int = 1) -> dict:
    return {
        "member_id": world.members["volunteer"].pk,
        "goods_id": goods.pk,
        "quantity": quantity,
        "outlet_id": world.outlet.pk,
        "idempotency_key": key,
    }


def test_redeem_then_hand_over_once(world: World, shop: Goods) -> None:
    resp = world.api("volunteer").post("/api/v1/goods/redemptions", redeem_body(world, shop, "r1"))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["kind"] == "goods_redemption" and body["minutes"] == 120
    assert goods_minutes(world.members["volunteer"].pk) == 180
    assert Goods.objects.get(pk=shop.pk).stock == 1
    # Replay: same body, nothing moves.
    again = world.api("volunteer").post("/api/v1/goods/redemptions", redeem_body(world, shop, "r1"))
    assert again.json() == body and goods_minutes(world.members["volunteer"].pk) == 180
    # The QR voucher is checked at the outlet by its staff, and works once.
    qr = world.api("volunteer").get(f"/api/v1/goods/redemptions/{body['redemption_id']}/voucher.svg")
    assert qr.status_code == 200 and b"<svg" in qr.content
    code = body["voucher_code"]
    assert world.api("staff_next").get(f"/api/v1/vouchers/{code}").status_code == 403
    assert world.api("staff").get(f"/api/v1/vouchers/TBV:{code}").json()["voucher_status"] == "issued"
    assert world.api("staff").post(f"/api/v1/vouchers/{code}/hand-over").status_code == 200
    used = world.api("staff").post(f"/api/v1/vouchers/{code}/hand-over")
    assert used.status_code == 409 and error_code(used) == "voucher_used"


def test_no_stock_or_too_few_minutes_is_a_conflict(world: World, shop: Goods) -> None:
    too_many = world.api("volunteer").post("/api/v1/goods/redemptions", redeem_body(world, shop, "r1", quantity=3))
    assert too_many.status_code == 409 and error_code(too_many) == "out_of_stock"
    assert (
        world.api("volunteer").post("/api/v1/goods/redemptions", redeem_body(world, shop, "r2", 2)).status_code == 201
    )
    actions.do_restock(None, shop, quantity=5)
    broke = world.api("volunteer").post("/api/v1/goods/redemptions", redeem_body(world, shop, "r3"))
    assert broke.status_code == 409 and error_code(broke) == "insufficient_balance"
    # Reserve and earned never buy goods.
    ledger.do_adjustment(None, member=world.members["volunteer"], minutes=900, bucket="reserve", reason="x")
    still = world.api("volunteer").post("/api/v1/goods/redemptions", redeem_body(world, shop, "r4"))
    assert still.status_code == 409
    assert Goods.objects.get(pk=shop.pk).stock == 5
    assert goods_minutes(world.members["volunteer"].pk) == 60
    assert ledger_problems(world.bank.pk) == []


def test_who_may_redeem(world: World, shop: Goods) -> None:
    assert world.api("neighbour").post("/api/v1/goods/redemptions", redeem_body(world, shop, "x")).status_code == 403
    assert world.api("staff_next").post("/api/v1/goods/redemptions", redeem_body(world, shop, "x")).status_code == 403
    assert world.api("staff").post("/api/v1/goods/redemptions", redeem_body(world, shop, "x")).status_code == 201


def test_restock_and_count_are_audited_movements(world: World, shop: Goods) -> None:
    assert world.api("staff").post(f"/api/v1/goods/{shop.pk}/restock", {"quantity": 10}).json()["stock"] == 12
    assert (
        world.api("staff").post(f"/api/v1/goods/{shop.pk}/count", {"counted": 11, "note": "破损 1"}).json()["stock"]
        == 11
    )
    assert world.api("staff_next").post(f"/api/v1/goods/{shop.pk}/restock", {"quantity": 10}).status_code == 403
    assert list(StockMovement.objects.filter(goods=shop).values_list("kind", "change")) == [
        ("restock", 2),
        ("restock", 10),
        ("count", -1),
    ]


@pytest.mark.django_db(transaction=True)
def test_two_threads_redeeming_at_once_get_exactly_what_is_allowed() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock contention is a PostgreSQL test")
    w = build_world()
    volunteer = w.members["volunteer"]
    ledger.do_adjustment(None, member=volunteer, minutes=500, bucket="goods", reason="开户")
    # Stock 3 at 100 minutes: minutes allow 5, stock allows 3.
    goods = actions.do_create_goods(None, outlet=w.outlet, name="食用油", price_minutes=100, stock=3)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def buy(n: int) -> None:
        try:
            barrier.wait()
            actions.do_redeem(None, member=volunteer, goods=goods, quantity=1, outlet=w.outlet, idempotency_key=f"k{n}")
            result = "ok"
        except Conflict as exc:
            result = exc.code
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["ok"] * 3 + ["out_of_stock"] * 3
    assert Goods.objects.get(pk=goods.pk).stock == 0
    assert goods_minutes(volunteer.pk) == 200
    assert Redemption.objects.count() == 3
    assert ledger_problems(w.bank.pk) == []
