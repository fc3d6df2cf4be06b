"""Logging in with an SMS code on the login page (issue 14): 用短信验证码登录 next to the password, the same
sending (limits, lockout after 5 wrong codes) as `POST /auth/sms-code` and the same check as `POST /auth/token`,
ending in a session as the password login does. Clicked through with the Django test client."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import World, make_member
from timebank.members.models import Member
from timebank.notify.models import Notification, SmsLoginCode
from timebank.orgs.models import User

PAGE = "/login/sms/"
PHONE = "13912345678"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.NOTIFY_CHANNELS = ["outbox"]
    settings.NOTIFY_SMS_ACCESS_KEY_ID = ""


@pytest.fixture
def elder(world: World) -> Member:
    member = world.members["recipient"]
    Member.objects.filter(pk=member.pk).update(phone=PHONE)
    member.refresh_from_db()
    return member


def codes(member: Member) -> list[str]:
    rows = Notification.objects.filter(member=member, template="login.sms_code").order_by("pk")
    return [str(n.payload["code"]) for n in rows]


def send(client: Client, phone: Any, **extra: Any) -> Any:
    return client.post(PAGE, {"step": "send", "phone": phone}, **extra)


def check(client: Client, phone: Any, code: Any, **extra: Any) -> Any:
    return client.post(PAGE, {"step": "check", "phone": phone, "code": code}, **extra)


def logged_in_as(client: Client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_the_login_page_offers_the_sms_code_and_a_member_logs_in_with_it(world: World, elder: Member) -> None:
    client = Client()
    login = client.get("/login/?next=/me/time/")
    assert login.status_code == 200
    assert (
        "用短信验证码登录" in login.content.decode() and 'href="/login/sms/?next=/me/time/"' in login.content.decode()
    )
    first = client.get("/login/sms/?next=/me/time/")
    assert first.status_code == 200 and 'name="phone"' in first.content.decode()
    sent = client.post(PAGE, {"step": "send", "phone": "139 1234 5678", "next": "/me/time/"})
    assert sent.status_code == 200
    html = sent.content.decode()
    assert 'name="code"' in html and "验证码短信马上就到" in html and "重新获取验证码" in html
    [code] = codes(elder)
    done = client.post(PAGE, {"step": "check", "phone": PHONE, "code": code, "next": "/me/time/"})
    assert done.status_code == 302 and done["Location"] == "/me/time/"
    assert elder.user is not None and logged_in_as(client) == elder.user.pk
    # The session is a real login: the member's pages open.
    assert client.get("/me/time/").status_code == 200
    # The code is used up: a second browser cannot log in with it.
    other = Client()
    assert check(other, PHONE, code).status_code == 401 and logged_in_as(other) is None


def test_a_member_without_a_login_gets_one_at_the_first_login_on_the_page(world: World) -> None:
    member = make_member(world.community, "孙奶奶", phone="13522223333", roles=["recipient"])
    assert member.user is None
    client = Client()
    assert send(client, "13522223333").status_code == 200
    resp = check(client, "13522223333", codes(member)[-1])
    assert resp.status_code == 302 and resp["Location"] == "/"
    member.refresh_from_db()
    assert member.user is not None and logged_in_as(client) == member.user.pk


def _normalised(html: str, phone: str) -> str:
    html = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)
    return html.replace(phone, "PHONE")


def test_an_unknown_phone_gets_the_same_answer_and_nothing_is_written(world: World, elder: Member) -> None:
    before = (Notification.objects.count(), SmsLoginCode.objects.count())
    unknown = send(Client(), "13999999999")
    assert (Notification.objects.count(), SmsLoginCode.objects.count()) == before
    known = send(Client(), PHONE)
    assert unknown.status_code == known.status_code == 200
    assert _normalised(unknown.content.decode(), "13999999999") == _normalised(known.content.decode(), PHONE)
    # A code typed for the unknown phone gets the same refusal as a wrong one for a known phone.
    typed = "123456" if codes(elder)[-1] != "123456" else "654321"
    refused_unknown = check(Client(), "13999999999", typed)
    refused_known = check(Client(), PHONE, typed)
    assert refused_unknown.status_code == refused_known.status_code == 401
    assert _normalised(refused_unknown.content.decode(), "13999999999") == _normalised(
        refused_known.content.decode(), PHONE
    )


def test_a_wrong_or_expired_code_is_refused_in_plain_chinese_and_five_wrong_lock_the_code(
    world: World, elder: Member
) -> None:
    client = Client()
    send(client, PHONE)
    [code] = codes(elder)
    for n in range(5):
        resp = check(client, PHONE, wrong(code))
        assert resp.status_code == 401
        html = resp.content.decode()
        assert "验证码不对，或者已经过期" in html and 'name="code"' in html
        assert SmsLoginCode.objects.get(phone=PHONE).wrong == n + 1
    # The right code no longer opens the login until a new one is sent.
    assert check(client, PHONE, code).status_code == 401 and logged_in_as(client) is None
    assert send(client, PHONE).status_code == 200
    new = codes(elder)[-1]
    if new != code:  # one in a million
        assert check(client, PHONE, code).status_code == 401
    assert check(client, PHONE, new).status_code == 302 and logged_in_as(client) is not None
    # Expired: 10 minutes.
    other = Client()
    send(other, PHONE)
    SmsLoginCode.objects.filter(phone=PHONE).update(expires_at=timezone.now())
    resp = check(other, PHONE, codes(elder)[-1])
    assert resp.status_code == 401 and "已经过期" in resp.content.decode() and logged_in_as(other) is None


def test_sending_on_the_page_is_limited_like_the_api(world: World, elder: Member, settings: Any) -> None:
    settings.SMS_CODE_PHONE_LIMIT_PER_HOUR = 2
    client = Client()
    for _ in range(2):
        assert send(client, PHONE, REMOTE_ADDR="198.51.100.7").status_code == 200
    # The API and the page count together.
    resp = Client().post("/api/v1/auth/sms-code", {"phone": PHONE}, content_type="application/json")
    assert resp.status_code == 429
    resp = send(client, PHONE, REMOTE_ADDR="198.51.100.8")
    assert resp.status_code == 429 and "这个手机号的验证码发得太多了" in resp.content.decode()
    assert len(codes(elder)) == 2
    # An unknown phone is counted the same: the 429 tells nothing.
    for _ in range(2):
        assert send(client, "13999999999").status_code == 200
    assert send(client, "13999999999").status_code == 429


def test_a_suspended_member_cannot_log_in_on_the_page(world: World, elder: Member) -> None:
    client = Client()
    send(client, PHONE)
    Member.objects.filter(pk=elder.pk).update(status="suspended")
    assert check(client, PHONE, codes(elder)[-1]).status_code == 401 and logged_in_as(client) is None


@pytest.mark.parametrize(
    "phone", ["12345", "0632-6611234", "1391234567a", "", "1391234\x005678", "1" * 10_000, "+1 2025550123"]
)
def test_bad_phones_are_refused_beside_the_field_and_nothing_is_sent(world: World, elder: Member, phone: str) -> None:
    before = (Notification.objects.count(), SmsLoginCode.objects.count())
    resp = send(Client(), phone)
    assert resp.status_code == 422
    assert 'class="error"' in resp.content.decode()
    assert (Notification.objects.count(), SmsLoginCode.objects.count()) == before


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef", "１２３４５６", "12 34 5", "1" * 10_000])
def test_malformed_codes_are_refused_and_not_counted(world: World, elder: Member, code: str) -> None:
    client = Client()
    send(client, PHONE)
    resp = check(client, PHONE, code)
    assert resp.status_code == 422 and logged_in_as(client) is None
    assert SmsLoginCode.objects.get(phone=PHONE).wrong == 0


def test_a_tampered_phone_and_an_outside_next_open_nothing(world: World, elder: Member) -> None:
    client = Client()
    send(client, PHONE)
    [code] = codes(elder)
    # Another phone with the elder's code.
    assert check(client, "13600000009", code).status_code == 401
    # A malformed hidden phone starts again at the phone.
    resp = check(client, "12345", code)
    assert resp.status_code == 422 and 'name="code"' not in resp.content.decode()
    # A next outside the site goes home instead.
    resp = client.post(PAGE, {"step": "check", "phone": PHONE, "code": code, "next": "https://evil.example/"})
    assert resp.status_code == 302 and resp["Location"] == "/"
    # Logged in, the page sends the person on.
    assert client.get(PAGE).status_code == 302
    assert User.objects.filter(member=elder).count() == 1
