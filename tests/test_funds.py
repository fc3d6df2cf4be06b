"""Funds in yuan (四个一点), donations in kind, the emergency fund, and the public disclosure (公示)."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from collections import defaultdict
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from tests.conftest import World, error_code, is_postgres, new_id_number
from tests.ledger_checks import ledger_problems
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.funds.models import FundEntry
from timebank.goods.actions import do_create_goods
from timebank.goods.models import Goods
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account, Transaction
from timebank.lib.masking import mask_phone
from timebank.members.actions import MemberInput, do_register_member
from timebank.members.models import Member
from timebank.orders.models import Order, OrderEvent
from timebank.orgs.models import Org

ENTRIES = "/api/v1/funds/entries"
DAY = "2025-03-15"


def income(org: Org, amount: Any, source: str = "government", **extra: Any) -> dict[str, Any]:
    return {"org_id": org.pk, "direction": "income", "source": source, "amount": amount, "occurred_on": DAY, **extra}


def expense(org: Org, amount: Any, kind: str = "operations", **extra: Any) -> dict[str, Any]:
    return {"org_id": org.pk, "direction": "expense", "kind": kind, "amount": amount, "occurred_on": DAY, **extra}


def book(world: World, persona: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = world.api(persona).post(ENTRIES, body)
    assert resp.status_code == 201, resp.content
    return dict(resp.json())


def ledger_totals(org: Org) -> dict[str, Any]:
    """What the fund ledger says, computed here straight from the rows."""
    by_source: dict[str, Decimal] = defaultdict(Decimal)
    by_kind: dict[str, Decimal] = defaultdict(Decimal)
    cash = in_kind = out = Decimal(0)
    for e in FundEntry.objects.filter(org__path__startswith=org.path):
        if e.direction == "income":
            by_source[e.source] += e.amount
            if e.in_kind:
                in_kind += e.amount
            else:
                cash += e.amount
        else:
            by_kind[e.kind] += e.amount
            out += e.amount
    return {"by_source": by_source, "by_kind": by_kind, "cash": cash, "in_kind": in_kind, "out": out}


def money(value: Decimal) -> str:
    return f"{value:.2f}"


def disclosure(world: World, org: Org, **params: Any) -> dict[str, Any]:
    resp = world.api("anonymous").get("/api/v1/disclosure", {"org_id": org.pk, **params})
    assert resp.status_code == 200, resp.content
    return dict(resp.json())


@pytest.fixture
def books(world: World) -> None:
    """A year of entries across the tree, by four people at three levels."""
    book(world, "head_office_admin", income(world.bank, "50000.00", "government", description="区民政局拨款"))
    book(world, "branch_admin", income(world.branch, "3000", "society", donor_name="区慈善总会"))
    book(world, "staff", income(world.community, "1200.50", "enterprise", donor_name="鲁南爱心超市"))
    book(world, "staff", income(world.outlet, "0.10", "residents", donor_name="李大爷"))
    book(world, "staff", income(world.outlet, "0.20", "residents"))
    book(world, "staff", expense(world.community, "800.00", "goods_purchase"))
    book(world, "staff", expense(world.community, "365.5", "insurance"))
    book(world, "staff_next", income(world.community2, "999.99", "government", fund="emergency"))
    book(world, "staff_next", expense(world.community2, "120", "training"))
    book(world, "head_office_admin", expense(world.bank, "1000", "awards"))


def assert_matches_ledger(report: dict[str, Any], org: Org) -> None:
    want = ledger_totals(org)
    for s in report["income"]["by_source"]:
        assert s["total"] == money(want["by_source"][s["source"]]), s
    for k in report["expense"]["by_kind"]:
        assert k["amount"] == money(want["by_kind"][k["kind"]]), k
    assert report["income"]["cash"] == money(want["cash"])
    assert report["income"]["in_kind"] == money(want["in_kind"])
    assert report["income"]["total"] == money(want["cash"] + want["in_kind"])
    assert report["expense"]["total"] == money(want["out"])
    assert report["closing_balance"] == money(want["cash"] - want["out"])


def test_disclosure_totals_equal_the_fund_ledger(world: World, books: None) -> None:
    for org in (world.bank, world.branch, world.community, world.outlet, world.community2, world.other_bank):
        assert_matches_ledger(disclosure(world, org), org)
    bank = disclosure(world, world.bank)
    assert bank["income"]["total"] == "55200.79" and bank["expense"]["total"] == "2285.50"
    assert bank["closing_balance"] == "52915.29" and bank["entries"] == 10
    # Rolled up: each branch's line adds up its own subtree.
    children = {c["org_id"]: c for c in bank["children"]}
    assert children[world.branch.pk]["income"] == "4200.80" and children[world.branch.pk]["expense"] == "1165.50"
    assert children[world.branch2.pk]["net"] == "879.99"
    funds = {f["fund"]: f for f in bank["funds"]}
    assert funds["emergency"]["income"] == "999.99" and funds["general"]["income"] == "54200.80"
    # Staff see the same figures in their summary.
    summary = world.api("branch_admin").get("/api/v1/funds/summary", {"org_id": world.branch.pk}).json()
    assert summary["income"] == disclosure(world, world.branch)["income"]


def test_disclosure_page_shows_the_ledger_totals(world: World, books: None, django_assert_max_num_queries: Any) -> None:
    want = ledger_totals(world.bank)
    with django_assert_max_num_queries(12):
        resp = world.api("anonymous").get(f"/disclosure/{world.bank.pk}/")
    assert resp.status_code == 200
    html = resp.content.decode()

    def row(attr: str) -> list[str]:
        found = re.search(rf"<tr {attr}>(.*?)</tr>", html, re.S)
        assert found, attr
        return re.findall(r'<td class="num">([^<]*)</td>', found.group(1))

    assert row('data-total="income"') == [
        money(want["cash"]),
        money(want["in_kind"]),
        money(want["cash"] + want["in_kind"]),
    ]
    assert row('data-total="expense"') == [money(want["out"])]
    for source, amount in want["by_source"].items():
        assert row(f'data-source="{source}"')[-1] == money(amount)
    for kind, amount in want["by_kind"].items():
        assert row(f'data-kind="{kind}"') == [money(amount)]
    assert f'data-balance="closing">{money(want["cash"] - want["out"])}<' in html
    assert "<svg" in html and 'class="income"' in html  # the chart is drawn on the server
    assert f"/disclosure/{world.bank.pk}/pdf" in html


def test_a_period_selects_entries_and_carries_the_opening_balance(world: World) -> None:
    book(world, "staff", {**income(world.community, "100"), "occurred_on": "2024-12-31"})
    book(world, "staff", {**income(world.community, "40"), "occurred_on": "2025-01-01"})
    book(world, "staff", {**expense(world.community, "15"), "occurred_on": "2025-06-30"})
    book(world, "staff", {**expense(world.community, "7"), "occurred_on": "2025-07-01"})
    half = disclosure(world, world.community, **{"from": "2025-01-01", "to": "2025-06-30"})
    assert (half["opening_balance"], half["income"]["total"], half["expense"]["total"]) == ("100.00", "40.00", "15.00")
    assert (half["net"], half["closing_balance"], half["from"], half["to"]) == (
        "25.00",
        "125.00",
        "2025-01-01",
        "2025-06-30",
    )
    assert disclosure(world, world.community)["closing_balance"] == "118.00"


def test_money_is_exact_decimal(world: World) -> None:
    book(world, "staff", income(world.community, "0.1"))
    book(world, "staff", income(world.community, "0.2"))
    assert [e.amount for e in FundEntry.objects.order_by("pk")] == [Decimal("0.10"), Decimal("0.20")]
    assert disclosure(world, world.community)["income"]["total"] == "0.30"
    assert world.api("staff").get("/api/v1/funds/summary", {"org_id": world.community.pk}).json()["net"] == "0.30"
    # The largest amount, many times over, still adds up to the cent.
    for _ in range(3):
        book(world, "staff", income(world.community, "99999999.99"))
    assert disclosure(world, world.community)["income"]["total"] == "300000000.27"


@pytest.mark.parametrize(
    "amount",
    [
        "-1",
        -1,
        "0",
        0,
        "0.00",
        "1.005",
        "12.345",
        "100000000.01",
        100_000_001,
        "99999999999999999999",
        "1e3",
        "1E3",
        " 12",
        "12 ",
        "12.",
        ".5",
        "+5",
        "NaN",
        "Infinity",
        "1_000",
        "０.５",
        "12,50",
        "0x10",
        0.1,
        12.5,
        True,
        None,
        [],
        {},
        "",
    ],
)
def test_bad_amounts_are_refused_and_write_nothing(world: World, amount: Any) -> None:
    resp = world.api("staff").post(ENTRIES, income(world.community, amount))
    assert resp.status_code == 422, (amount, resp.content)
    assert "amount" in resp.json()["error"]["fields"]
    assert not FundEntry.objects.exists()


def test_bad_json_numbers_and_fields_are_refused(world: World) -> None:
    api = world.api("staff")
    raw = '{"org_id": %d, "direction": "income", "source": "government", "amount": %s, "occurred_on": "2025-01-01"}'
    for number in ("1e400", "-1e400", "1.0000000000000001", "NaN"):
        assert api.post(ENTRIES, raw=raw % (world.community.pk, number)).status_code in (400, 422)
    future = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    bad = [
        {**income(world.community, "5"), "kind": "training"},  # an income has no expense kind
        {**income(world.community, "5"), "source": "bank"},
        {**expense(world.community, "5"), "source": "government"},
        {**expense(world.community, "5"), "kind": None},
        {**expense(world.community, "5"), "donor_name": "鲁南爱心超市"},
        {**income(world.community, "5"), "occurred_on": future},
        {**income(world.community, "5"), "occurred_on": "1989-12-31"},
        {**income(world.community, "5"), "occurred_on": "2025-02-30"},
        {**income(world.community, "5"), "fund": "secret"},
        {**income(world.community, "5"), "description": "x" * 501},
        {**income(world.community, "5"), "description": "a\x00b"},
        {**income(world.community, "5", "enterprise"), "donor_name": "超市 电话13912345678"},
        {**income(world.community, "5", "enterprise"), "donor_name": "王秀英"},  # a member: record as residents
        {**income(world.community, "5"), "org_id": 2**63},
        {**income(world.community, "5"), "org_id": "4"},
        {**income(world.community, "5"), "idempotency_key": "k" * 65},
    ]
    for body in bad:
        resp = api.post(ENTRIES, body)
        assert resp.status_code == 422, (body, resp.content)
    assert api.post(ENTRIES, raw="[1, 2]").status_code == 400
    assert not FundEntry.objects.exists()
    # A resident's name is fine in the (internal) book: the disclosure shows "居民筹集" only.
    assert api.post(ENTRIES, {**income(world.community, "5", "residents"), "donor_name": "王秀英"}).status_code == 201


def test_staff_keep_only_their_own_subtree(world: World, books: None) -> None:
    community_entry = FundEntry.objects.filter(org=world.community).first()
    assert community_entry is not None
    for persona in ("staff_next", "other_bank_admin", "other_bank_staff", "operator", "assessor", "volunteer"):
        api = world.api(persona)
        assert api.post(ENTRIES, income(world.community, "5")).status_code == 403, persona
        assert api.get("/api/v1/funds/summary", {"org_id": world.community.pk}).status_code == 403, persona
        assert api.get(f"{ENTRIES}/{community_entry.pk}").status_code == 403, persona
        reverse = api.post(f"{ENTRIES}/{community_entry.pk}/reverse", {"reason": "错了"})
        assert reverse.status_code == 403, persona
        listed = api.get(ENTRIES).json()["items"]
        assert community_entry.pk not in [e["id"] for e in listed], persona
    # Staff of a community cannot book for the branch above it.
    assert world.api("staff").post(ENTRIES, income(world.branch, "5")).status_code == 403
    assert world.api("anonymous").get(ENTRIES).status_code == 401
    assert world.api("anonymous").post(ENTRIES, income(world.community, "5")).status_code == 401
    assert world.api("staff").get(f"{ENTRIES}/999999").status_code == 404
    # Staff list their subtree (community and its outlet); the branch admin sees the whole branch.
    mine = {e["org_id"] for e in world.api("staff").get(ENTRIES, {"limit": 200}).json()["items"]}
    assert mine == {world.community.pk, world.outlet.pk}
    branch = world.api("branch_admin").get(ENTRIES, {"org_id": world.branch.pk, "limit": 200}).json()["items"]
    assert len(branch) == FundEntry.objects.filter(org__path__startswith=world.branch.path).count() == 6
    assert FundEntry.objects.count() == 10
    # The public disclosure needs no login, for any org.
    assert world.api("anonymous").get("/api/v1/disclosure", {"org_id": world.community.pk}).status_code == 200
    assert world.api("anonymous").get(f"/disclosure/{world.other_community.pk}/").status_code == 200


def test_lists_page_and_filter(world: World) -> None:
    for i in range(5):
        book(world, "staff", income(world.community, str(i + 1)))
    book(world, "staff", expense(world.community, "2", fund="emergency"))
    first = world.api("staff").get(ENTRIES, {"limit": 4}).json()
    second = world.api("staff").get(ENTRIES, {"limit": 4, "cursor": first["next_cursor"]}).json()
    assert len(first["items"]) == 4 and len(second["items"]) == 2 and second["next_cursor"] is None
    assert [e["amount"] for e in first["items"]][:2] == ["2.00", "5.00"]  # newest first
    assert len(world.api("staff").get(ENTRIES, {"direction": "expense"}).json()["items"]) == 1
    assert len(world.api("staff").get(ENTRIES, {"fund": "emergency"}).json()["items"]) == 1
    for params in ({"limit": 0}, {"limit": 500}, {"cursor": "zzz"}, {"from": "2025-13-01"}, {"direction": "up"}):
        assert world.api("staff").get(ENTRIES, params).status_code == 422, params


def test_a_mistake_is_corrected_by_a_reversing_entry(world: World) -> None:
    entry = book(world, "staff", income(world.community, "500"))
    book(world, "staff", income(world.community, "20"))
    resp = world.api("staff").post(f"{ENTRIES}/{entry['id']}/reverse", {"reason": "金额记错"})
    assert resp.status_code == 201, resp.content
    reversal = resp.json()
    assert reversal["amount"] == "-500.00" and reversal["reverses_id"] == entry["id"]
    assert world.api("staff").get(f"{ENTRIES}/{entry['id']}").json()["reversed_by_id"] == reversal["id"]
    assert disclosure(world, world.community)["income"]["total"] == "20.00"
    again = world.api("staff").post(f"{ENTRIES}/{entry['id']}/reverse", {"reason": "再来一次"})
    assert again.status_code == 409 and error_code(again) == "already_reversed"
    twice = world.api("staff").post(f"{ENTRIES}/{reversal['id']}/reverse", {"reason": "冲正的冲正"})
    assert twice.status_code == 409 and error_code(twice) == "cannot_reverse_reversal"
    assert world.api("staff").post(f"{ENTRIES}/{entry['id']}/reverse", {"reason": ""}).status_code == 422
    assert FundEntry.objects.count() == 3


def test_a_double_submit_books_once(world: World) -> None:
    body = income(world.community, "88.80", idempotency_key="receipt-0042")
    first = world.api("staff").post(ENTRIES, body)
    again = world.api("staff").post(ENTRIES, body)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    changed = world.api("staff").post(ENTRIES, {**body, "amount": "88.00"})
    assert changed.status_code == 409 and error_code(changed) == "idempotency_key_reused"
    # Keys are per caller: another staff member's key does not collide.
    assert world.api("branch_admin").post(ENTRIES, {**body, "org_id": world.branch.pk}).status_code == 201
    assert FundEntry.objects.count() == 2


def test_postgres_refuses_to_edit_or_delete_an_entry(world: World) -> None:
    if not is_postgres():
        pytest.skip("the immutability trigger is PostgreSQL's")
    entry = book(world, "staff", income(world.community, "10"))
    for change in (
        lambda: FundEntry.objects.filter(pk=entry["id"]).update(amount=Decimal("1.00")),
        lambda: FundEntry.objects.filter(pk=entry["id"]).delete(),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    assert FundEntry.objects.get(pk=entry["id"]).amount == Decimal("10.00")


# --- donations in kind ---


def test_a_donation_in_kind_stocks_an_outlet(world: World) -> None:
    rice = do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=2)
    body = {
        "org_id": world.community.pk,
        "source": "enterprise",
        "donor_name": "鲁南爱心超市",
        "estimated_value": "450.00",
        "occurred_on": DAY,
        "item_description": "大米 10 袋",
        "stock": {"outlet_id": world.outlet.pk, "goods_id": rice.pk, "quantity": 10},
        "idempotency_key": "gift-1",
    }
    resp = world.api("staff").post("/api/v1/funds/in-kind", body)
    assert resp.status_code == 201, resp.content
    entry = resp.json()
    assert entry["in_kind"] is True and entry["goods_id"] == rice.pk and entry["amount"] == "450.00"
    assert Goods.objects.get(pk=rice.pk).stock == 12
    assert world.api("staff").post("/api/v1/funds/in-kind", body).json() == entry  # replay: stocked once
    assert Goods.objects.get(pk=rice.pk).stock == 12
    # New goods from residents' gifts.
    oil = world.api("staff").post(
        "/api/v1/funds/in-kind",
        {
            **body,
            "source": "residents",
            "donor_name": "",
            "estimated_value": "60",
            "item_description": "食用油 3 桶",
            "stock": {"outlet_id": world.outlet.pk, "name": "食用油", "price_minutes": 90, "quantity": 3},
            "idempotency_key": "gift-2",
        },
    )
    assert oil.status_code == 201, oil.content
    assert Goods.objects.get(pk=oil.json()["goods_id"]).stock == 3
    report = disclosure(world, world.community)
    sources = {s["source"]: s for s in report["income"]["by_source"]}
    assert sources["enterprise"]["in_kind"] == "450.00" and sources["residents"]["in_kind"] == "60.00"
    assert report["income"]["in_kind"] == "510.00" and report["closing_balance"] == "0.00"  # goods are not cash
    assert report["donors"] == [{"name": "鲁南爱心超市", "amount": "450.00"}]


def test_in_kind_refusals_stock_nothing(world: World) -> None:
    rice = do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=2)
    base = {
        "org_id": world.community.pk,
        "source": "enterprise",
        "estimated_value": "100",
        "occurred_on": DAY,
        "item_description": "大米",
    }
    stock = {"outlet_id": world.outlet.pk, "goods_id": rice.pk, "quantity": 5}
    cases = [
        ("staff_next", {**base, "org_id": world.community2.pk, "stock": stock}, 403),  # the outlet is not theirs
        ("staff", {**base, "stock": {**stock, "outlet_id": world.other_community.pk}}, 403),
        ("staff", {**base, "stock": {"outlet_id": world.outlet.pk, "quantity": 5}}, 422),  # new goods need a name
        ("staff", {**base, "stock": {**stock, "quantity": 0}}, 422),
        ("staff", {**base, "estimated_value": "1.001", "stock": stock}, 422),
        ("staff", {**base, "item_description": "", "stock": stock}, 422),
        ("staff", {**base, "stock": {**stock, "outlet_id": world.community2.pk}}, 403),
        (
            "staff_next",
            {**base, "org_id": world.community2.pk, "stock": {**stock, "outlet_id": world.community2.pk}},
            403,
        ),
    ]
    for persona, body, status in cases:
        resp = world.api(persona).post("/api/v1/funds/in-kind", body)
        assert resp.status_code == status, (body, resp.content)
    assert not FundEntry.objects.exists() and Goods.objects.get(pk=rice.pk).stock == 2


# --- the emergency fund ---


@pytest.fixture
def cleaning(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="technical"
    )


def place_order(world: World, item: ServiceItem, payer: str = "recipient", minutes: int = 90) -> int:
    resp = world.api("staff").post(
        "/api/v1/orders",
        {
            "recipient_id": world.members["recipient"].pk,
            "service_item_id": item.pk,
            "scheduled_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
            "planned_minutes": minutes,
            "payer": payer,
            "channel": "hotline",
        },
    )
    assert resp.status_code == 201, resp.content
    return int(resp.json()["id"])


def past_dispatch_time(*order_ids: int) -> None:
    """Orders placed longer ago than the bank's dispatch time (24 hours by default): overdue, so a fund may buy
    them. (The rules refuse a dispatch time of 0 hours, which tests once used for this.)"""
    Order.objects.filter(pk__in=order_ids).update(created_at=timezone.now() - dt.timedelta(hours=25))


def balance(member: Member, kind: str) -> int:
    return Account.objects.get(member=member, kind=kind).balance_minutes


def buy(world: World, persona: str, order_id: int, **body: Any) -> Any:
    return world.api(persona).post(
        f"/api/v1/orders/{order_id}/buy-service", {"amount": "150.00", "provider": "鲁南家政服务有限公司", **body}
    )


def test_the_emergency_fund_buys_an_unfilled_order(world: World, cleaning: ServiceItem) -> None:
    recipient = world.members["recipient"]
    ledger.do_adjustment(None, member=recipient, minutes=600, bucket="reserve", reason="开户")
    oid = place_order(world, cleaning)
    # Within the dispatch time, staff must say why volunteers cannot do it.
    early = buy(world, "staff", oid)
    assert early.status_code == 409 and error_code(early) == "not_overdue"
    assert buy(world, "staff", oid, unfillable=True).status_code == 422  # no reason given
    for persona in ("staff_next", "operator", "volunteer", "recipient", "other_bank_admin"):
        assert buy(world, persona, oid, unfillable=True, note="无人").status_code == 403, persona
    assert buy(world, "staff", oid, unfillable=True, note="无人", org_id=world.community2.pk).status_code == 403
    assert (
        buy(world, "head_office_admin", oid, unfillable=True, note="无人", org_id=world.community2.pk).status_code
        == 422
    )
    assert not FundEntry.objects.exists()

    past_dispatch_time(oid)
    book(world, "head_office_admin", income(world.bank, "200", fund="emergency"))
    resp = buy(world, "head_office_admin", oid, org_id=world.bank.pk, note="连续两天无人接单")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["state"] == "confirmed" and body["volunteer_id"] is None
    assert body["credited_minutes"] == 180 and body["actual_minutes"] == 90  # technical ×2
    entry = body["fund_entry"]
    assert (entry["fund"], entry["kind"], entry["amount"], entry["order_id"], entry["org_id"]) == (
        "emergency",
        "market_services",
        "150.00",
        oid,
        world.bank.pk,
    )
    # The recipient's credits are honoured as for a volunteer's service: 180 minutes redeemed.
    assert balance(recipient, "reserve") == 420
    tx = Transaction.objects.get(pk=body["transaction_id"])
    assert tx.kind == "service_redemption" and tx.minutes == 180
    assert OrderEvent.objects.filter(order_id=oid, action="buy-service", to_state="confirmed").count() == 1
    assert ledger_problems(world.bank.pk) == []
    # Once only: the order is no longer waiting.
    again = buy(world, "head_office_admin", oid, org_id=world.bank.pk)
    assert again.status_code == 409 and error_code(again) == "invalid_transition"
    assert FundEntry.objects.filter(order=oid).count() == 1 and balance(recipient, "reserve") == 420
    # The recipient can still review the service; the disclosure counts it.
    assert world.api("recipient").post(f"/api/v1/orders/{oid}/review", {"rating": 4}).status_code == 200
    report = disclosure(world, world.bank)
    assert report["services"]["orders_completed"] == 1 and report["services"]["orders_bought_by_fund"] == 1
    assert report["services"]["service_minutes"] == 90
    emergency = {f["fund"]: f for f in report["funds"]}["emergency"]
    assert emergency["expense"] == "150.00" and emergency["net"] == "50.00"
    assert {k["kind"]: k["amount"] for k in report["expense"]["by_kind"]}["market_services"] == "150.00"


def test_the_emergency_fund_refusals_move_nothing(world: World, cleaning: ServiceItem) -> None:
    recipient = world.members["recipient"]
    subsidy = place_order(world, cleaning, payer="subsidy")
    past_dispatch_time(subsidy)
    resp = buy(world, "staff", subsidy)
    assert resp.status_code == 409 and error_code(resp) == "not_paid_from_time"
    ledger.do_adjustment(None, member=recipient, minutes=200, bucket="reserve", reason="开户")
    oid = place_order(world, cleaning, minutes=90)
    past_dispatch_time(oid)
    ledger.do_transfer(
        world.users["recipient"], from_member=recipient, to_member=None, minutes=100, kind="donation", memo="捐"
    )
    poor = buy(world, "staff", oid)  # 180 needed, 100 left
    assert poor.status_code == 409 and error_code(poor) == "insufficient_balance"
    for amount in ("0", "-5", "1.001", 1.5, "1e2"):
        assert buy(world, "staff", oid, amount=amount).status_code == 422, amount
    assert buy(world, "staff", oid, provider="").status_code == 422
    assert buy(world, "staff", oid, provider="家政 13912345678").status_code == 422
    assert buy(world, "staff", oid, occurred_on="2999-01-01").status_code == 422
    assert (
        world.api("staff").post("/api/v1/orders/99999999/buy-service", {"amount": "1", "provider": "x"}).status_code
        == 404
    )
    assert not FundEntry.objects.exists()
    assert Order.objects.get(pk=oid).state == "requested" and balance(recipient, "reserve") == 100


# --- no personal data ---


def test_the_disclosure_never_shows_a_name_phone_or_id_number(world: World, books: None, cleaning: ServiceItem) -> None:
    id_number = new_id_number(dt.date(1948, 7, 9))
    elder = do_register_member(
        None,
        home_org=world.community,
        data=MemberInput(
            name="欧阳秀兰",
            id_number=id_number,
            roles=["recipient"],
            phone="13912345678",
            birth_date=dt.date(1948, 7, 9),
            gender="female",
            address="顺河街 8 号",
        ),
        approved=True,
    )
    secrets = {"欧阳秀兰", "13912345678", mask_phone("13912345678"), id_number, elder.id_number_masked, "顺河街 8 号"}
    secrets |= {m.name for m in world.members.values()} | {m.phone for m in world.members.values() if m.phone}
    # Personal details typed where staff write freely: none of it may reach the public.
    book(
        world,
        "staff",
        income(world.community, "66", "residents", donor_name="欧阳秀兰", description="欧阳秀兰 13912345678"),
    )
    book(world, "staff", income(world.community, "8", "society", donor_name="王秀英", description=id_number))
    world.api("staff").post(
        "/api/v1/funds/in-kind",
        {
            "org_id": world.community.pk,
            "source": "residents",
            "donor_name": "李大爷",
            "estimated_value": "30",
            "occurred_on": DAY,
            "item_description": "李大爷 送的鸡蛋",
            "description": "电话 13800000000",
        },
    )
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    oid = place_order(world, cleaning)
    book(world, "staff", income(world.community, "150", fund="emergency"))
    assert buy(world, "staff", oid, unfillable=True, note="李大爷 家里没人能去").status_code == 200
    anonymous = world.api("anonymous")
    outputs = {
        "json": anonymous.get("/api/v1/disclosure", {"org_id": world.bank.pk}).content.decode(),
        "json_community": anonymous.get("/api/v1/disclosure", {"org_id": world.community.pk}).content.decode(),
        "html": anonymous.get(f"/disclosure/{world.community.pk}/").content.decode(),
        "html_bank": anonymous.get(f"/disclosure/{world.bank.pk}/", {"from": "2025-01-01"}).content.decode(),
        "index": anonymous.get("/disclosure/").content.decode(),
    }
    pdf = anonymous.get(f"/disclosure/{world.community.pk}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    if shutil.which("pdftotext"):
        outputs["pdf"] = pdf_text(pdf.content)
        assert "顺河社区" in outputs["pdf"] and "居民筹集" in outputs["pdf"]
    for where, text in outputs.items():
        leaked = sorted(s for s in secrets if s and s in text)
        assert leaked == [], (where, leaked)
    # What is disclosed: the totals, and the enterprise that gave.
    assert "鲁南爱心超市" in outputs["html"] and "居民筹集" in outputs["html"]


def pdf_text(content: bytes) -> str:
    done = subprocess.run(["pdftotext", "-", "-"], input=content, capture_output=True, check=True)  # noqa: S607
    return done.stdout.decode()


def test_the_pdf_prints_the_same_totals(world: World, books: None) -> None:
    resp = world.api("anonymous").get(f"/disclosure/{world.bank.pk}/pdf", {"from": "2025-01-01", "to": "2025-12-31"})
    assert resp.status_code == 200 and resp["Content-Type"] == "application/pdf"
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (poppler-utils) is not installed")
    text = pdf_text(resp.content)
    assert "台儿庄区时间银行 资金与服务公示" in text and "2025-01-01 至 2025-12-31" in text
    for figure in ("55200.79", "2285.50", "1200.50", "999.99", "鲁南爱心超市", "运河街道"):
        assert figure in text, figure


def test_bad_disclosure_requests_are_4xx(world: World) -> None:
    anonymous = world.api("anonymous")
    for params in (
        {"org_id": world.bank.pk, "from": "2025-07-01", "to": "2025-01-01"},
        {"org_id": world.bank.pk, "from": "1900-01-01"},
        {"org_id": world.bank.pk, "to": "9999-12-31"},
        {"org_id": world.bank.pk, "from": "yesterday"},
        {"org_id": 2**63},
        {"org_id": "abc"},
        {},
    ):
        assert anonymous.get("/api/v1/disclosure", params).status_code == 422, params
    assert anonymous.get("/api/v1/disclosure", {"org_id": 999999}).status_code == 404
    for url, params in (
        (f"/disclosure/{world.bank.pk}/", {"from": "2025-02-30"}),
        (f"/disclosure/{world.bank.pk}/", {"to": "9999-12-31"}),
        (f"/disclosure/{world.bank.pk}/", {"from": "2025-07-01", "to": "2025-01-01"}),
        (f"/disclosure/{world.bank.pk}/pdf", {"from": "2025-1-1"}),
        (f"/disclosure/{world.bank.pk}/pdf", {"from": "\x00"}),
    ):
        assert anonymous.get(url, params).status_code == 400, (url, params)
    for url in (
        "/disclosure/999999/",
        "/disclosure/99999999999999999999999/",
        "/disclosure/999999/pdf",
        "/disclosure/0/",
    ):
        assert anonymous.get(url).status_code == 404, url
    assert anonymous.post(f"/disclosure/{world.bank.pk}/").status_code == 405
    index = anonymous.get("/disclosure/")
    assert index.status_code == 200 and world.bank.name in index.content.decode()


def test_the_disclosure_speaks_english_too(world: World, books: None) -> None:
    resp = world.api("anonymous").get(f"/disclosure/{world.bank.pk}/", HTTP_ACCEPT_LANGUAGE="en")
    assert resp.status_code == 200
    assert "Government" in resp.content.decode()
    api = world.api("anonymous").get("/api/v1/disclosure", {"org_id": world.bank.pk}, HTTP_ACCEPT_LANGUAGE="en")
    assert api.json()["income"]["by_source"][0]["label"] == "Government"
    pdf = world.api("anonymous").get(f"/disclosure/{world.bank.pk}/pdf", HTTP_ACCEPT_LANGUAGE="en")
    assert pdf.status_code == 200
