"""Elder first (issue 14; the contract's "Elder-first additions"): the accepted order's SMS with the code to the
recipient or their contact, what staff read out from `GET /members/{id}/messages`, and logging in by SMS code."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.conftest import PERSONAS, World, build_world, error_code, is_postgres, make_member, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.members.models import Member, RelativeLink
from timebank.notify.models import Notification, SmsLoginCode
from timebank.orders.models import Order
from timebank.orgs.models import ApiToken, User

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}

RECIPIENT_PHONE = "13912345678"
RELATIVE_PHONE = "13787654321"
VOLUNTEER_PHONE = "13611112222"


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.TASKS = IMMEDIATE
    settings.NOTIFY_CHANNELS = ["outbox"]
    settings.NOTIFY_SMS_ACCESS_KEY_ID = ""


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="助餐送餐", category="mutual_care", tier="ordinary"
    )


@pytest.fixture
def phones(world: World) -> World:
    for persona, phone in (
        ("recipient", RECIPIENT_PHONE),
        ("relative", RELATIVE_PHONE),
        ("volunteer", VOLUNTEER_PHONE),
        ("neighbour", "13600000001"),
        ("stranger", "13600000002"),
    ):
        Member.objects.filter(pk=world.members[persona].pk).update(phone=phone)
        world.members[persona].refresh_from_db()
    return world


def post(world: World, persona: str, url: str, body: Any, capture: Capture) -> Any:
    with capture(execute=True):
        return world.api(persona).post(url, body)


def new_order(world: World, item: ServiceItem, capture: Capture) -> int:
    body = {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        "scheduled_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
        "planned_minutes": 60,
        "payer": "subsidy",
        "channel": "hotline",
        "notes": "",
    }
    resp = post(world, "operator", "/api/v1/orders", body, capture)
    assert resp.status_code == 201, resp.content
    oid = int(resp.json()["id"])
    resp = post(
        world, "staff", f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk}, capture
    )
    assert resp.status_code == 200, resp.content
    return oid


def accept(world: World, persona: str, oid: int, capture: Capture, body: Any = None) -> None:
    resp = post(world, persona, f"/api/v1/orders/{oid}/accept", body, capture)
    assert resp.status_code == 200, resp.content


def code_sms(oid: int) -> list[Notification]:
    return list(Notification.objects.filter(order_id=oid, template="order.accepted_code"))


def messages(world: World, persona: str, member: str = "recipient", **params: Any) -> Any:
    return world.api(persona).get(f"/api/v1/members/{world.members[member].pk}/messages", params or None)


# --- SMS on accept ---


@pytest.mark.parametrize("persona", ["volunteer", "staff"])
def test_accepting_sends_the_code_by_sms_to_the_recipient(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture, persona: str
) -> None:
    world = phones
    oid = new_order(world, item, django_capture_on_commit_callbacks)
    accept(
        world,
        persona,
        oid,
        django_capture_on_commit_callbacks,
        {"source": "phone_call"} if persona == "staff" else None,
    )
    order = Order.objects.get(pk=oid)
    [sms] = code_sms(oid)
    assert sms.channel == "sms" and sms.member_id == world.members["recipient"].pk
    # No provider configured: kept, not failed, so staff can read it out.
    assert sms.status == "not_configured"
    assert order.code in sms.body and "王秀英" in sms.body and "助餐送餐" in sms.body
    start = timezone.localtime(order.scheduled_start)
    assert f"{start.month}月{start.day}日 {start:%H:%M}" in sms.body


def test_a_recipient_without_a_login_gets_the_code_and_staff_read_it_out(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture
) -> None:
    world = phones
    recipient = world.members["recipient"]
    Member.objects.filter(pk=recipient.pk).update(user=None)
    oid = new_order(world, item, django_capture_on_commit_callbacks)
    accept(world, "volunteer", oid, django_capture_on_commit_callbacks)
    code = Order.objects.get(pk=oid).code
    [sms] = code_sms(oid)
    assert sms.user_id is None and sms.member_id == recipient.pk
    resp = messages(world, "staff")
    assert resp.status_code == 200, resp.content
    items = resp.json()["items"]
    first = items[0]
    assert set(first) == {"id", "channel", "to_masked", "body", "status", "created_at"}
    assert first["channel"] == "sms" and first["status"] == "not_configured" and code in first["body"]
    assert first["to_masked"] == "139****5678"
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    assert resp.json()["next_cursor"] is None


def test_the_marked_contact_gets_the_sms_instead(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture
) -> None:
    world = phones
    recipient, relative = world.members["recipient"], world.members["relative"]
    RelativeLink.objects.filter(member=recipient, relative=relative).update(is_contact=True)
    oid = new_order(world, item, django_capture_on_commit_callbacks)
    accept(world, "volunteer", oid, django_capture_on_commit_callbacks)
    [sms] = code_sms(oid)
    assert sms.member_id == relative.pk and Order.objects.get(pk=oid).code in sms.body
    # Staff of the recipient's subtree see it among what was sent about the recipient.
    bodies = [i["body"] for i in messages(world, "staff").json()["items"]]
    assert sms.body in bodies


def test_a_contact_is_marked_when_linking_a_relative(phones: World) -> None:
    world = phones
    recipient, neighbour = world.members["recipient"], world.members["neighbour"]
    Member.objects.filter(pk=neighbour.pk).update(home_org=world.community)
    resp = world.api("staff").post(
        f"/api/v1/members/{recipient.pk}/relatives", {"relative_id": neighbour.pk, "relation": "邻居", "contact": True}
    )
    assert resp.status_code == 201, resp.content
    assert list(
        RelativeLink.objects.filter(member=recipient, is_contact=True).values_list("relative_id", flat=True)
    ) == [neighbour.pk]
    for bad in ("yes", 1, None, [True]):
        resp = world.api("staff").post(
            f"/api/v1/members/{recipient.pk}/relatives",
            {"relative_id": neighbour.pk, "relation": "邻居", "contact": bad},
        )
        assert resp.status_code == 422, (bad, resp.content)


def test_the_code_never_reaches_the_volunteer(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture
) -> None:
    world = phones
    oid = new_order(world, item, django_capture_on_commit_callbacks)
    accept(world, "volunteer", oid, django_capture_on_commit_callbacks)
    code = Order.objects.get(pk=oid).code
    volunteer = world.members["volunteer"]
    assert not Notification.objects.filter(member=volunteer, body__contains=code).exists()
    api = world.api("volunteer")
    for channel in ("outbox", "sms", "email", "wechat"):
        text = json.dumps(api.get("/api/v1/notifications", {"channel": channel}).json(), ensure_ascii=False)
        assert code not in text
    resp = messages(world, "volunteer")
    assert resp.status_code == 403 and code not in resp.content.decode()
    # A relative may not serve their family (409 conflict_of_interest), and sms_contact skips the volunteer anyway.
    from timebank.notify.sms import sms_contact

    RelativeLink.objects.create(member=world.members["recipient"], relative=volunteer, relation="邻居", is_contact=True)
    assert sms_contact(world.members["recipient"], not_member=volunteer.pk) == world.members["recipient"]


def test_no_mobile_phone_no_sms(phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture) -> None:
    world = phones
    Member.objects.filter(pk=world.members["recipient"].pk).update(phone="0632-6611234")
    oid = new_order(world, item, django_capture_on_commit_callbacks)
    accept(world, "volunteer", oid, django_capture_on_commit_callbacks)
    assert code_sms(oid) == []
    assert Order.objects.get(pk=oid).state == "accepted"


def test_with_a_provider_configured_the_sms_is_sent(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture, settings: Any, monkeypatch: Any
) -> None:
    from timebank.notify import adapters

    settings.NOTIFY_SMS_ACCESS_KEY_ID = "id"
    settings.NOTIFY_SMS_ACCESS_KEY_SECRET = "secret"
    settings.NOTIFY_SMS_SIGN_NAME = "时间银行"
    settings.NOTIFY_SMS_TEMPLATES = {"order.accepted_code": "SMS_1"}
    sent: list[str] = []

    def provider(request: Any) -> dict[str, str]:
        sent.append(request.full_url)
        return {"Code": "OK"}

    monkeypatch.setattr(adapters, "_post_or_get", provider)
    oid = new_order(phones, item, django_capture_on_commit_callbacks)
    accept(phones, "volunteer", oid, django_capture_on_commit_callbacks)
    [sms] = code_sms(oid)
    assert sms.status == "sent" and len(sent) == 1 and RECIPIENT_PHONE in sent[0]


# --- GET /members/{id}/messages ---


@pytest.mark.parametrize("persona", PERSONAS)
def test_member_messages_roles(phones: World, persona: str) -> None:
    resp = messages(phones, persona)
    allowed = {"superuser", "head_office_admin", "branch_admin", "staff", "operator"}
    if persona == "anonymous":
        assert resp.status_code == 401
    elif persona in allowed:
        assert resp.status_code == 200, resp.content
    else:
        assert resp.status_code in (403, 404), (persona, resp.content)


def test_member_messages_bad_input(phones: World) -> None:
    api = phones.api("staff")
    assert api.get("/api/v1/members/999999/messages").status_code == 404
    assert error_code(api.get("/api/v1/members/999999/messages")) == "member_not_found"
    assert api.get("/api/v1/members/abc/messages").status_code == 422
    base = f"/api/v1/members/{phones.members['recipient'].pk}/messages"
    assert api.get(base, {"limit": 0}).status_code == 422
    assert api.get(base, {"limit": 10**9}).status_code == 422
    assert api.get(base, {"cursor": "x" * 500}).status_code == 422
    assert api.get(base, {"cursor": "not-a-cursor"}).status_code == 422
    # Staff of another subtree and another bank.
    assert error_code(phones.api("staff_next").get(base)) == "outside_subtree"
    assert phones.api("other_bank_staff").get(base).status_code == 403


# --- logging in with an SMS code ---

SMS_CODE = "/api/v1/auth/sms-code"
TOKEN = "/api/v1/auth/token"


def login_codes(member: Member) -> list[str]:
    """The codes sent to a member so far, newest last (read from the kept SMS, as staff would read them out)."""
    rows = Notification.objects.filter(member=member, template="login.sms_code").order_by("pk")
    return [str(n.payload["code"]) for n in rows]


def send_code(world: World, phone: str, **extra: Any) -> Any:
    return world.api("anonymous").post(SMS_CODE, {"phone": phone}, **extra)


def token(world: World, phone: str, code: str, **extra: Any) -> Any:
    return world.api("anonymous").post(TOKEN, {"phone": phone, "sms_code": code}, **extra)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


def test_a_member_logs_in_with_a_code(phones: World) -> None:
    world = phones
    resp = send_code(world, RECIPIENT_PHONE)
    assert resp.status_code == 202 and resp.json() == {"accepted": True}
    [code] = login_codes(world.members["recipient"])
    row = SmsLoginCode.objects.get(phone=RECIPIENT_PHONE)
    assert code not in row.code_hash and len(code) == 6 and code.isdigit()
    resp = token(world, RECIPIENT_PHONE, code)
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["member_id"] == world.members["recipient"].pk and "recipient" in body["roles"]
    me = Client().get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert me.status_code == 200 and me.json()["member"]["id"] == world.members["recipient"].pk
    # A replay of the same code is refused.
    resp = token(world, RECIPIENT_PHONE, code)
    assert resp.status_code == 401 and error_code(resp) == "bad_credentials"
    assert AuditEntry.objects.filter(action="login.sms_code", object_id=str(world.members["recipient"].pk)).exists()


def test_a_member_without_a_login_gets_one_at_the_first_code_login(phones: World) -> None:
    world = phones
    member = make_member(world.community, "孙奶奶", phone="13522223333", roles=["recipient"])
    assert member.user is None
    assert send_code(world, "135 2222 3333").status_code == 202
    [code] = login_codes(member)
    resp = token(world, "+8613522223333", code)
    assert resp.status_code == 200, resp.content
    member.refresh_from_db()
    assert member.user is not None and resp.json()["member_id"] == member.pk
    assert not member.user.has_usable_password()
    # The next login uses the same login.
    assert send_code(world, "13522223333").status_code == 202
    resp = token(world, "13522223333", login_codes(member)[-1])
    assert resp.status_code == 200
    member.refresh_from_db()
    assert User.objects.filter(member=member).count() == 1


def test_unknown_inactive_or_shared_phones_answer_202_and_write_nothing(phones: World) -> None:
    world = phones
    Member.objects.filter(pk=world.members["neighbour"].pk).update(status="suspended")
    make_member(world.community, "甲", phone="13700001111")
    make_member(world.community, "乙", phone="13700001111")
    before = (Notification.objects.count(), SmsLoginCode.objects.count(), AuditEntry.objects.count())
    for phone in ("13999999999", "13600000001", "13700001111"):
        resp = send_code(world, phone)
        assert resp.status_code == 202 and resp.json() == {"accepted": True}
    assert (Notification.objects.count(), SmsLoginCode.objects.count(), AuditEntry.objects.count()) == before
    resp = token(world, "13999999999", "123456")
    assert resp.status_code == 401 and error_code(resp) == "bad_credentials"


def test_a_code_expires_after_ten_minutes(phones: World) -> None:
    world = phones
    send_code(world, RECIPIENT_PHONE)
    [code] = login_codes(world.members["recipient"])
    row = SmsLoginCode.objects.get(phone=RECIPIENT_PHONE)
    assert row.expires_at - row.sent_at == dt.timedelta(minutes=10)
    SmsLoginCode.objects.filter(phone=RECIPIENT_PHONE).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert token(world, RECIPIENT_PHONE, code).status_code == 401


def test_five_wrong_codes_refuse_the_right_one_until_a_new_one_is_sent(phones: World) -> None:
    world = phones
    send_code(world, RECIPIENT_PHONE)
    [code] = login_codes(world.members["recipient"])
    for _ in range(5):
        resp = token(world, RECIPIENT_PHONE, wrong(code))
        assert resp.status_code == 401 and error_code(resp) == "bad_credentials"
    assert SmsLoginCode.objects.get(phone=RECIPIENT_PHONE).wrong == 5
    resp = token(world, RECIPIENT_PHONE, code)
    assert resp.status_code == 401 and "token" not in resp.json()
    send_code(world, RECIPIENT_PHONE)
    new = login_codes(world.members["recipient"])[-1]
    if new == code:  # one in a million
        return
    assert token(world, RECIPIENT_PHONE, code).status_code == 401  # the old code is gone
    assert token(world, RECIPIENT_PHONE, new).status_code == 200


def test_a_suspended_member_cannot_log_in_with_a_sent_code(phones: World) -> None:
    world = phones
    send_code(world, RECIPIENT_PHONE)
    [code] = login_codes(world.members["recipient"])
    Member.objects.filter(pk=world.members["recipient"].pk).update(status="suspended")
    assert token(world, RECIPIENT_PHONE, code).status_code == 401


def test_sending_is_rate_limited_per_phone_and_per_address(phones: World, settings: Any) -> None:
    world = phones
    settings.SMS_CODE_PHONE_LIMIT_PER_HOUR = 3
    settings.SMS_CODE_LIMIT_PER_HOUR = 6
    for _ in range(3):
        assert send_code(world, RECIPIENT_PHONE, REMOTE_ADDR="198.51.100.1").status_code == 202
    # Per phone, from any address; an unknown phone is counted the same (the 429 tells nothing).
    resp = send_code(world, RECIPIENT_PHONE, REMOTE_ADDR="198.51.100.2")
    assert resp.status_code == 429 and error_code(resp) == "rate_limited"
    assert len(login_codes(world.members["recipient"])) == 3
    for _ in range(3):
        assert send_code(world, "13999999999", REMOTE_ADDR="198.51.100.3").status_code == 202
    assert send_code(world, "13999999999", REMOTE_ADDR="198.51.100.3").status_code == 429
    # Per address, over many phones.
    for n in range(5):
        assert send_code(world, f"1390000000{n}", REMOTE_ADDR="198.51.100.9").status_code == 202
    resp = send_code(world, RELATIVE_PHONE, REMOTE_ADDR="198.51.100.9")
    assert resp.status_code == 202
    resp = send_code(world, RELATIVE_PHONE, REMOTE_ADDR="198.51.100.9")
    assert resp.status_code == 429 and error_code(resp) == "rate_limited"
    assert len(login_codes(world.members["relative"])) == 1


BAD_PHONES: dict[str, Any] = {
    "short": "12345",
    "landline": "0632-6611234",
    "letters": "1391234567a",
    "int": 13912345678,
    "bool": True,
    "list": [RECIPIENT_PHONE],
    "object": {"phone": RECIPIENT_PHONE},
    "null": None,
    "empty": "",
    "nul": "1391234\x005678",
    "long": "1" * 10_000,
}


@pytest.mark.parametrize("label", list(BAD_PHONES))
def test_sms_code_bad_input(phones: World, label: str) -> None:
    before = (Notification.objects.count(), SmsLoginCode.objects.count())
    resp = send_code(phones, BAD_PHONES[label])
    assert resp.status_code == 422, resp.content
    assert error_code(resp) == "validation_error"
    assert (Notification.objects.count(), SmsLoginCode.objects.count()) == before


def test_sms_code_bad_bodies(phones: World) -> None:
    api = phones.api("anonymous")
    for raw in ("{bad", "", "null", "[]", '"x"', json.dumps([{"phone": RECIPIENT_PHONE}])):
        assert api.post(SMS_CODE, raw=raw).status_code in (400, 422), raw
    assert api.post(SMS_CODE, {}).status_code == 422
    assert SmsLoginCode.objects.count() == 0


def test_token_by_code_bad_input(phones: World) -> None:
    world = phones
    send_code(world, RECIPIENT_PHONE)
    [code] = login_codes(world.members["recipient"])
    api = world.api("anonymous")
    bad_bodies: list[dict[str, Any]] = [
        {"phone": RECIPIENT_PHONE},
        {"sms_code": code},
        {"phone": RECIPIENT_PHONE, "sms_code": int(code)},
        {"phone": RECIPIENT_PHONE, "sms_code": code + "0"},
        {"phone": RECIPIENT_PHONE, "sms_code": "12a456"},
        {"phone": RECIPIENT_PHONE, "sms_code": "9" * 10_000},
        {"phone": RECIPIENT_PHONE, "sms_code": None},
        {"phone": "12345", "sms_code": code},
        {"phone": ["x"], "sms_code": code},
        {"phone": RECIPIENT_PHONE, "sms_code": code, "username": "recipient", "password": "pass-word-1"},
        {"phone": RECIPIENT_PHONE, "sms_code": code, "password": "pass-word-1"},
    ]
    for body in bad_bodies:
        resp = api.post(TOKEN, body)
        assert resp.status_code == 422, (body, resp.content)
    # None of these counted as a wrong code, and the code still works once.
    assert SmsLoginCode.objects.get(phone=RECIPIENT_PHONE).wrong == 0
    assert token(world, RECIPIENT_PHONE, code).status_code == 200
    # The password way is as before.
    assert api.post(TOKEN, {"username": "recipient", "password": "pass-word-1"}).status_code == 200
    assert api.post(TOKEN, {"username": "recipient"}).status_code == 422


def test_a_code_for_one_phone_does_not_open_another(phones: World) -> None:
    world = phones
    send_code(world, RECIPIENT_PHONE)
    [code] = login_codes(world.members["recipient"])
    assert token(world, RELATIVE_PHONE, code).status_code == 401
    assert token(world, RECIPIENT_PHONE, code).status_code == 200


def test_staff_of_the_subtree_can_read_the_login_code_out_but_the_volunteer_cannot(phones: World) -> None:
    world = phones
    send_code(world, RECIPIENT_PHONE)
    [code] = login_codes(world.members["recipient"])
    items = messages(world, "staff").json()["items"]
    assert items[0]["status"] == "not_configured" and code in items[0]["body"]
    assert messages(world, "volunteer").status_code == 403
    text = json.dumps(world.api("volunteer").get("/api/v1/notifications", {"channel": "sms"}).json())
    assert code not in text


@pytest.mark.django_db(transaction=True)
def test_two_token_requests_with_one_code_give_one_token() -> None:
    if not is_postgres():
        pytest.skip("needs PostgreSQL for real parallel transactions")
    world = build_world()
    Member.objects.filter(pk=world.members["recipient"].pk).update(phone=RECIPIENT_PHONE)
    assert send_code(world, RECIPIENT_PHONE).status_code == 202
    [code] = login_codes(world.members["recipient"])
    barrier = threading.Barrier(6)
    statuses: list[int] = []

    def attempt() -> None:
        try:
            barrier.wait()
            statuses.append(
                Client()
                .post(TOKEN, {"phone": RECIPIENT_PHONE, "sms_code": code}, content_type="application/json")
                .status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 401, 401, 401, 401, 401]
    user = world.members["recipient"].user
    assert ApiToken.objects.filter(user=user).count() == 1


def test_kept_sms_go_out_once_a_provider_is_configured(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture, settings: Any, monkeypatch: Any
) -> None:
    from django.core.management import call_command

    from timebank.notify import adapters

    oid = new_order(phones, item, django_capture_on_commit_callbacks)
    accept(phones, "volunteer", oid, django_capture_on_commit_callbacks)
    [sms] = code_sms(oid)
    assert sms.status == "not_configured" and sms.attempts == 0
    call_command("send_notifications")  # not due: nobody configured SMS yet
    sms.refresh_from_db()
    assert sms.status == "not_configured" and sms.attempts == 0
    settings.NOTIFY_SMS_ACCESS_KEY_ID = "id"
    settings.NOTIFY_SMS_ACCESS_KEY_SECRET = "secret"
    settings.NOTIFY_SMS_SIGN_NAME = "时间银行"
    settings.NOTIFY_SMS_TEMPLATES = {"order.accepted_code": "SMS_1"}
    monkeypatch.setattr(adapters, "_post_or_get", lambda request: {"Code": "OK"})
    call_command("send_notifications", "--retry-failed")
    sms.refresh_from_db()
    assert sms.status == "sent"


def test_taking_an_open_order_sends_the_code_too(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture
) -> None:
    world = phones
    body = {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        "scheduled_start": (timezone.now() + dt.timedelta(days=1)).isoformat(),
        "planned_minutes": 60,
        "payer": "subsidy",
        "channel": "hotline",
        "notes": "",
    }
    oid = post(world, "operator", "/api/v1/orders", body, django_capture_on_commit_callbacks).json()["id"]
    resp = post(world, "volunteer", f"/api/v1/orders/{oid}/take", {}, django_capture_on_commit_callbacks)
    assert resp.status_code == 200, resp.content
    [sms] = code_sms(oid)
    assert sms.member_id == world.members["recipient"].pk and Order.objects.get(pk=oid).code in sms.body


def test_staff_read_the_code_out_from_the_members_messages_page(
    phones: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture
) -> None:
    world = phones
    oid = new_order(world, item, django_capture_on_commit_callbacks)
    accept(world, "volunteer", oid, django_capture_on_commit_callbacks)
    code = Order.objects.get(pk=oid).code
    url = f"/staff/members/{world.members['recipient'].pk}/messages/"
    # Clicked from the member's page.
    member_page = web_client(world.users["staff"]).get(f"/staff/members/{world.members['recipient'].pk}/")
    assert member_page.status_code == 200 and f'href="{url}"' in member_page.content.decode()
    resp = web_client(world.users["staff"]).get(url)
    assert resp.status_code == 200
    text = resp.content.decode()
    assert code in text and "139****5678" in text and "未配置短信服务" in text
    for persona in ("volunteer", "recipient", "relative", "staff_next", "other_bank_staff"):
        resp = web_client(world.users[persona]).get(url)
        assert resp.status_code == 403 and code not in resp.content.decode(), persona
    assert web_client(None).get(url).status_code == 302
    assert web_client(world.users["staff"]).get("/staff/members/999999/messages/").status_code == 404
