"""The outlet counter, the member's goods and vouchers, and the management pages (settlement and its report,
rules, funds, safety lists, catalogue and menu), through Django's test client: who may open what, what every
page carries, and the stories behind the forms, including refusals, bad input and double submits."""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from openpyxl import load_workbook

from tests.conftest import World, make_member, web_client
from tests.test_web_pages import CJK, PERSONAS, _data_strings, page_problems, read
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import MenuEntry, ServiceItem
from timebank.funds.actions import EntryInput, do_record_entry
from timebank.funds.models import FundEntry
from timebank.goods import actions as goods_actions
from timebank.goods.models import Goods, Redemption, StockMovement
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account, Settlement, SettlementStatus, Transaction
from timebank.ledger.settlement import do_settle, start_settlement
from timebank.ledger.settlement_report import write_report
from timebank.members.models import Certificate, Member
from timebank.orgs.models import Rules
from timebank.safety.actions import do_add_certificate, do_add_insurance_policy, do_create_training
from timebank.safety.models import TrainingAttendance, TrainingSession

MANAGERS = {
    "superuser",
    "head_office_admin",
    "branch_admin",
    "staff",
    "staff_next",
    "other_bank_admin",
    "other_bank_staff",
}
MEMBERS = {"volunteer", "recipient", "relative", "neighbour", "stranger"}
OUTLET_STAFF = {"superuser", "head_office_admin", "branch_admin", "staff"}


def balance(member: Member, kind: str) -> int:
    return Account.objects.get(member=member, kind=kind).balance_minutes


@dataclass
class Shop:
    world: World
    rice: Goods
    oil: Goods
    redemption: Redemption
    settlement: Settlement
    training: TrainingSession
    entry: FundEntry
    item: ServiceItem

    def client(self, persona: str, *, lang: str | None = None) -> Client:
        return web_client(None if persona == "anonymous" else self.world.users[persona], lang=lang)


@pytest.fixture
def shop(world: World) -> Shop:
    cache.clear()  # forms claimed by an earlier test (same user ids) must not look like double submits here
    volunteer = world.members["volunteer"]
    do_adjustment(None, member=volunteer, minutes=300, bucket="goods", reason="开户")
    rice = goods_actions.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=60, stock=5)
    oil = goods_actions.do_create_goods(None, outlet=world.outlet, name="食用油", price_minutes=90, stock=0)
    redemption, _replayed = goods_actions.do_redeem(
        world.users["volunteer"], member=volunteer, goods=rice, quantity=1, outlet=world.outlet, idempotency_key="k1"
    )
    # An early settlement (nothing was earned before it): later ones must be for a later day.
    settlement, _already = do_settle(
        world.users["head_office_admin"], world.bank, timezone.localdate() - dt.timedelta(days=30)
    )
    training = do_create_training(
        world.users["staff"], org=world.community, title="急救培训", held_on=timezone.localdate(), kind="first_aid"
    )
    entry, _replayed = do_record_entry(
        world.users["staff"],
        world.community,
        EntryInput(direction="income", amount="500.00", occurred_on=timezone.localdate(), source="government"),
    )
    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    today = timezone.localdate()
    do_add_insurance_policy(
        None,
        volunteer,
        insurer="人保财险",
        policy_number="PA-2024-0001",
        starts_on=today - dt.timedelta(days=300),
        ends_on=today + dt.timedelta(days=10),
    )
    do_add_certificate(
        None,
        volunteer,
        kind="first_aid",
        issuer="红十字会",
        valid_from=today - dt.timedelta(days=700),
        valid_until=today + dt.timedelta(days=20),
    )
    return Shop(world, rice, oil, redemption, settlement, training, entry, item)


def page_table(s: Shop) -> list[tuple[str, set[str]]]:
    w = s.world
    return [
        ("/me/goods/", MEMBERS),
        ("/me/vouchers/", MEMBERS),
        (f"/me/vouchers/{s.redemption.pk}/", {"volunteer"}),
        (f"/outlet/{w.outlet.pk}/", OUTLET_STAFF),
        (f"/outlet/{w.community.pk}/", OUTLET_STAFF),
        (f"/outlet/{w.outlet.pk}/redeem/?q=王", OUTLET_STAFF),
        ("/outlet/voucher/", MANAGERS),
        (f"/outlet/voucher/?code={s.redemption.voucher_code}", OUTLET_STAFF),
        ("/manage/", MANAGERS),
        (f"/bank/{w.bank.pk}/rules/", {"superuser", "head_office_admin", "branch_admin", "staff", "staff_next"}),
        (f"/bank/{w.bank.pk}/settlements/", {"superuser", "head_office_admin"}),
        (f"/bank/{w.bank.pk}/settlements/{s.settlement.pk}/", {"superuser", "head_office_admin"}),
        (f"/bank/{w.bank.pk}/catalogue/", {"superuser", "head_office_admin"}),
        (f"/menu/{w.community.pk}/", OUTLET_STAFF),
        (f"/funds/{w.community.pk}/", OUTLET_STAFF),
        (f"/funds/{w.bank.pk}/", {"superuser", "head_office_admin"}),
        ("/safety/", MANAGERS),
        ("/safety/?status=uninsured&days=60", MANAGERS),
        ("/safety/certificates/", MANAGERS),
        ("/safety/trainings/", MANAGERS),
        (f"/safety/trainings/{s.training.pk}/", OUTLET_STAFF),
    ]


