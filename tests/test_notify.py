"""Notifications: who hears about an order, when, on which channel, and what happens when sending fails."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.aliyun_standin import AliyunStandIn, signature
from tests.conftest import World, error_code
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.notify import actions, adapters
from timebank.notify.models import Notification, NotificationStatus, OrderReminder
from timebank.orders.models import Order

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]
IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture(autouse=True)
def _immediate_tasks(settings: Any) -> None:
    settings.TASKS = IMMEDIATE
    settings.NOTIFY_CHANNELS = ["outbox"]


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )


class Loop:
    """Drives orders through the API, running after-commit work as a real commit would."""

    def __init__(self, world: World, item: ServiceItem, capture: Capture) -> None:
        self.world, self.item, self.capture = world, item, capture

    def post(self, persona: str, url: str, body: Any = None) -> Any:
        with self.capture(execute=True):
            return self.world.api(persona).post(url, body)

    def create(self, *, urgent: bool = False, start_in: dt.timedelta = dt.timedelta(days=1)) -> int:
        body = {
            "recipient_id": self.world.members["recipient"].pk,
            "service_item_id": self.item.pk,
            "scheduled_start": (timezone.now() + start_in).isoformat(),
            "planned_minutes": 60,
            "payer": "subsidy",
            "channel": "hotline",
            "notes": "",
            "urgent": urgent,
        }
        resp = self.post("operator", "/api/v1/orders", body)
        assert resp.status_code == 201, resp.content
        return int(resp.json()["id"])

    def act(self, order_id: int, persona: str, action: str, body: Any = None) -> None:
        resp = self.post(persona, f"/api/v1/orders/{order_id}/{action}", body)
        assert resp.status_code == 200, (action, resp.content)

    def dispatch(self, order_id: int) -> None:
        self.act(order_id, "staff", "dispatch", {"volunteer_id": self.world.members["volunteer"].pk})

    def accepted(self, **kw: Any) -> int:
        oid = self.create(**kw)
        self.dispatch(oid)
        self.act(oid, "volunteer", "accept")
        return oid


@pytest.fixture
def loop(world: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture) -> Loop:
    return Loop(world, item, django_capture_on_commit_callbacks)


def inbox(world: World, persona: str, **params: Any) -> dict[str, Any]:
    resp = world.api(persona).get("/api/v1/notifications", params or None)
    assert resp.status_code == 200, resp.content
    return dict(resp.json())


def templates(world: World, persona: str) -> list[str]:
    return [n["template"] for n in inbox(world, persona)["items"]]


def test_dispatch_notifies_the_volunteer_once(world: World, loop: Loop) -> None:
    oid = loop.create()
    assert templates(world, "volunteer") == []
    loop.dispatch(oid)
    box = inbox(world, "volunteer")
    assert [n["template"] for n in box["items"]] == ["order.dispatched"]
    note = box["items"][0]
    assert note["order_id"] == oid and note["status"] == "sent" and note["read_at"] is None
    assert box["unread_count"] == 1
    assert "家庭保洁" in note["body"] and "李大爷" in note["body"]
    # Nothing the volunteer may not see yet: no phone, no address, no confirmation code.
    order = Order.objects.get(pk=oid)
    recipient = world.members["recipient"]
    text = json.dumps(note, ensure_ascii=False)
    for secret in (order.code, recipient.phone, recipient.address):
        assert secret not in text
    assert templates(world, "recipient") == [] and templates(world, "relative") == []


def test_acceptance_tells_the_recipient_and_relatives(world: World, loop: Loop) -> None:
    loop.accepted()
    assert templates(world, "recipient") == ["order.accepted"]
    assert templates(world, "relative") == ["order.accepted"]
    assert "王秀英" in inbox(world, "relative")["items"][0]["body"]
    assert templates(world, "volunteer") == ["order.dispatched"]
    assert templates(world, "neighbour") == []


def test_completion_asks_the_recipient_to_confirm_and_confirmation_tells_the_volunteer(
    world: World, loop: Loop
) -> None:
    oid = loop.accepted(start_in=dt.timedelta(minutes=30))  # check-in opens an hour before the start
    loop.act(oid, "volunteer", "check-in")
    # The hour was served: the check-in is set back rather than the test waiting (credits follow the clock).
    Order.objects.filter(pk=oid).update(check_in_at=timezone.now() - dt.timedelta(minutes=60))
    loop.act(oid, "volunteer", "check-out")
    assert templates(world, "recipient")[0] == "order.completed"
    assert "确认" in inbox(world, "recipient")["items"][0]["title"]
    assert templates(world, "relative")[0] == "order.completed"
    loop.act(oid, "recipient", "confirm", {"actual_minutes": 60})
    box = inbox(world, "volunteer")["items"]
    assert box[0]["template"] == "order.confirmed" and "60 分钟" in box[0]["body"]


def test_cancelling_tells_the_volunteer(world: World, loop: Loop) -> None:
    oid = loop.accepted()
    loop.act(oid, "operator", "cancel", {"reason": "老人住院"})
    assert templates(world, "volunteer")[0] == "order.cancelled"


def set_duty(world: World, persona: str, on: bool) -> Any:
    return world.api(persona).post("/api/v1/duty", {"on_duty": on})


def test_urgent_orders_reach_on_duty_staff_of_the_subtree_and_relatives_at_once(world: World, loop: Loop) -> None:
    for persona in ("staff", "branch_admin", "operator", "staff_next", "other_bank_staff"):
        assert set_duty(world, persona, True).json()["on_duty"] is True
    assert set_duty(world, "head_office_admin", False).status_code == 200
    loop.create(urgent=True)
    for persona in ("staff", "branch_admin", "operator", "relative"):
        assert templates(world, persona) == ["order.urgent"], persona
        assert inbox(world, persona)["items"][0]["urgent"] is True
    # Off duty, another community, another bank: nothing. The recipient made the call themselves.
    for persona in ("head_office_admin", "staff_next", "other_bank_staff", "recipient", "volunteer"):
        assert templates(world, persona) == [], persona
    # Going off duty stops them.
    set_duty(world, "staff", False)
    loop.create(urgent=True)
    assert templates(world, "staff") == ["order.urgent"]
    assert templates(world, "branch_admin") == ["order.urgent", "order.urgent"]


def test_an_ordinary_order_bothers_nobody_on_creation(world: World, loop: Loop) -> None:
    set_duty(world, "staff", True)
    loop.create()
    assert templates(world, "staff") == [] and templates(world, "relative") == []


def test_duty_is_for_staff_and_operators_only(world: World) -> None:
    assert world.api("staff").get("/api/v1/duty").json() == {"on_duty": False, "updated_at": None}
    on = set_duty(world, "operator", True)
    assert on.status_code == 200 and on.json()["on_duty"] is True
    assert world.api("operator").get("/api/v1/duty").json()["on_duty"] is True
    for persona in ("volunteer", "relative", "assessor"):
        resp = set_duty(world, persona, True)
        assert resp.status_code == 403 and error_code(resp) == "not_staff", persona
    assert world.api("anonymous").post("/api/v1/duty", {"on_duty": True}).status_code == 401
    for bad in ({"on_duty": "yes"}, {"on_duty": 1}, {}, {"on_duty": None}):
        assert world.api("staff").post("/api/v1/duty", bad).status_code == 422, bad
    assert world.api("staff").post("/api/v1/duty", raw="[]").status_code == 400


@pytest.fixture
def broken_outbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    calls: list[int] = []

    def fail(self: adapters.OutboxAdapter, notification: Notification) -> None:
        calls.append(notification.pk)
        raise adapters.SendError("提供方暂时不可用")

    monkeypatch.setattr(adapters.OutboxAdapter, "send", fail)
    yield calls


def test_a_failed_send_never_rolls_back_the_order_and_is_retried(
    world: World, loop: Loop, broken_outbox: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    oid = loop.create()
    loop.dispatch(oid)
    assert Order.objects.get(pk=oid).state == "dispatched"
    note = Notification.objects.get(order_id=oid)
    assert note.status == NotificationStatus.FAILED and note.attempts == 1
    assert "提供方暂时不可用" in note.last_error and note.next_attempt_at is not None
    assert inbox(world, "volunteer")["items"][0]["status"] == "failed"
    # Not due yet: the cron command leaves it alone.
    out = StringIO()
    call_command("send_notifications", stdout=out)
    assert out.getvalue().strip() == "sent 0, failed 0"
    monkeypatch.undo()
    later = timezone.now() + dt.timedelta(minutes=2)
    assert actions.send_due(now=later) == {"sent": 1, "failed": 0}
    note.refresh_from_db()
    assert note.status == NotificationStatus.SENT and note.attempts == 2 and note.last_error == ""
    assert actions.send_due(now=later) == {"sent": 0, "failed": 0}
    assert Order.objects.get(pk=oid).state == "dispatched"


def test_retries_back_off_and_give_up(world: World, loop: Loop, broken_outbox: list[int], settings: Any) -> None:
    settings.NOTIFY_MAX_ATTEMPTS = 3
    loop.dispatch(loop.create())
    note = Notification.objects.get()
    when = timezone.now()
    for attempt in (2, 3):
        when += dt.timedelta(hours=1)
        assert actions.send_due(now=when) == {"sent": 0, "failed": 1}
        note.refresh_from_db()
        assert note.attempts == attempt
    assert note.next_attempt_at is None  # given up
    assert actions.send_due(now=when + dt.timedelta(days=1)) == {"sent": 0, "failed": 0}
    assert len(broken_outbox) == 3
    assert actions.backoff(1) == dt.timedelta(minutes=1) and actions.backoff(3) == dt.timedelta(minutes=4)
    assert actions.backoff(30) == dt.timedelta(hours=6)


def test_retry_failed_resends_what_was_given_up(world: World, loop: Loop, settings: Any) -> None:
    # SMS without credentials fails visibly, once (retrying cannot help), next to the outbox copy.
    settings.NOTIFY_CHANNELS = ["outbox", "sms"]
    loop.dispatch(loop.create())
    sms = Notification.objects.get(channel="sms")
    assert sms.member == world.members["volunteer"] and sms.status == "failed"
    assert "not configured" in sms.last_error and sms.next_attempt_at is None and sms.attempts == 1
    assert Notification.objects.get(channel="outbox").status == "sent"
    out = StringIO()
    call_command("send_notifications", "--retry-failed", stdout=out)
    assert out.getvalue().strip() == "sent 0, failed 1"
    sms.refresh_from_db()
    assert sms.attempts == 2


def test_a_broken_hook_does_not_break_the_request(world: World, loop: Loop, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(order: Order, action: str, **kw: object) -> list[Notification]:
        raise RuntimeError("notify is down")

    monkeypatch.setattr("timebank.notify.hooks.do_notify_order", boom)
    oid = loop.create()
    loop.dispatch(oid)
    assert Order.objects.get(pk=oid).state == "dispatched"
    assert Notification.objects.count() == 0


def test_reminders_go_once_to_the_volunteer_and_the_recipient(world: World, loop: Loop) -> None:
    soon = loop.accepted(start_in=dt.timedelta(hours=1))
    later = loop.accepted(start_in=dt.timedelta(hours=5))
    loop.create(start_in=dt.timedelta(minutes=30))  # not accepted: no reminder
    out = StringIO()
    call_command("send_reminders", stdout=out)
    assert out.getvalue().strip() == "reminded 1 orders"
    for persona in ("volunteer", "recipient"):
        items = inbox(world, persona)["items"]
        assert items[0]["template"] == "order.reminder" and items[0]["order_id"] == soon
    assert "order.reminder" not in templates(world, "relative")
    # Idempotent: a second run (or a second cron host) sends nothing more.
    assert actions.send_reminders() == 0
    assert Notification.objects.filter(template="order.reminder").count() == 2
    assert actions.send_reminders(hours=6) == 1
    assert set(OrderReminder.objects.values_list("order_id", flat=True)) == {soon, later}
    with pytest.raises(Exception, match="hours"):
        call_command("send_reminders", "--hours", "0")


def test_notifications_are_seen_only_by_their_owner(world: World, loop: Loop) -> None:
    oid = loop.accepted()
    mine = inbox(world, "recipient")["items"][0]
    nid = mine["id"]
    for persona in ("relative", "volunteer", "staff", "superuser", "stranger"):
        assert nid not in [n["id"] for n in inbox(world, persona)["items"]], persona
        resp = world.api(persona).post(f"/api/v1/notifications/{nid}/read")
        assert resp.status_code == 404 and error_code(resp) == "notification_not_found", persona
    assert world.api("anonymous").get("/api/v1/notifications").status_code == 401
    assert inbox(world, "recipient")["unread_count"] == 1
    read = world.api("recipient").post(f"/api/v1/notifications/{nid}/read")
    assert read.status_code == 200 and read.json()["read_at"] is not None
    again = world.api("recipient").post(f"/api/v1/notifications/{nid}/read")
    assert again.json()["read_at"] == read.json()["read_at"]
    assert inbox(world, "recipient")["unread_count"] == 0
    # The relative's own copy is untouched; read-all marks theirs only.
    assert inbox(world, "relative")["unread_count"] == 1
    assert world.api("relative").post("/api/v1/notifications/read-all").json() == {"marked": 1}
    assert inbox(world, "volunteer")["unread_count"] == 1
    assert Order.objects.get(pk=oid).state == "accepted"


def test_listing_pages_newest_first_and_refuses_bad_input(world: World, loop: Loop) -> None:
    for _ in range(3):
        loop.dispatch(loop.create())
    ids = list(Notification.objects.filter(user=world.users["volunteer"]).order_by("-pk").values_list("pk", flat=True))
    first = inbox(world, "volunteer", limit=2)
    assert [n["id"] for n in first["items"]] == ids[:2] and first["unread_count"] == 3
    rest = inbox(world, "volunteer", limit=2, cursor=first["next_cursor"])
    assert [n["id"] for n in rest["items"]] == ids[2:] and rest["next_cursor"] is None
    world.api("volunteer").post(f"/api/v1/notifications/{ids[0]}/read")
    assert [n["id"] for n in inbox(world, "volunteer", unread="true")["items"]] == ids[1:]
    assert inbox(world, "volunteer", channel="sms")["items"] == []
    api = world.api("volunteer")
    for params in ({"limit": 0}, {"limit": 201}, {"limit": 10**30}, {"cursor": "!!"}, {"channel": "fax"}):
        resp = api.get("/api/v1/notifications", params)
        assert resp.status_code == 422, params
    for bad in ("0", "-1", "abc", str(2**70)):
        assert api.post(f"/api/v1/notifications/{bad}/read").status_code in (404, 422), bad


def test_the_database_queue_waits_for_the_worker(
    world: World, loop: Loop, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker closes "old" connections between tasks, which would close the test's transaction.
    monkeypatch.setattr("django_tasks_db.management.commands.db_worker.close_old_connections", lambda: None)
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    loop.dispatch(loop.create())
    note = Notification.objects.get()
    assert note.status == "pending"
    assert inbox(world, "volunteer")["items"][0]["id"] == note.pk  # visible before delivery
    assert DBTaskResult.objects.filter(task_path="timebank.notify.tasks.send_notification").count() == 1
    call_command("db_worker", "--batch", "--no-startup-delay", "--no-reload", verbosity=0)
    note.refresh_from_db()
    assert note.status == "sent"


def test_email_uses_the_django_mail_backend(world: World, loop: Loop, settings: Any) -> None:
    settings.NOTIFY_CHANNELS = ["outbox", "email"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    volunteer = world.users["volunteer"]
    volunteer.email = "wang@example.org"
    volunteer.save(update_fields=["email"])
    loop.dispatch(loop.create())
    assert [m.to for m in mail.outbox] == [["wang@example.org"]]
    assert mail.outbox[0].subject == "新的派单"
    assert Notification.objects.get(channel="email").status == "sent"


class FakeResponse:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def __enter__(self) -> FakeResponse:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self) -> bytes:
        return json.dumps(self.data).encode()


def test_sms_builds_a_signed_aliyun_request(
    world: World, loop: Loop, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.NOTIFY_CHANNELS = ["sms"]
    settings.NOTIFY_SMS_ACCESS_KEY_ID = "testid"
    settings.NOTIFY_SMS_ACCESS_KEY_SECRET = "testsecret"
    settings.NOTIFY_SMS_SIGN_NAME = "时间银行"
    settings.NOTIFY_SMS_TEMPLATES = {"order.dispatched": "SMS_001"}
    sent: list[urllib.request.Request] = []

    def fake_urlopen(request: urllib.request.Request, timeout: float) -> FakeResponse:
        sent.append(request)
        return FakeResponse({"Code": "OK", "Message": "OK"})

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    loop.dispatch(loop.create())
    assert Notification.objects.get().status == "sent"
    (request,) = sent
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(request.full_url).query)
    assert query["PhoneNumbers"] == [world.members["volunteer"].phone]
    assert query["TemplateCode"] == ["SMS_001"] and query["SignName"] == ["时间银行"]
    params = json.loads(query["TemplateParam"][0])
    assert params["service"] == "家庭保洁" and "order_id" not in params
    assert query["Signature"][0]
    # The signature is Aliyun's documented example when given its inputs.
    example = adapters.aliyun_sms_request(
        adapters.SmsConfig("testId", "testSecret", "阿里云短信测试专用", {}, "https://dysmsapi.aliyuncs.com/"),
        phone="15300000001",
        template_code="SMS_71390007",
        params={"customer": "test"},
        now=dt.datetime(2017, 7, 12, 2, 42, 19, tzinfo=dt.UTC),
        nonce="45e25e9b-0a6f-4070-8c85-2956eda1b466",
        extra={"Format": "XML", "OutId": "123", "RegionId": "cn-hangzhou"},
    )
    signature = urllib.parse.parse_qs(urllib.parse.urlsplit(example.full_url).query)["Signature"][0]
    assert signature == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    # A provider refusal is a failed, retryable send.
    monkeypatch.setattr(urllib.request, "urlopen", lambda r, timeout: FakeResponse({"Code": "isv.BUSINESS_LIMIT"}))
    loop.dispatch(loop.create())
    refused = Notification.objects.order_by("-pk").first()
    assert refused is not None and refused.status == "failed" and refused.next_attempt_at is not None


# --- SMS through the real adapter, to a local stand-in speaking Aliyun's SendSms (tests/aliyun_standin.py) ---

STANDIN_KEY, STANDIN_SECRET = "LTAI5tStandInKey", "stand-in-secret"


@pytest.fixture
def aliyun(settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AliyunStandIn]:
    standin = AliyunStandIn(
        keys={STANDIN_KEY: STANDIN_SECRET}, sign_names={"时间银行"}, templates={"SMS_480001"}, workdir=tmp_path
    )
    with standin:
        # The adapter speaks https only: it trusts the stand-in's certificate as it would Aliyun's.
        monkeypatch.setenv("SSL_CERT_FILE", standin.ca_file)
        settings.NOTIFY_SMS_ACCESS_KEY_ID = STANDIN_KEY
        settings.NOTIFY_SMS_ACCESS_KEY_SECRET = STANDIN_SECRET
        settings.NOTIFY_SMS_SIGN_NAME = "时间银行"
        settings.NOTIFY_SMS_TEMPLATES = {"order.accepted_code": "SMS_480001"}
        settings.NOTIFY_SMS_ENDPOINT = standin.endpoint
        yield standin


def accepted_sms(order_id: int) -> Notification:
    return Notification.objects.get(order_id=order_id, channel="sms", template="order.accepted_code")


def test_the_stand_in_signs_aliyuns_documented_example() -> None:
    """The stand-in's own check (written from Aliyun's documentation, not the adapter's code) gives the
    signature of the documentation's worked example, so agreeing with it means agreeing with Aliyun."""
    example = {
        "AccessKeyId": "testId",
        "Action": "SendSms",
        "Format": "XML",
        "OutId": "123",
        "PhoneNumbers": "15300000001",
        "RegionId": "cn-hangzhou",
        "SignName": "阿里云短信测试专用",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        "SignatureVersion": "1.0",
        "TemplateCode": "SMS_71390007",
        "TemplateParam": '{"customer":"test"}',
        "Timestamp": "2017-07-12T02:42:19Z",
        "Version": "2017-05-25",
    }
    assert signature("testSecret", "GET", example) == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_an_accepted_orders_sms_goes_through_the_adapter_to_the_stand_in(
    world: World, loop: Loop, aliyun: AliyunStandIn
) -> None:
    oid = loop.accepted()
    sms = accepted_sms(oid)
    assert sms.status == NotificationStatus.SENT and sms.attempts == 1 and sms.last_error == ""
    [got] = aliyun.received
    assert got.method == "GET" and got.answer["Code"] == "OK"
    assert sms.member is not None and got.params["PhoneNumbers"] == sms.member.phone
    assert got.params["SignName"] == "时间银行" and got.params["TemplateCode"] == "SMS_480001"
    values = json.loads(got.params["TemplateParam"])
    order = Order.objects.get(pk=oid)
    assert values["code"] == order.code and values["service"] == "家庭保洁" and "order_id" not in values
    assert values["volunteer"] == world.members["volunteer"].name


