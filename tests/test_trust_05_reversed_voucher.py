"""Finding 5: a redemption reversed through `POST /ledger/reversals` gave the member their minutes back, but its
voucher could still be handed over and the stock was not restored. Now the reversal voids the voucher and
returns the stock in its own transaction, and a redemption whose goods were handed over is not reversed."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections

from tests.conftest import World, build_world, error_code, web_client
from tests.ledger_checks import ledger_problems
from timebank.goods import actions
from timebank.goods.models import Goods, Redemption, StockMovement
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction
from timebank.lib.errors import Conflict


def goods_minutes(member_id: int) -> int:
    return Account.objects.get(member_id=member_id, kind="goods").balance_minutes


@pytest.fixture
def shop(world: World) -> Goods:
    ledger.do_adjustment(None, member=world.members["volunteer"], minutes=300, bucket="goods", reason="开户")
    return actions.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=3)


def redeem(world: World, goods: Goods, key: str, quantity: int = 1) -> dict:
    resp = world.api("volunteer").post(
        "/api/v1/goods/redemptions",
        {
            "member_id": world.members["volunteer"].pk,
            "goods_id": goods.pk,
            "quantity": quantity,
            "outlet_id": world.outlet.pk,
            "idempotency_key": key,
        },
    )
    assert resp.status_code == 201, resp.content
    return resp.json()


def reverse(world: World, tx_id: int, persona: str = "staff", **extra: object) -> Any:
    return world.api(persona).post("/api/v1/ledger/reversals", {"transaction_id": tx_id, "reason": "兑错了", **extra})


def test_finding_5_reversed_redemption_voids_the_voucher_and_restores_stock(world: World, shop: Goods) -> None:
    volunteer = world.members["volunteer"]
    r = redeem(world, shop, "r1", quantity=2)
    assert goods_minutes(volunteer.pk) == 60 and Goods.objects.get(pk=shop.pk).stock == 1
    resp = reverse(world, r["transaction_id"], idempotency_key="rev-1")
    assert resp.status_code == 201, resp.content
    # The minutes are back, and so is the stock, with a movement that says why.
    assert goods_minutes(volunteer.pk) == 300
    assert Goods.objects.get(pk=shop.pk).stock == 3
    movement = StockMovement.objects.filter(goods=shop).latest("pk")
    assert (movement.kind, movement.change, movement.stock_after) == ("reversal", 2, 3)
    # The voucher is void: it can be looked at, not handed over (API and page).
    assert world.api("staff").get(f"/api/v1/vouchers/{r['voucher_code']}").json()["voucher_status"] == "void"
    refused = world.api("staff").post(f"/api/v1/vouchers/{r['voucher_code']}/hand-over")
    assert refused.status_code == 409 and error_code(refused) == "voucher_void"
    page = web_client(world.users["staff"]).post(f"/outlet/voucher/{r['voucher_code']}/hand-over/")
    assert page.status_code == 409
    assert Redemption.objects.get(pk=r["redemption_id"]).handed_over_at is None
    # Replaying the reversal's key answers the same and moves nothing; a second reversal is 409.
    again = reverse(world, r["transaction_id"], idempotency_key="rev-1")
    assert again.status_code == 201 and again.json() == resp.json()
    assert reverse(world, r["transaction_id"]).status_code == 409
    assert Goods.objects.get(pk=shop.pk).stock == 3 and goods_minutes(volunteer.pk) == 300
    # The member's voucher page says it is void and shows no QR code.
    mine = web_client(world.users["volunteer"]).get(f"/me/vouchers/{r['redemption_id']}/")
    assert mine.status_code == 200 and "<svg" not in mine.content.decode()
    assert ledger_problems(world.bank.pk) == []


def test_a_handed_over_redemption_is_not_reversed(world: World, shop: Goods) -> None:
    volunteer = world.members["volunteer"]
    r = redeem(world, shop, "r1")
    assert world.api("staff").post(f"/api/v1/vouchers/{r['voucher_code']}/hand-over").status_code == 200
    before = Transaction.objects.count()
    resp = reverse(world, r["transaction_id"])
    assert resp.status_code == 409 and error_code(resp) == "voucher_handed_over"
    assert Transaction.objects.count() == before
    assert goods_minutes(volunteer.pk) == 180 and Goods.objects.get(pk=shop.pk).stock == 2
    assert Redemption.objects.get(pk=r["redemption_id"]).status == "handed_over"


def test_the_goods_may_be_gone_when_the_reversal_restores_them(world: World, shop: Goods) -> None:
    # Counted down to zero meanwhile, or taken off the shelf: the reversal still returns what it took.
    r = redeem(world, shop, "r1")
    actions.do_stock_count(None, shop, counted=0)
    assert reverse(world, r["transaction_id"]).status_code == 201
    assert Goods.objects.get(pk=shop.pk).stock == 1


@pytest.mark.django_db(transaction=True)
def test_reversal_racing_hand_over_exactly_one_wins() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock contention is a PostgreSQL test")
    w = build_world()
    volunteer = w.members["volunteer"]
    staff = w.users["staff"]
    ledger.do_adjustment(None, member=volunteer, minutes=1200, bucket="goods", reason="开户")
    goods = actions.do_create_goods(None, outlet=w.outlet, name="食用油", price_minutes=100, stock=10)
    rounds = 6
    redemptions = [
        actions.do_redeem(
            volunteer.user, member=volunteer, goods=goods, quantity=1, outlet=w.outlet, idempotency_key=f"k{n}"
        )[0]
        for n in range(rounds)
    ]
    outcomes: dict[int, list[str]] = {r.pk: [] for r in redemptions}
    lock = threading.Lock()

    def run(r: Redemption, what: str, barrier: threading.Barrier) -> None:
        try:
            barrier.wait()
            if what == "reverse":
                ledger.do_reversal(staff, original=r.transaction, reason="兑错了")
            else:
                actions.do_hand_over(staff, r)
            result = what
        except Conflict as exc:
            result = exc.code
        finally:
            connections.close_all()
        with lock:
            outcomes[r.pk].append(result)

    threads = []
    for r in redemptions:
        barrier = threading.Barrier(2)
        threads += [threading.Thread(target=run, args=(r, what, barrier)) for what in ("reverse", "hand_over")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    reversed_ = 0
    for r in redemptions:
        got = sorted(outcomes[r.pk])
        assert got in (["reverse", "voucher_void"], ["hand_over", "voucher_handed_over"]), got
        fresh = Redemption.objects.get(pk=r.pk)
        if "reverse" in got:
            reversed_ += 1
            assert fresh.status == "void" and fresh.handed_over_at is None
            assert Transaction.objects.filter(reverses=r.transaction).count() == 1
        else:
            assert fresh.status == "handed_over"
            assert not Transaction.objects.filter(reverses=r.transaction).exists()
    assert Goods.objects.get(pk=goods.pk).stock == 10 - rounds + reversed_
    assert goods_minutes(volunteer.pk) == 1200 - 100 * (rounds - reversed_)
    assert ledger_problems(w.bank.pk) == []


@pytest.mark.django_db(transaction=True)
def test_parallel_reversals_of_one_redemption_reverse_it_once() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("row-lock contention is a PostgreSQL test")
    w = build_world()
    volunteer = w.members["volunteer"]
    staff = w.users["staff"]
    ledger.do_adjustment(None, member=volunteer, minutes=600, bucket="goods", reason="开户")
    goods = actions.do_create_goods(None, outlet=w.outlet, name="食用油", price_minutes=100, stock=10)
    same_key, _ = actions.do_redeem(
        volunteer.user, member=volunteer, goods=goods, quantity=1, outlet=w.outlet, idempotency_key="a"
    )
    no_key, _ = actions.do_redeem(
        volunteer.user, member=volunteer, goods=goods, quantity=2, outlet=w.outlet, idempotency_key="b"
    )
    answers: dict[str, list[object]] = {"same_key": [], "no_key": []}
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def run(which: str) -> None:
        r = same_key if which == "same_key" else no_key
        try:
            barrier.wait()
            tx, _replayed = ledger.do_reversal(
                staff, original=r.transaction, reason="兑错了", idempotency_key="rev" if which == "same_key" else None
            )
            result: object = tx.pk
        except Conflict as exc:
            result = exc.code
        finally:
            connections.close_all()
        with lock:
            answers[which].append(result)

    threads = [threading.Thread(target=run, args=(which,)) for which in ("same_key", "no_key") for _n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # The same key: every answer is the one reversal. Without a key: one reversal, the rest 409.
    assert len(answers["same_key"]) == 8 and len(set(answers["same_key"])) == 1
    assert isinstance(answers["same_key"][0], int)
    winners = [a for a in answers["no_key"] if isinstance(a, int)]
    assert len(winners) == 1 and len(answers["no_key"]) == 8
    assert all(a in ("already_reversed", "concurrent_update") for a in answers["no_key"] if not isinstance(a, int))
    assert Goods.objects.get(pk=goods.pk).stock == 10
    assert goods_minutes(volunteer.pk) == 600
    assert StockMovement.objects.filter(goods=goods, kind="reversal").count() == 2
    assert set(Redemption.objects.values_list("status", flat=True)) == {"void"}
    assert ledger_problems(w.bank.pk) == []