def test_each_page_opens_for_its_people_only_and_is_well_formed(shop: Shop) -> None:
    problems = []
    clients = {p: shop.client(p) for p in PERSONAS}
    for url, allowed in page_table(shop):
        for persona in PERSONAS:
            response = clients[persona].get(url)
            if persona in allowed:
                ok = response.status_code == 200
                if ok:
                    problems += page_problems(f"{persona} {url}", response)
            elif persona == "anonymous":
                ok = response.status_code == 302 and response["Location"].startswith("/login/")
            else:
                ok = response.status_code in (403, 404)
                if ok:
                    problems += page_problems(f"{persona} {url} (refused)", response)
            if not ok:
                problems.append(f"{persona} {url} → {response.status_code}")
    assert problems == [], "\n".join(problems)


def test_choosers_go_straight_to_the_callers_own_place(shop: Shop) -> None:
    w = shop.world
    staff = shop.client("staff")
    assert staff.get("/outlet/")["Location"] == f"/outlet/{w.outlet.pk}/"
    assert staff.get("/menu/")["Location"] == f"/menu/{w.community.pk}/"
    assert staff.get("/funds/")["Location"] == f"/funds/{w.community.pk}/"
    assert shop.client("branch_admin").get("/outlet/")["Location"] == f"/outlet/{w.outlet.pk}/"
    bank = shop.client("head_office_admin").get("/outlet/").content.decode()
    assert f"/outlet/{w.outlet.pk}/" in bank and f"/outlet/{w.community2.pk}/" in bank
    assert f"/outlet/{w.other_community.pk}/" not in bank
    assert shop.client("superuser").get("/funds/").status_code == 200
    assert shop.client("operator").get("/outlet/").status_code == 403
    assert shop.client("volunteer").get("/manage/").status_code == 403


def test_navigation_leads_to_the_new_pages(shop: Shop) -> None:
    assert 'href="/manage/"' in shop.client("staff").get("/staff/").content.decode()
    assert 'href="/manage/"' not in shop.client("operator").get("/staff/").content.decode()
    assert 'href="/me/goods/"' in shop.client("volunteer").get("/me/time/").content.decode()
    hub = shop.client("staff").get("/manage/").content.decode()
    assert f"/bank/{shop.world.bank.pk}/rules/" in hub and "/settlements/" not in hub
    assert "/settlements/" in shop.client("head_office_admin").get("/manage/").content.decode()


def test_english_pages_have_no_untranslated_chinese(shop: Shop) -> None:
    data = _data_strings()
    data |= set(Goods.objects.values_list("name", flat=True))
    data |= set(TrainingSession.objects.values_list("title", flat=True))
    data |= set(Certificate.objects.values_list("issuer", flat=True))
    data |= {"人保财险"}
    ordered = sorted((d for d in data if d), key=len, reverse=True)
    leftovers = []
    clients = {p: shop.client(p, lang="en") for p in PERSONAS}
    for url, allowed in page_table(shop):
        for persona in sorted(allowed):
            response = clients[persona].get(url)
            assert response.status_code == 200, (persona, url)
            page = read(response)
            text = " ".join([page.title, *page.text])
            for value in ordered:
                text = text.replace(value, " ")
            if CJK.search(text):
                snippet = next(
                    m.group(0) for m in re.finditer(r".{0,15}[\u3400-\u9fff\u3000-\u303f\uff00-\uffef].{0,15}", text)
                )
                leftovers.append(f"{persona} {url}: {snippet!r}")
    assert leftovers == [], "\n".join(leftovers)


# ---------------------------------------------------------------------------------------------
# The outlet counter
# ---------------------------------------------------------------------------------------------


def _key(html: str, name: str = "idempotency_key") -> str:
    found = re.search(rf'name="{name}" value="([0-9a-f]{{32}})"', html)
    assert found is not None, name
    return found.group(1)