def test_a_provider_limit_fails_the_sms_with_its_code_and_the_retry_sends_it(
    world: World, loop: Loop, aliyun: AliyunStandIn
) -> None:
    aliyun.refuse_next("isv.BUSINESS_LIMIT_CONTROL")
    oid = loop.accepted()
    sms = accepted_sms(oid)
    assert sms.status == NotificationStatus.FAILED and sms.attempts == 1
    assert "isv.BUSINESS_LIMIT_CONTROL" in sms.last_error and sms.next_attempt_at is not None
    assert Order.objects.get(pk=oid).state == "accepted"  # a refused SMS never undoes the acceptance
    # The notify app's retry, once due, goes through (a new nonce: the stand-in refuses a replayed one).
    assert actions.send_due(now=timezone.now() + dt.timedelta(minutes=2)) == {"sent": 1, "failed": 0}
    sms.refresh_from_db()
    assert sms.status == NotificationStatus.SENT and sms.attempts == 2 and sms.last_error == ""
    first, second = aliyun.received
    assert first.answer["Code"] == "isv.BUSINESS_LIMIT_CONTROL" and second.answer["Code"] == "OK"
    assert first.params["SignatureNonce"] != second.params["SignatureNonce"]


@pytest.mark.parametrize(
    ("setting", "value", "code"),
    [
        ("NOTIFY_SMS_ACCESS_KEY_SECRET", "not-the-secret", "SignatureDoesNotMatch"),  # HTTP 400
        ("NOTIFY_SMS_ACCESS_KEY_ID", "LTAI5tUnknown", "InvalidAccessKeyId.NotFound"),  # HTTP 404
        ("NOTIFY_SMS_SIGN_NAME", "别的签名", "isv.SMS_SIGNATURE_ILLEGAL"),
        ("NOTIFY_SMS_TEMPLATES", {"order.accepted_code": "SMS_999"}, "isv.SMS_TEMPLATE_ILLEGAL"),
    ],
)
def test_a_final_refusal_fails_the_sms_with_the_providers_code_and_is_not_retried(
    world: World, loop: Loop, aliyun: AliyunStandIn, settings: Any, setting: str, value: Any, code: str
) -> None:
    setattr(settings, setting, value)
    oid = loop.accepted()
    sms = accepted_sms(oid)
    assert sms.status == NotificationStatus.FAILED and code in sms.last_error and sms.next_attempt_at is None
    [got] = aliyun.received
    assert got.answer["Code"] == code
    assert actions.send_due(now=timezone.now() + dt.timedelta(hours=1)) == {"sent": 0, "failed": 0}


