"""Attacks on findings 4 and 11 of issue 12 that the first fixes left open (reproduced by an attacker against the
committed code): an elder's goods taken through a relative's reset login, an elder's card locked by another
outlet's staff, password guessing spread over many addresses, and a reusable temporary password."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import World, error_code, web_client
from timebank.audit.models import AuditEntry
from timebank.goods import actions as goods_actions
from timebank.goods.models import Goods, Redemption
from timebank.ledger import actions as ledger
from timebank.notify.models import Notification
from timebank.orgs.actions import do_create_org

PW = "pass-word-1"
# The choices of timebank.orgs (checked against the code at the end of this file).
RESET_HOLD = dt.timedelta(hours=72)
TEMPORARY_VALID = dt.timedelta(hours=72)
GUARD_AFTER = 20
GUARD_WINDOW = dt.timedelta(hours=24)


def token(username: str, password: str, address: str = "127.0.0.1") -> Any:
    return Client().post(
        "/api/v1/auth/token",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def bearer(tok: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {tok}"}


def at(when: dt.datetime) -> Any:
    return mock.patch("django.utils.timezone.now", return_value=when)


@pytest.fixture
def far_shop(world: World) -> Goods:
    """An outlet of 泥沟村, whose staff (staff_next) may not read 李大爷 of 顺河社区; he has goods minutes."""
    outlet = do_create_org(world.users["superuser"], name="泥沟村网点", kind="outlet", parent=world.community2)
    ledger.do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="goods", reason="seed")
    return goods_actions.do_create_goods(None, outlet=outlet, name="香油", price_minutes=60, stock=5)


def redeem_body(world: World, shop: Goods, key: str, code: str | None) -> dict[str, Any]:
    body = {"member_id": world.members["recipient"].pk, "goods_id": shop.pk, "quantity": 1, "outlet_id": shop.outlet_id}
    return {**body, "idempotency_key": key, "member_code": code}


# (a) The relative's login reset by staff of another community ------------------------------------------------


def test_attack_a_staff_resetting_a_relatives_login_cannot_take_the_elders_goods(world: World, far_shop: Goods) -> None:
    elder, son = world.members["recipient"], world.members["relative"]
    hostile = world.api("staff_next")  # 泥沟村: the son's community, not the elder's
    assert hostile.get(f"/api/v1/members/{elder.pk}").status_code in (403, 404)
    tmp = hostile.post(f"/api/v1/members/{son.pk}/password-reset").json()["temporary_password"]
    tok = token("relative", tmp, "10.0.0.1").json()["token"]
    c = Client()
    changed = c.post(
        "/api/v1/me/password",
        {"old_password": tmp, "new_password": "taken-over-88"},
        content_type="application/json",
        **bearer(tok),
    )
    assert changed.status_code == 200
    # The reset login may not read (nor re-issue) the elder's card code for 72 hours.
    read = c.get(f"/api/v1/members/{elder.pk}/card-code", **bearer(tok))
    assert read.status_code == 403 and error_code(read) == "recent_password_reset"
    reissue = c.post(f"/api/v1/members/{elder.pk}/card-code/reissue", **bearer(tok))
    assert reissue.status_code == 403 and error_code(reissue) == "recent_password_reset"
    # Nor the card page.
    page = web_client(son.user).get("/me/card/")
    code_now = goods_actions.card_code(elder)
    assert f"{code_now[:4]} {code_now[4:]}" not in page.content.decode()
    # Without the code, the outlet cannot redeem for him: nothing moved.
    resp = hostile.post("/api/v1/goods/redemptions", redeem_body(world, far_shop, "steal", None))
    assert resp.status_code == 403
    assert not Redemption.objects.exists()
    # His own card code stays his: the son reads his own.
    assert c.get(f"/api/v1/members/{son.pk}/card-code", **bearer(tok)).status_code == 200
    # The son, and the elder he is linked to, were told a reset happened.
    told = set(Notification.objects.filter(template="login.password_reset").values_list("member_id", flat=True))
    assert {elder.pk, son.pk} <= told
    # After the hold, the son (now really holding his login) reads the code again.
    with at(timezone.now() + RESET_HOLD + dt.timedelta(minutes=1)):
        later = c.get(f"/api/v1/members/{elder.pk}/card-code", **bearer(tok))
    assert later.status_code == 200


def test_attack_a_a_reset_relative_neither_orders_for_nor_acts_on_the_elders_orders(world: World) -> None:
    from timebank.catalogue.actions import do_create_service_item
    from timebank.orders.access import RELATIVE, party_roles
    from timebank.orders.models import Order

    elder, son = world.members["recipient"], world.members["relative"]
    ledger.do_adjustment(None, member=elder, minutes=600, bucket="earned", reason="seed")
    item = do_create_service_item(None, head_office=world.bank, name="保洁", category="mutual_care", tier="ordinary")
    body = {
        "recipient_id": elder.pk,
        "service_item_id": item.pk,
        "scheduled_start": (timezone.now() + dt.timedelta(hours=2)).isoformat(),
        "planned_minutes": 60,
        "payer": "recipient",
        "channel": "app",
        "notes": "",
    }
    before = world.api("relative").post("/api/v1/orders", body)
    assert before.status_code == 201, before.content  # the son orders for his father as usual
    order = Order.objects.get(pk=before.json()["id"])
    assert son.user is not None and RELATIVE in party_roles(son.user, order)

    tmp = world.api("staff_next").post(f"/api/v1/members/{son.pk}/password-reset").json()["temporary_password"]
    tok = token("relative", tmp).json()["token"]
    c = Client()
    pw = {"old_password": tmp, "new_password": "taken-over-88"}
    assert c.post("/api/v1/me/password", pw, content_type="application/json", **bearer(tok)).status_code == 200
    refused = c.post("/api/v1/orders", body, content_type="application/json", **bearer(tok))
    assert refused.status_code == 403 and error_code(refused) == "recent_password_reset"
    assert Order.objects.count() == 1
    # The father's order is not the reset login's to read, cancel or confirm.
    son.user.refresh_from_db()
    assert RELATIVE not in party_roles(son.user, order)
    assert c.get(f"/api/v1/orders/{order.pk}", **bearer(tok)).status_code == 403
    why = {"reason": "不要了"}
    cancel = c.post(f"/api/v1/orders/{order.pk}/cancel", why, content_type="application/json", **bearer(tok))
    assert cancel.status_code == 403


# (b) The wrong-code lock is per card and staff login -----------------------------------------------------------


def test_attack_b_another_outlets_wrong_codes_do_not_lock_the_elder_out(world: World, far_shop: Goods) -> None:
    elder = world.members["recipient"]
    hostile = world.api("staff_next")
    for i in range(goods_actions.CARD_WRONG_LIMIT):
        r = hostile.post("/api/v1/goods/redemptions", redeem_body(world, far_shop, f"g{i}", f"0000000{i}"))
        assert r.status_code == 403 and error_code(r) == "member_code_wrong"
    code = goods_actions.card_code(elder)
    # That staff login is locked out of this card, even with the right code...
    r = hostile.post("/api/v1/goods/redemptions", redeem_body(world, far_shop, "g-ok", code))
    assert r.status_code == 403 and error_code(r) == "card_locked"
    # ...but the card still works with any other outlet's staff.
    other = do_create_org(world.users["superuser"], name="泥沟村网点二", kind="outlet", parent=world.community2)
    clerk = goods_actions.do_create_goods(None, outlet=other, name="米", price_minutes=60, stock=5)
    from timebank.orgs.actions import do_create_staff

    do_create_staff(None, org=other, username="clerk2", password=PW, name="二号", role="staff")
    tok = token("clerk2", PW).json()["token"]
    ok = Client().post(
        "/api/v1/goods/redemptions",
        redeem_body(world, clerk, "c-ok", code),
        content_type="application/json",
        **bearer(tok),
    )
    assert ok.status_code == 201, ok.content
    # Staff of the elder's home subtree unlock the card (same code, audited) or re-issue it (new code, audited).
    unlocked = world.api("staff").post(f"/api/v1/members/{elder.pk}/card-code/unlock")
    assert unlocked.status_code == 200
    assert AuditEntry.objects.filter(action="goods.card_unlocked").count() == 1
    r = hostile.post("/api/v1/goods/redemptions", redeem_body(world, far_shop, "g-after", code))
    assert r.status_code == 201, r.content
    for persona in ("staff", "branch_admin", "head_office_admin"):
        rr = world.api(persona).post(f"/api/v1/members/{elder.pk}/card-code/reissue")
        assert rr.status_code == 200, persona
        assert rr.json()["code"] == goods_actions.card_code(elder)
    assert AuditEntry.objects.filter(action="goods.card_reissued").count() == 3
    # Staff outside his subtree neither unlock nor re-issue.
    for persona in ("staff_next", "operator", "other_bank_admin"):
        assert world.api(persona).post(f"/api/v1/members/{elder.pk}/card-code/unlock").status_code == 403
        assert world.api(persona).post(f"/api/v1/members/{elder.pk}/card-code/reissue").status_code == 403


# (c) An overall ceiling per username that keeps the elder's known addresses open --------------------------------


def test_attack_c_guessing_from_many_addresses_stops_but_the_elder_at_home_logs_in(world: World) -> None:
    home = "192.0.2.20"
    assert token("recipient", PW, home).status_code == 200  # the elder's phone at home, known from now on
    for a in range(12):  # 12 addresses x 9 guesses, each under the per-address lock of 10
        for _ in range(9):
            assert token("recipient", "guess-xx-1", f"198.51.100.{a}").status_code in (401, 429)
    # A fresh address with the right password: refused, the username is guarded.
    r = token("recipient", PW, "198.51.100.200")
    assert r.status_code == 429 and error_code(r) == "username_guarded"
    # The page says so too.
    page = Client(REMOTE_ADDR="198.51.100.201").post("/login/", {"username": "recipient", "password": PW})
    assert page.status_code == 403
    # The elder from the address where they logged in before still logs in (API and page).
    assert token("recipient", PW, home).status_code == 200
    page = Client(REMOTE_ADDR=home).post("/login/", {"username": "recipient", "password": PW})
    assert page.status_code == 302
    # A day later the guard is lifted.
    with at(timezone.now() + GUARD_WINDOW + dt.timedelta(minutes=1)):
        assert token("recipient", PW, "198.51.100.202").status_code == 200


def test_attack_c_one_address_still_locks_after_ten_failures_in_a_row(world: World) -> None:
    for _ in range(10):
        token("volunteer", "wrong-guess-1", "203.0.113.9")
    assert token("volunteer", PW, "203.0.113.9").status_code == 429
    assert token("volunteer", PW, "203.0.113.10").status_code == 200


def test_attack_c_a_staff_reset_lifts_the_guard(world: World) -> None:
    for a in range(GUARD_AFTER):
        token("recipient", "guess-xx-1", f"198.51.100.{a}")
    assert token("recipient", PW, "198.51.100.250").status_code == 429
    tmp = world.api("staff").post(f"/api/v1/members/{world.members['recipient'].pk}/password-reset").json()
    assert token("recipient", tmp["temporary_password"], "198.51.100.250").status_code == 200


# (d) The temporary password expires and is used once -----------------------------------------------------------


def test_attack_d_temporary_password_is_single_use_and_expires(world: World) -> None:
    elder = world.members["recipient"]
    staff = world.api("staff")
    tmp = staff.post(f"/api/v1/members/{elder.pk}/password-reset").json()["temporary_password"]
    first = token("recipient", tmp, "10.0.0.2")
    assert first.status_code == 200 and first.json()["must_change_password"] is True
    # A second login with it (someone who saw it over the shoulder): refused, clearly.
    second = token("recipient", tmp, "10.0.0.3")
    assert second.status_code == 401 and error_code(second) == "temporary_password_used"
    browser = Client(REMOTE_ADDR="10.0.0.4")
    page = browser.post("/login/", {"username": "recipient", "password": tmp})
    assert page.status_code == 200 and "_auth_user_id" not in browser.session
    # The first login's token sets the new password.
    tok = first.json()["token"]
    done = Client().post(
        "/api/v1/me/password",
        {"old_password": tmp, "new_password": "mine-now-77"},
        content_type="application/json",
        **bearer(tok),
    )
    assert done.status_code == 200
    assert token("recipient", "mine-now-77").status_code == 200

    # A new reset, never used: after 72 hours it no longer logs in, nor sets a password through a token.
    tmp2 = staff.post(f"/api/v1/members/{elder.pk}/password-reset").json()["temporary_password"]
    later = timezone.now() + TEMPORARY_VALID + dt.timedelta(minutes=1)
    with at(later):
        r = token("recipient", tmp2, "10.0.0.5")
    assert r.status_code == 401 and error_code(r) == "temporary_password_expired"
    browser = Client(REMOTE_ADDR="10.0.0.6")
    with at(later):
        page = browser.post("/login/", {"username": "recipient", "password": tmp2})
    assert page.status_code == 200 and "_auth_user_id" not in browser.session
    # Used in time, then left lying: the token cannot set the password after the 72 hours either.
    tmp3 = staff.post(f"/api/v1/members/{elder.pk}/password-reset").json()["temporary_password"]
    tok3 = token("recipient", tmp3, "10.0.0.7").json()["token"]
    with at(timezone.now() + TEMPORARY_VALID + dt.timedelta(minutes=1)):
        late = Client().post(
            "/api/v1/me/password",
            {"old_password": tmp3, "new_password": "too-late-77"},
            content_type="application/json",
            **bearer(tok3),
        )
    assert late.status_code == 403 and error_code(late) == "temporary_password_expired"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_attack_d_two_logins_at_once_with_one_temporary_password_get_one_token() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection

    from tests.conftest import build_world, is_postgres

    if not is_postgres():
        pytest.skip("parallel logins are a PostgreSQL test")
    world = build_world()
    elder = world.members["recipient"]
    from timebank.orgs.actions import do_reset_password

    tmp = do_reset_password(world.users["staff"], elder.user)  # type: ignore[arg-type]

    def attempt(n: int) -> int:
        try:
            return token("recipient", tmp, f"10.1.0.{n}").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        codes = list(pool.map(attempt, range(6)))
    assert codes.count(200) == 1, codes


def test_the_chosen_limits_are_the_codes(world: World) -> None:
    from timebank.orgs import actions, lockout

    assert actions.RESET_HOLD == RESET_HOLD and actions.TEMPORARY_VALID == TEMPORARY_VALID
    assert lockout.GUARD_AFTER == GUARD_AFTER and lockout.GUARD_WINDOW == GUARD_WINDOW


def test_attack_b_home_staff_unlock_the_card_on_its_page_keeping_the_code(world: World, far_shop: Goods) -> None:
    elder = world.members["recipient"]
    hostile = world.api("staff_next")
    for i in range(goods_actions.CARD_WRONG_LIMIT):
        hostile.post("/api/v1/goods/redemptions", redeem_body(world, far_shop, f"w{i}", f"0000000{i}"))
    code = goods_actions.card_code(elder)
    assert error_code(hostile.post("/api/v1/goods/redemptions", redeem_body(world, far_shop, "x", code))) == (
        "card_locked"
    )
    url = f"/outlet/card/{elder.pk}/"
    assert web_client(world.users["staff_next"]).post(url, {"unlock": "1"}).status_code in (403, 404)
    done = web_client(world.users["staff"]).post(url, {"unlock": "1"})
    assert done.status_code == 302
    assert goods_actions.card_code(elder) == code  # the printed card keeps working
    assert AuditEntry.objects.filter(action="goods.card_unlocked").count() == 1
    ok = hostile.post("/api/v1/goods/redemptions", redeem_body(world, far_shop, "y", code))
    assert ok.status_code == 201, ok.content