def test_staff_restock_and_count_at_the_counter(shop: Shop) -> None:
    staff = shop.client("staff")
    rice = shop.rice
    page = staff.get(f"/outlet/{shop.world.outlet.pk}/").content.decode()
    assert "大米 5 斤" in page and "4 件" in page
    key = _key(page, f"r{rice.pk}-idempotency_key")
    form = {f"r{rice.pk}-idempotency_key": key, f"r{rice.pk}-quantity": "10", f"r{rice.pk}-note": "爱心企业捐赠"}
    first = staff.post(f"/outlet/goods/{rice.pk}/restock/", form)
    again = staff.post(f"/outlet/goods/{rice.pk}/restock/", form, follow=True)
    assert first.status_code == 302
    assert "没有重复入库" in again.content.decode()
    rice.refresh_from_db()
    assert rice.stock == 14
    # Bad input: refused, typed values kept, nothing stored.
    bad = staff.post(
        f"/outlet/goods/{rice.pk}/restock/",
        {**form, f"r{rice.pk}-idempotency_key": "b" * 32, f"r{rice.pk}-quantity": "-3"},
    )
    assert bad.status_code == 422 and 'value="-3"' in bad.content.decode()
    counted = staff.post(
        f"/outlet/goods/{rice.pk}/count/", {f"c{rice.pk}-counted": "12", f"c{rice.pk}-note": "月底盘点"}
    )
    assert counted.status_code == 302
    rice.refresh_from_db()
    assert rice.stock == 12
    assert StockMovement.objects.filter(goods=rice, kind="count", change=-2).exists()
    # Another community's staff and an operator are refused; nothing moves.
    assert (
        shop.client("staff_next").post(f"/outlet/goods/{rice.pk}/count/", {f"c{rice.pk}-counted": "0"}).status_code
        == 403
    )
    assert (
        shop.client("operator").post(f"/outlet/goods/{rice.pk}/count/", {f"c{rice.pk}-counted": "0"}).status_code == 403
    )
    assert staff.get(f"/outlet/goods/{rice.pk}/count/").status_code == 405
    rice.refresh_from_db()
    assert rice.stock == 12


def test_staff_add_goods_once(shop: Shop) -> None:
    staff = shop.client("staff")
    url = f"/outlet/{shop.world.outlet.pk}/goods/"
    form = {"idempotency_key": "a" * 32, "name": "毛巾", "price_minutes": "30", "stock": "20"}
    assert staff.post(url, form).status_code == 302
    assert staff.post(url, form).status_code == 302
    assert Goods.objects.filter(name="毛巾").count() == 1
    bad = staff.post(url, {**form, "idempotency_key": "c" * 32, "price_minutes": "0"})
    assert bad.status_code == 422 and "毛巾" in bad.content.decode()
    assert shop.client("staff_next").post(url, {**form, "idempotency_key": "d" * 32}).status_code == 403
    assert Goods.objects.filter(name="毛巾").count() == 1


def test_staff_redeem_for_a_member_at_the_counter(shop: Shop) -> None:
    w = shop.world
    volunteer = w.members["volunteer"]
    staff = shop.client("staff")
    url = f"/outlet/{w.outlet.pk}/redeem/"
    page = staff.get(url, {"q": "王秀"}).content.decode()
    assert "王秀英" in page and "可换物品 4 小时" in page
    assert "赵阿姨" not in staff.get(url, {"q": "赵"}).content.decode()  # another community's member is not listed
    key = _key(page)
    form = {"idempotency_key": key, "q": "王秀", "member": volunteer.pk, "goods": shop.rice.pk, "quantity": "2"}
    before = balance(volunteer, "goods")
    response = staff.post(url, form)
    assert response.status_code == 302 and response["Location"].startswith("/outlet/voucher/?code=")
    assert balance(volunteer, "goods") == before - 120
    again = staff.post(url, form, follow=True)
    assert "没有重复兑换" in again.content.decode()
    assert balance(volunteer, "goods") == before - 120
    # Too many minutes: refused with the reason, the choices kept.
    broke = staff.post(url, {**form, "idempotency_key": "e" * 32, "quantity": "5"})
    assert broke.status_code == 422
    html = broke.content.decode()
    assert "时间不足" in html or "库存不足" in html
    assert 'value="5"' in html
    # Another community's member cannot be chosen here, and other staff cannot use this counter.
    stranger = staff.post(url, {**form, "idempotency_key": "f" * 32, "member": w.members["neighbour"].pk})
    assert stranger.status_code == 422
    assert shop.client("staff_next").post(url, {**form, "idempotency_key": "g" * 32}).status_code == 403
    assert Redemption.objects.filter(member=volunteer).count() == 2