def test_the_stand_in_refuses_a_tampered_replayed_or_stale_request(aliyun: AliyunStandIn) -> None:
    config = adapters.sms_config()

    def request(nonce: str, now: dt.datetime | None = None) -> urllib.request.Request:
        return adapters.aliyun_sms_request(
            config,
            phone="13912345678",
            template_code="SMS_480001",
            params={"code": "123456"},
            now=now or dt.datetime.now(dt.UTC),
            nonce=nonce,
        )

    assert adapters._post_or_get(request("n-1"))["Code"] == "OK"
    assert adapters._post_or_get(request("n-1"))["Code"] == "SignatureNonceUsed"
    tampered = request("n-2")
    tampered.full_url = tampered.full_url.replace("PhoneNumbers=13912345678", "PhoneNumbers=13987654321")
    assert adapters._post_or_get(tampered)["Code"] == "SignatureDoesNotMatch"
    stale = request("n-3", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20))
    assert adapters._post_or_get(stale)["Code"] == "InvalidTimeStamp.Expired"
    assert [r.answer["Code"] for r in aliyun.received] == [
        "OK",
        "SignatureNonceUsed",
        "SignatureDoesNotMatch",
        "InvalidTimeStamp.Expired",
    ]


def test_wechat_sends_a_template_message_to_a_bound_login(
    world: World, loop: Loop, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.NOTIFY_CHANNELS = ["wechat"]
    settings.NOTIFY_WECHAT_APP_ID = "wx123"
    settings.NOTIFY_WECHAT_APP_SECRET = "appsecret"
    settings.NOTIFY_WECHAT_TEMPLATES = {"order.dispatched": "TPL-1"}
    sent: list[urllib.request.Request] = []

    def fake_urlopen(request: urllib.request.Request, timeout: float) -> FakeResponse:
        sent.append(request)
        if "/cgi-bin/token" in request.full_url:
            return FakeResponse({"access_token": "TOKEN", "expires_in": 7200})
        return FakeResponse({"errcode": 0, "errmsg": "ok", "msgid": 1})

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    # Without a binding the volunteer has no WeChat address: no WeChat copy at all.
    loop.dispatch(loop.create())
    assert not Notification.objects.filter(channel="wechat").exists() and sent == []
    actions.do_bind_wechat(None, world.users["volunteer"], openid="oABC-123_x")
    with pytest.raises(Exception, match="openid"):
        actions.do_bind_wechat(None, world.users["volunteer"], openid="bad openid!")
    loop.dispatch(loop.create())
    assert Notification.objects.get(channel="wechat").status == "sent"
    token_call, send_call = sent
    assert "appid=wx123" in token_call.full_url
    assert send_call.full_url.endswith("/cgi-bin/message/template/send?access_token=TOKEN")
    assert isinstance(send_call.data, bytes)
    body = json.loads(send_call.data)
    assert body["touser"] == "oABC-123_x" and body["template_id"] == "TPL-1"
    assert body["data"]["first"]["value"] == "新的派单" and body["data"]["keyword1"]["value"] == "家庭保洁"
