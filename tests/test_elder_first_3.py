"""Issue 14, "Wrong or confusing words and numbers" and "Forms": statement lines in the member's words, the two
totals of 我的时间 labelled and explained, 8-digit voucher codes shown 4+4, consent boxes one per row, and the
staff member form's phone checked as the join form checks it."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tests.conftest import World, new_id_number, web_client
from tests.test_orders import run_loop
from timebank.catalogue.actions import do_create_service_item
from timebank.goods import actions as goods_actions
from timebank.goods.models import Redemption
from timebank.goods.views import grouped_code
from timebank.ledger import actions as ledger
from timebank.members.models import Member


def statement_lines(html: str) -> list[str]:
    """The first span of each statement line: what happened."""
    body = html[html.index('<ul class="statement">') :]
    body = body[: body.index("</ul>")]
    return [re.sub(r"\s+", " ", m).strip() for m in re.findall(r"<li>\s*<span>(.*?)</span>", body, re.S)]


def test_statement_lines_say_what_happened_to_the_member(world: World) -> None:
    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    run_loop(world, item, 60)  # paid from the recipient's stored time: one service_redemption for both
    ledger.do_adjustment(None, member=world.members["relative"], minutes=60, bucket="reserve", reason="开户")
    ledger.do_transfer(
        None, from_member=world.members["relative"], to_member=world.members["recipient"], minutes=30, kind="relative"
    )
    volunteer = statement_lines(web_client(world.users["volunteer"]).get("/me/time/").content.decode())
    recipient = statement_lines(web_client(world.users["recipient"]).get("/me/time/").content.decode())
    relative = statement_lines(web_client(world.users["relative"]).get("/me/time/").content.decode())
    # The volunteer earned by serving: never 兑换服务 on their side.
    assert volunteer[0].startswith("服务他人") and "家庭保洁" in volunteer[0]
    assert not any(line.startswith("兑换服务") for line in volunteer)
    # The recipient received the gift and used time for a service.
    assert recipient[0].startswith("收到李小明的转赠")
    assert recipient[1].startswith("兑换服务")
    assert recipient[-1].startswith("工作人员补记")
    assert relative[0].startswith("转赠给李大爷")


def test_a_goods_redemption_reads_as_such(world: World) -> None:
    ledger.do_adjustment(None, member=world.members["volunteer"], minutes=300, bucket="goods", reason="开户")
    goods = goods_actions.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=2)
    goods_actions.do_redeem(
        None, member=world.members["volunteer"], goods=goods, quantity=1, outlet=world.outlet, idempotency_key="r1"
    )
    lines = statement_lines(web_client(world.users["volunteer"]).get("/me/time/").content.decode())
    assert lines[0].startswith("兑换物品") and "大米 5 斤" in lines[0]


def test_my_time_labels_both_totals_and_says_why_they_differ(world: World) -> None:
    member = world.members["volunteer"]
    for bucket, minutes in (("earned", 120), ("goods", 60), ("reserve", 30)):
        ledger.do_adjustment(None, member=member, minutes=minutes, bucket=bucket, reason="开户")
    html = web_client(world.users["volunteer"]).get("/me/time/").content.decode()
    total = html[html.index('class="total"') :]
    assert "我的时间一共" in total[:200] and "是下面三部分加起来" in total[:400]
    spendable = html[html.index('class="spendable"') :]
    assert "可以用来换上门服务的" in spendable[:200] and "是“待结算”和“储存”两部分加起来" in spendable[:400]
    assert "为什么两个数不一样" in html and "只能到服务网点换生活用品" in html
    # The numbers: 3½ hours in all, 2½ of them for services.
    assert re.search(r'class="total"><span>[^<]*</span><span class="amount">3 小时 30 分钟</span>', html)
    assert re.search(r'class="spendable"><span>[^<]*</span><span class="amount">2 小时 30 分钟</span>', html)


def test_new_voucher_codes_are_8_digits_shown_4_and_4_and_old_ones_still_work(world: World) -> None:
    ledger.do_adjustment(None, member=world.members["volunteer"], minutes=600, bucket="goods", reason="开户")
    goods = goods_actions.do_create_goods(None, outlet=world.outlet, name="肥皂", price_minutes=10, stock=50)
    codes = set()
    for n in range(20):
        r, _replayed = goods_actions.do_redeem(
            None,
            member=world.members["volunteer"],
            goods=goods,
            quantity=1,
            outlet=world.outlet,
            idempotency_key=f"v{n}",
        )
        assert re.fullmatch(r"[0-9]{8}", r.voucher_code), r.voucher_code
        codes.add(r.voucher_code)
    assert len(codes) == 20
    assert grouped_code(r.voucher_code) == f"{r.voucher_code[:4]} {r.voucher_code[4:]}"
    page = web_client(world.users["volunteer"]).get(f"/me/vouchers/{r.pk}/").content.decode()
    assert f'<span class="voucher-code">{r.voucher_code[:4]} {r.voucher_code[4:]}</span>' in page
    # The outlet types it as read out, with the space; the API takes it too (the contract's path).
    staff = web_client(world.users["staff"])
    found = staff.get("/outlet/voucher/", {"code": f"{r.voucher_code[:4]} {r.voucher_code[4:]}"})
    assert found.status_code == 200 and "肥皂" in found.content.decode()
    assert world.api("staff").get(f"/api/v1/vouchers/{r.voucher_code}").status_code == 200
    # A voucher issued before, with 16 hex characters, is still found and handed over.
    Redemption.objects.filter(pk=r.pk).update(voucher_code="0a1b2c3d4e5f6a7b")
    assert world.api("staff").get("/api/v1/vouchers/0a1b2c3d4e5f6a7b").status_code == 200
    assert world.api("staff").post("/api/v1/vouchers/0a1b2c3d4e5f6a7b/hand-over").status_code == 200
    # Wrong shapes: a plain refusal beside the field, or 404/422, never a 500.
    bad = staff.get("/outlet/voucher/", {"code": "1234 56xz"})
    assert bad.status_code in (200, 422) and "8 位数字" in bad.content.decode()
    assert world.api("staff").get("/api/v1/vouchers/99999999").status_code == 404
    assert world.api("staff").get("/api/v1/vouchers/12%2034").status_code in (404, 422)


class _Fields(HTMLParser):
    """Each `.field` div of a form: its direct children's tags, and whether a checkbox sits inside a label."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.fields: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and "field" in (a.get("class") or "").split():
            self.fields.append({"depth": len(self.stack) + 1, "children": [], "checkbox_in_label": False})
        if self.fields and len(self.stack) == self.fields[-1]["depth"]:
            self.fields[-1]["children"].append((tag, a.get("type"), a.get("name") or a.get("for")))
        if tag == "input" and a.get("type") == "checkbox" and "label" in self.stack and self.fields:
            self.fields[-1]["checkbox_in_label"] = True
        if tag not in ("input", "br", "img", "meta", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


@pytest.mark.parametrize("where", ["join", "staff"])
def test_consent_boxes_are_one_per_row_with_their_help_below(world: World, where: str) -> None:
    """A single checkbox used to be a direct child of its .field, laid out as a reversed row: box, help text and
    label side by side, three squeezed columns on a phone. Now the box sits inside its label (one row) and the
    help text is a paragraph below it."""
    if where == "join":
        html = web_client(None).get("/join/").content.decode()
    else:
        html = web_client(world.users["staff"]).get("/staff/members/new/").content.decode()
    parser = _Fields()
    parser.feed(html)
    consents = [f for f in parser.fields if any("consent_" in (c[2] or "") for c in f["children"])]
    assert len(consents) >= 3
    for f in consents:
        assert f["checkbox_in_label"], f
        tags = [c[0] for c in f["children"]]
        assert "input" not in tags, f  # no checkbox as a direct child: the reversed-row rule no longer applies
        assert tags[0] == "label" and tags[1:2] == ["p"], f  # label (with its box), then the help below
    for scope in ("sensitive_personal_info",):
        match = re.search(rf'<label for="id_consent_{scope}" class="check-label"><input type="checkbox"', html)
        assert match, scope


def _walk_in(world: World, **extra: Any) -> dict[str, Any]:
    return {
        "home_org_id": world.community.pk,
        "name": "孙桂兰",
        "phone": "13912345678",
        "id_number": new_id_number(),
        "birth_date": "1948-04-02",
        "gender": "female",
        "address": "顺河社区 3 号楼",
        "roles": ["recipient"],
        "username": "",
        "consent_sensitive_personal_info": "on",
        **extra,
    }


@pytest.mark.parametrize("phone", ["12345", "1391234567", "139123456789", "23912345678", "0632-12", "电话"])
def test_the_staff_member_forms_refuse_a_phone_that_is_not_one(world: World, phone: str) -> None:
    staff = web_client(world.users["staff"])
    count = Member.objects.count()
    response = staff.post("/staff/members/new/", _walk_in(world, phone=phone))
    html = response.content.decode()
    assert response.status_code == 422 and 'id="id_phone_error_1"' in html and "1 开头的 11 位数字" in html
    assert f'value="{phone}"' in html  # kept as typed
    assert Member.objects.count() == count
    member = world.members["recipient"]
    body = {"name": member.name, "phone": phone, "gender": "female", "roles": ["recipient"]}
    response = staff.post(f"/staff/members/{member.pk}/edit/", body)
    assert response.status_code == 422 and 'id="id_edit_phone_error_1"' in response.content.decode()
    assert Member.objects.get(pk=member.pk).phone == member.phone


def test_the_staff_member_forms_store_a_phone_cleaned(world: World) -> None:
    staff = web_client(world.users["staff"])
    response = staff.post("/staff/members/new/", _walk_in(world, phone="+86 139 1234 5678", name="钱阿姨"))
    assert response.status_code == 302
    assert Member.objects.get(name="钱阿姨").phone == "13912345678"
    member = world.members["recipient"]
    for typed, stored in (("0632 6611234", "06326611234"), ("", "")):
        body = {"name": member.name, "phone": typed, "gender": "female", "roles": ["recipient"]}
        response = staff.post(f"/staff/members/{member.pk}/edit/", body)
        assert response.status_code == 302, response.content.decode()[:2000]
        assert Member.objects.get(pk=member.pk).phone == stored