def test_a_voucher_is_checked_by_its_code_and_handed_over_once(shop: Shop) -> None:
    code = shop.redemption.voucher_code
    staff = shop.client("staff")
    typed = " ".join(code[i : i + 4] for i in range(0, 16, 4)).upper()
    page = staff.get("/outlet/voucher/", {"code": typed})
    assert page.status_code == 200
    html = page.content.decode()
    assert "大米 5 斤 × 1" in html and "可以领取" in html and "王秀英" in html
    assert f"/outlet/voucher/{code}/hand-over/" in html
    assert staff.get("/outlet/voucher/", {"code": f"TBV:{code}"}).status_code == 200
    # Another community's staff see nothing of it and cannot hand it over.
    other = shop.client("staff_next")
    refused = other.get("/outlet/voucher/", {"code": code})
    assert refused.status_code == 403 and "大米" not in refused.content.decode()
    assert other.post(f"/outlet/voucher/{code}/hand-over/").status_code == 403
    # Hand over; the second time is refused and says when it was used.
    done = staff.post(f"/outlet/voucher/{code}/hand-over/", follow=True)
    assert "已交付" in done.content.decode()
    shop.redemption.refresh_from_db()
    assert shop.redemption.status == "handed_over"
    used_at = shop.redemption.handed_over_at
    second = staff.post(f"/outlet/voucher/{code}/hand-over/")
    assert second.status_code == 409
    html = second.content.decode()
    assert "已经用过了" in html and "已领取" in html and "交付物品</button>" not in html
    shop.redemption.refresh_from_db()
    assert shop.redemption.handed_over_at == used_at
    assert "已经用过" in staff.get("/outlet/voucher/", {"code": code}).content.decode()
    # A member of another community (通存通兑) collects here too; their name is masked for these staff.
    w = shop.world
    do_adjustment(None, member=w.members["neighbour"], minutes=60, bucket="goods", reason="开户")
    visitor, _replayed = goods_actions.do_redeem(
        w.users["neighbour"],
        member=w.members["neighbour"],
        goods=shop.rice,
        quantity=1,
        outlet=w.outlet,
        idempotency_key="n1",
    )
    masked = staff.get("/outlet/voucher/", {"code": visitor.voucher_code}).content.decode()
    assert "赵**" in masked and "赵阿姨" not in masked
    assert (
        "赵阿姨"
        in shop.client("head_office_admin").get("/outlet/voucher/", {"code": visitor.voucher_code}).content.decode()
    )
    # Bad and unknown codes.
    assert staff.get("/outlet/voucher/", {"code": "not-a-code!"}).status_code == 422
    assert staff.get("/outlet/voucher/", {"code": "\x00"}).status_code == 422
    assert staff.get("/outlet/voucher/", {"code": "ffffffffffffffff"}).status_code == 404
    assert staff.post("/outlet/voucher/zzzz/hand-over/").status_code == 404


# ---------------------------------------------------------------------------------------------
# The member's goods and vouchers
# ---------------------------------------------------------------------------------------------


def test_a_member_redeems_goods_and_sees_the_voucher(shop: Shop) -> None:
    volunteer = shop.world.members["volunteer"]
    client = shop.client("volunteer")
    page = client.get("/me/goods/").content.decode()
    assert "4 小时" in page and "大米 5 斤" in page and "食用油" not in page  # out of stock is not offered
    key = _key(page)
    form = {"idempotency_key": key, "goods": shop.rice.pk, "quantity": "1"}
    first = client.post("/me/goods/", form)
    assert first.status_code == 302
    redemption = Redemption.objects.latest("pk")
    assert first["Location"] == f"/me/vouchers/{redemption.pk}/"
    assert client.post("/me/goods/", form).status_code == 302
    assert Redemption.objects.filter(member=volunteer).count() == 2
    assert balance(volunteer, "goods") == 300 - 120
    voucher = client.get(first["Location"]).content.decode()
    assert "<svg" in voucher and 'class="qr-code"' in voucher
    assert redemption.voucher_code[:4] in voucher
    # Only the member sees their voucher.
    assert shop.client("neighbour").get(first["Location"]).status_code == 403
    # Not enough goods time: the reason, and what was chosen stays chosen.
    broke = client.post("/me/goods/", {**form, "idempotency_key": "h" * 32, "quantity": "9"})
    assert broke.status_code == 422
    assert "不足" in broke.content.decode() and 'value="9"' in broke.content.decode()
    # Another bank's member cannot pick this bank's goods.
    stranger = shop.client("stranger").post("/me/goods/", {**form, "idempotency_key": "i" * 32})
    assert stranger.status_code == 422
    assert shop.client("volunteer").get("/me/vouchers/").status_code == 200
    assert balance(volunteer, "goods") == 180


# ---------------------------------------------------------------------------------------------
# Settlement
# ---------------------------------------------------------------------------------------------


def test_settlement_runs_once_and_says_so_the_second_time(shop: Shop, django_capture_on_commit_callbacks: Any) -> None:
    w = shop.world
    volunteer = w.members["volunteer"]
    do_adjustment(None, member=volunteer, minutes=181, bucket="earned", reason="服务")
    admin = shop.client("head_office_admin")
    url = f"/bank/{w.bank.pk}/settlements/"
    today = timezone.localdate().isoformat()
    with django_capture_on_commit_callbacks(execute=True) as started:
        response = admin.post(url, {"period_end": today})
    assert response.status_code == 302 and len(started) == 1
    settlement = Settlement.objects.get(head_office=w.bank, period_end=today)
    assert response["Location"] == f"{url}{settlement.pk}/"
    assert settlement.status == SettlementStatus.DONE  # the demo's task backend runs at once
    assert (balance(volunteer, "earned"), balance(volunteer, "goods"), balance(volunteer, "reserve")) == (
        0,
        240 + 90,
        91,
    )
    detail = admin.get(response["Location"]).content.decode()
    assert "结算完成" in detail and "report.xlsx" in detail and "hx-trigger" not in detail
    transactions = Transaction.objects.count()
    with django_capture_on_commit_callbacks(execute=True) as started:
        again = admin.post(url, {"period_end": today}, follow=True)
    assert started == []  # nothing was queued the second time
    assert "已经做过了" in again.content.decode() and "没有移动任何时间" in again.content.decode()
    assert Transaction.objects.count() == transactions
    assert balance(volunteer, "goods") == 330
    # Refusals: a future date, a date before the last settlement, bad input, other people.
    future = (timezone.localdate() + dt.timedelta(days=1)).isoformat()
    assert admin.post(url, {"period_end": future}).status_code == 422
    earlier = admin.post(url, {"period_end": (timezone.localdate() - dt.timedelta(days=60)).isoformat()})
    assert earlier.status_code == 422 and "更晚的结算" in earlier.content.decode()
    assert admin.post(url, {"period_end": "2024-13-45"}).status_code == 422
    assert admin.post(url, {"period_end": "\x00"}).status_code == 422
    for persona in ("branch_admin", "staff", "other_bank_admin", "volunteer"):
        assert shop.client(persona).post(url, {"period_end": today}).status_code == 403, persona
    assert Settlement.objects.filter(head_office=w.bank).count() == 2
    other = shop.client("other_bank_admin").get(f"/bank/{w.bank.pk}/settlements/{settlement.pk}/report.xlsx")
    assert other.status_code == 403
    assert admin.get(f"/bank/{w.other_bank.pk}/settlements/{settlement.pk}/").status_code == 403


def test_a_running_settlement_shows_progress_and_can_continue(
    shop: Shop, django_capture_on_commit_callbacks: Any
) -> None:
    w = shop.world
    do_adjustment(None, member=w.members["volunteer"], minutes=60, bucket="earned", reason="服务")
    settlement, _already = start_settlement(w.users["head_office_admin"], w.bank, timezone.localdate())
    admin = shop.client("head_office_admin")
    base = f"/bank/{w.bank.pk}/settlements/{settlement.pk}/"
    fragment = admin.get(base + "progress/", HTTP_HX_REQUEST="true").content.decode()
    assert "<progress" in fragment and 'hx-trigger="every 1s"' in fragment and "<html" not in fragment
    report = admin.get(base + "report.xlsx", follow=True)
    assert "结算完成以后才能下载报表" in report.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(base + "resume/").status_code == 302
    settlement.refresh_from_db()
    assert settlement.status == SettlementStatus.DONE and settlement.members == 1
    fragment = admin.get(base + "progress/").content.decode()
    assert "hx-trigger" not in fragment and "结算完成" in fragment
    assert "没有再移动" in admin.post(base + "resume/", follow=True).content.decode()
    assert admin.get(f"/bank/{w.bank.pk}/settlements/{10**15}/").status_code == 404


def test_the_settlement_report_opens_and_shows_masked_id_numbers_only(shop: Shop) -> None:
    w = shop.world
    odd = make_member(w.community, "=1+1", roles=["volunteer"])
    for member in (w.members["volunteer"], w.members["neighbour"], odd):
        do_adjustment(None, member=member, minutes=120, bucket="earned", reason="服务")
    settlement, _already = do_settle(w.users["head_office_admin"], w.bank, timezone.localdate())
    response = shop.client("head_office_admin").get(f"/bank/{w.bank.pk}/settlements/{settlement.pk}/report.xlsx")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert "attachment" in response["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.getvalue()))
    assert book.sheetnames == ["汇总", "会员明细", "各机构合计"]
    rows = list(book["会员明细"].iter_rows(values_only=True))
    assert len(rows) == 1 + 3
    cells = [str(c) for row in book.worksheets for r in row.iter_rows(values_only=True) for c in r if c is not None]
    full_numbers = [m.id_number() for m in Member.objects.all()]
    assert not any(number in cell for number in full_numbers for cell in cells)
    masked = [r[2] for r in rows[1:]]
    assert all(re.fullmatch(r"\d{4}\*{10}[\dX]{4}", m) for m in masked), masked
    names = {r[1] for r in rows[1:]}
    assert names == {"王秀英", "赵阿姨", "=1+1"}
    formula_cell = next(c for c in book["会员明细"]["B"] if c.value == "=1+1")
    assert formula_cell.data_type == "s"
    totals = {r[0]: r for r in book["各机构合计"].iter_rows(min_row=2, values_only=True)}
    assert totals["顺河社区"][1:5] == (2, 240, 120, 120)
    assert totals["泥沟村"][1:5] == (1, 120, 60, 60)
    # A reader who may not see a community's people gets masked names (the ID numbers are masked for everyone).
    out = io.BytesIO()
    write_report(settlement, w.users["branch_admin"], out)
    names = {r[1] for r in load_workbook(out)["会员明细"].iter_rows(min_row=2, values_only=True)}
    assert names == {"王秀英", "赵**", "=1+1"}
    english = shop.client("head_office_admin", lang="en").get(
        f"/bank/{w.bank.pk}/settlements/{settlement.pk}/report.xlsx"
    )
    assert load_workbook(io.BytesIO(english.getvalue())).sheetnames == [
        "Summary",
        "Members",
        "Totals by org",
    ]


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


def _rules_form(**changes: Any) -> dict[str, Any]:
    form = {
        "ordinary": "1",
        "technical": "2",
        "professional": "3",
        "settlement_period": "year",
        "goods_share_percent": "40",
        "overdraft_minutes": "60",
        "star_thresholds_hours": "100, 300, 600",
        "reserve_min_age": "60",
        "require_insurance_to_dispatch": "on",
        "dispatch_within_hours": "12",
        "confirm_grace_minutes": "15",
        "return_visit_after_days": "3",
        "welfare_check_every_days": "7",
        "welfare_check_categories": ["living_alone", "disabled"],
        "checkin_early_minutes": "45",
        "checkout_grace_minutes": "5",
        "serve_relatives": "on",
        "approval_threshold_minutes": "",
    }
    form.update(changes)
    return form


def test_head_office_admins_change_the_rules_and_staff_read_them(shop: Shop) -> None:
    w = shop.world
    url = f"/bank/{w.bank.pk}/rules/"
    admin = shop.client("head_office_admin")
    page = admin.get(url).content.decode()
    assert 'name="goods_share_percent"' in page and 'value="50"' in page
    response = admin.post(url, _rules_form(technical="2.5"))
    assert response.status_code == 302
    rules = Rules.objects.get(head_office=w.bank)
    assert rules.multipliers == {"ordinary": 1, "technical": 2.5, "professional": 3}
    assert (rules.settlement_period, rules.goods_share_percent, rules.overdraft_minutes) == ("year", 40, 60)
    assert rules.star_thresholds_hours == [100, 300, 600] and rules.reserve_min_age == 60
    assert rules.require_insurance_to_dispatch and not rules.allow_volunteer_take
    assert rules.welfare_check_categories == ["living_alone", "disabled"]
    # The trust rules: an empty approval threshold turns four eyes off.
    assert (rules.checkin_early_minutes, rules.checkout_grace_minutes, rules.serve_relatives) == (45, 5, True)
    assert rules.approval_threshold_minutes is None
    assert AuditEntry.objects.filter(action="rules.update").exists()
    # Validation: each refusal names the field, keeps what was typed, and changes nothing.
    for bad, words in (
        ({"star_thresholds_hours": "300, 100"}, "逐级递增"),
        ({"star_thresholds_hours": "一百"}, "整数"),
        ({"ordinary": "0"}, "ordinary"),
        ({"goods_share_percent": "101"}, "goods_share_percent"),
        ({"dispatch_within_hours": "0"}, "dispatch_within_hours"),
        ({"welfare_check_categories": ["nonsense"]}, "welfare_check_categories"),
        ({"checkin_early_minutes": "-1"}, "checkin_early_minutes"),
        ({"approval_threshold_minutes": "0"}, "approval_threshold_minutes"),
    ):
        refused = admin.post(url, _rules_form(**bad))
        assert refused.status_code == 422, bad
        assert words in refused.content.decode(), bad
    assert "300, 100" in admin.post(url, _rules_form(star_thresholds_hours="300, 100")).content.decode()
    assert Rules.objects.get(head_office=w.bank).goods_share_percent == 40
    # Staff read them; they cannot change them.
    staff = shop.client("staff")
    read_only = staff.get(url).content.decode()
    assert 'name="goods_share_percent"' not in read_only and "40%" in read_only and "100, 300, 600" in read_only
    assert staff.post(url, _rules_form(goods_share_percent="90")).status_code == 403
    assert shop.client("other_bank_admin").post(url, _rules_form(goods_share_percent="90")).status_code == 403
    assert Rules.objects.get(head_office=w.bank).goods_share_percent == 40
    assert shop.client("head_office_admin").get(f"/bank/{w.community.pk}/rules/").status_code == 404


# ---------------------------------------------------------------------------------------------
# Funds
# ---------------------------------------------------------------------------------------------


def test_staff_record_and_reverse_fund_entries(shop: Shop) -> None:
    w = shop.world
    staff = shop.client("staff")
    url = f"/funds/{w.community.pk}/"
    page = staff.get(url).content.decode()
    assert "500.00" in page and "政府投入" in page and f"/disclosure/{w.community.pk}/" in page
    form = {
        "idempotency_key": _key(page),
        "category": "income:enterprise",
        "amount": "1280.50",
        "occurred_on": timezone.localdate().isoformat(),
        "fund": "general",
        "description": "春节慰问",
        "donor_name": "鲁南超市",
        "provider": "",
    }
    assert staff.post(url, form).status_code == 302
    again = staff.post(url, form, follow=True)
    assert "没有重复记账" in again.content.decode()
    assert FundEntry.objects.filter(donor_name="鲁南超市").count() == 1
    assert "1780.50" in staff.get(url).content.decode()
    for bad in (
        {"amount": "1e3"},
        {"amount": "12.345"},
        {"amount": "-5"},
        {"category": "income:nonsense"},
        {"occurred_on": (timezone.localdate() + dt.timedelta(days=2)).isoformat()},
        {"category": "expense:insurance"},  # an expense has no donor
        {"description": "x" * 501},
    ):
        refused = staff.post(url, {**form, "idempotency_key": "j" * 32, **bad})
        assert refused.status_code == 422, bad
        assert "春节慰问" in refused.content.decode() or "x" * 100 in refused.content.decode()
    assert FundEntry.objects.count() == 2
    # A person's name is never disclosed as an enterprise: the action's refusal shows next to the form.
    person = staff.post(url, {**form, "idempotency_key": "k" * 32, "donor_name": "王秀英"})
    assert person.status_code == 422 and "居民筹集" in person.content.decode()
    # Reverse, once; other staff cannot.
    entry = FundEntry.objects.get(donor_name="鲁南超市")
    assert (
        shop.client("staff_next")
        .post(f"/funds/entries/{entry.pk}/reverse/", {f"x{entry.pk}-reason": "记错"})
        .status_code
        == 403
    )
    no_reason = staff.post(f"/funds/entries/{entry.pk}/reverse/", {f"x{entry.pk}-reason": ""}, follow=True)
    assert "冲正的原因" in no_reason.content.decode()
    done = staff.post(
        f"/funds/entries/{entry.pk}/reverse/", {f"x{entry.pk}-reason": "金额记错", "next": url}, follow=True
    )
    assert "已冲正" in done.content.decode()
    twice = staff.post(f"/funds/entries/{entry.pk}/reverse/", {f"x{entry.pk}-reason": "再冲一次"}, follow=True)
    assert "已经冲正过了" in twice.content.decode()
    assert FundEntry.objects.filter(reverses=entry).count() == 1
    assert "500.00" in staff.get(url).content.decode()
    assert shop.client("staff_next").post(f"/funds/{w.community.pk}/", form).status_code == 403


# ---------------------------------------------------------------------------------------------
# Safety lists and training
# ---------------------------------------------------------------------------------------------


def test_safety_lists_show_the_callers_people_only(shop: Shop) -> None:
    staff = shop.client("staff")
    insurance = staff.get("/safety/").content.decode()
    assert "王秀英" in insurance and "保险快到期" in insurance and "人保财险" in insurance
    assert "赵阿姨" not in insurance and "陈先生" not in insurance
    uninsured = shop.client("branch_admin").get("/safety/", {"status": "uninsured"}).content.decode()
    assert "王秀英" not in uninsured
    assert "赵阿姨" in shop.client("head_office_admin").get("/safety/", {"status": "uninsured"}).content.decode()
    assert staff.get("/safety/", {"status": "nonsense", "days": "x"}).status_code == 200
    certificates = staff.get("/safety/certificates/").content.decode()
    assert "王秀英" in certificates and "红十字会" in certificates
    assert "王秀英" not in shop.client("staff_next").get("/safety/certificates/").content.decode()


def test_staff_record_training_and_attendance(shop: Shop) -> None:
    w = shop.world
    staff = shop.client("staff")
    response = staff.post(
        "/safety/trainings/",
        {
            "org": w.community.pk,
            "title": "护理培训",
            "held_on": timezone.localdate().isoformat(),
            "kind": "nursing",
            "grants_certificate": "nursing",
            "certificate_valid_years": "2",
        },
    )
    assert response.status_code == 302
    session = TrainingSession.objects.get(title="护理培训")
    assert response["Location"] == f"/safety/trainings/{session.pk}/"
    page = staff.get(response["Location"], {"q": "王"}).content.decode()
    assert "王秀英" in page
    volunteer = w.members["volunteer"]
    recorded = staff.post(
        response["Location"],
        {"member": volunteer.pk, "attended": "on", "result": "passed", "score": "92.5"},
        follow=True,
    )
    assert "证书已发" in recorded.content.decode()
    attendance = TrainingAttendance.objects.get(session=session, member=volunteer)
    assert attendance.assessment == "passed" and attendance.certificate is not None
    refused = staff.post(response["Location"], {"member": volunteer.pk, "result": "passed"})
    assert refused.status_code == 422  # not attended, yet passed
    assert staff.post(response["Location"], {"member": w.members["neighbour"].pk, "result": "none"}).status_code == 422
    assert (
        shop.client("staff_next").post(response["Location"], {"member": volunteer.pk, "attended": "on"}).status_code
        == 403
    )
    future = staff.post(
        "/safety/trainings/",
        {
            "org": w.community.pk,
            "title": "下月培训",
            "held_on": (timezone.localdate() + dt.timedelta(days=30)).isoformat(),
            "kind": "general",
            "certificate_valid_years": "3",
        },
    )
    later = TrainingSession.objects.get(title="下月培训")
    assert "还没有举行" in staff.get(future["Location"]).content.decode()
    assert (
        staff.post(
            f"/safety/trainings/{later.pk}/", {"member": volunteer.pk, "attended": "on", "result": "none"}
        ).status_code
        == 422
    )
    other_org = staff.post(
        "/safety/trainings/",
        {
            "org": w.community2.pk,
            "title": "别处",
            "held_on": "2025-01-01",
            "kind": "general",
            "certificate_valid_years": "3",
        },
    )
    assert other_org.status_code == 422
    assert not TrainingSession.objects.filter(title="别处").exists()


# ---------------------------------------------------------------------------------------------
# Catalogue and menu
# ---------------------------------------------------------------------------------------------


def test_head_office_admins_add_catalogue_items(shop: Shop) -> None:
    w = shop.world
    admin = shop.client("head_office_admin")
    url = f"/bank/{w.bank.pk}/catalogue/"
    form = {
        "name": "心理疏导",
        "category": "health_care",
        "tier": "professional",
        "requires_certificate": "counselling",
    }
    assert admin.post(url, form).status_code == 302
    item = ServiceItem.objects.get(name="心理疏导")
    assert (item.tier, item.requires_certificate) == ("professional", "counselling")
    duplicate = admin.post(url, form)
    assert duplicate.status_code == 422 and "同名" in duplicate.content.decode()
    assert admin.post(url, {**form, "name": "x", "tier": "legendary"}).status_code == 422
    assert shop.client("staff").post(url, {**form, "name": "别的"}).status_code == 403
    assert shop.client("other_bank_admin").post(url, {**form, "name": "别的"}).status_code == 403
    assert ServiceItem.objects.filter(head_office=w.bank).count() == 2


def test_community_staff_publish_their_menu(shop: Shop) -> None:
    w = shop.world
    staff = shop.client("staff")
    url = f"/menu/{w.community.pk}/{shop.item.pk}/"
    prefix = f"i{shop.item.pk}"
    response = staff.post(
        url, {f"{prefix}-offered": "on", f"{prefix}-times": "每周二上午", f"{prefix}-place": "社区活动室"}
    )
    assert response.status_code == 302
    entry = MenuEntry.objects.get(org=w.community, item=shop.item)
    assert entry.active and entry.times == "每周二上午"
    assert "已发布" in staff.get(f"/menu/{w.community.pk}/").content.decode()
    staff.post(url, {f"{prefix}-times": "每周二上午"})
    entry.refresh_from_db()
    assert not entry.active
    assert staff.post(url, {f"{prefix}-times": "x" * 201}).status_code == 422
    assert shop.client("staff_next").post(url, {f"{prefix}-offered": "on"}).status_code == 403
    assert staff.post(f"/menu/{w.community.pk}/{10**12}/", {}).status_code == 404
    assert staff.get(f"/menu/{w.branch.pk}/").status_code == 404  # a branch has no menu of its own
