"""What one order action writes, and in which transaction: the structure behind bench/loop_profile.py.

Notifications are outbox rows of the action's own transaction (delivery is handed to the task queue only on
commit), the bank's audit chain is locked once per transition, and an Idempotency-Key request is claimed
without reading first. Counts of statements, never times.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import World, error_code
from timebank.audit.chain import walk_audit
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.notify.models import Notification
from timebank.ops.models import IdempotentRequest

Capture = Callable[..., AbstractContextManager[list[Callable[[], Any]]]]


@pytest.fixture(autouse=True)
def _outbox_only(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.NOTIFY_CHANNELS = ["outbox"]


@pytest.fixture
def item(world: World) -> ServiceItem:
    return do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )


def create(world: World, item: ServiceItem) -> int:
    body = {
        "recipient_id": world.members["recipient"].pk,
        "service_item_id": item.pk,
        # Soon enough to check in at once (the rules' checkin_early_minutes is 60).
        "scheduled_start": (timezone.now() + dt.timedelta(minutes=30)).isoformat(),
        "planned_minutes": 60,
        "payer": "subsidy",
        "channel": "staff",
    }
    resp = world.api("staff").post("/api/v1/orders", body)
    assert resp.status_code == 201, resp.content
    return int(resp.json()["id"])


def chain_reads(ctx: CaptureQueriesContext) -> int:
    return sum(1 for q in ctx.captured_queries if 'FROM "audit_chainhead"' in q["sql"])


def test_dispatch_queues_its_notification_in_its_own_transaction_and_sends_after_commit(
    world: World, item: ServiceItem, django_capture_on_commit_callbacks: Capture
) -> None:
    oid = create(world, item)
    with django_capture_on_commit_callbacks(execute=False) as callbacks, CaptureQueriesContext(connection) as ctx:
        resp = world.api("staff").post(
            f"/api/v1/orders/{oid}/dispatch",
            {"volunteer_id": world.members["volunteer"].pk},
            HTTP_IDEMPOTENCY_KEY="dispatch-1",
        )
    assert resp.status_code == 200, resp.content
    # Before any commit hook ran, the outbox row is there, pending: it belongs to the dispatch's transaction.
    notes = list(Notification.objects.filter(order_id=oid))
    assert [(n.template, n.status) for n in notes] == [("order.dispatched", "pending")]
    assert len(callbacks) == 1  # its delivery, handed to the task queue on commit only
    # One chain lock for the transition and its notification; both entries on the chain, in that order.
    assert chain_reads(ctx) == 1
    actions = list(AuditEntry.objects.filter(object_type="order", object_id=str(oid)).order_by("seq"))
    assert [a.action for a in actions][-2:] == ["order.dispatch", "notification.queue"]
    assert actions[-1].data["notifications"] == [notes[0].pk]
    assert walk_audit(f"bank:{world.bank.pk}") == []
    # The claim was written straight away, without reading the key first.
    assert not any('FROM "ops_idempotentrequest"' in q["sql"] for q in ctx.captured_queries)
    assert IdempotentRequest.objects.get(key="dispatch-1").status == 200


def test_a_refused_transition_queues_nothing(world: World, item: ServiceItem) -> None:
    oid = create(world, item)
    resp = world.api("volunteer").post(f"/api/v1/orders/{oid}/check-in")
    assert resp.status_code in (403, 409), resp.content
    assert error_code(resp) in ("not_allowed", "invalid_transition", "outside_subtree")
    assert not Notification.objects.filter(order_id=oid).exists()


def test_a_transition_nobody_hears_about_locks_the_chain_once_and_writes_no_notification(
    world: World, item: ServiceItem
) -> None:
    oid = create(world, item)
    api = world.api("staff")
    assert (
        api.post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk}).status_code == 200
    )
    volunteer = world.api("volunteer")
    assert volunteer.post(f"/api/v1/orders/{oid}/accept").status_code == 200
    before = Notification.objects.count()
    with CaptureQueriesContext(connection) as ctx:
        resp = volunteer.post(f"/api/v1/orders/{oid}/check-in")
    assert resp.status_code == 200, resp.content
    assert resp.json()["state"] == "in_service"
    assert Notification.objects.count() == before
    assert chain_reads(ctx) == 1
    assert walk_audit(f"bank:{world.bank.pk}") == []


def test_the_answer_is_the_order_as_stored(world: World, item: ServiceItem) -> None:
    oid = create(world, item)
    resp = world.api("staff").post(f"/api/v1/orders/{oid}/dispatch", {"volunteer_id": world.members["volunteer"].pk})
    assert resp.status_code == 200
    answered = resp.json()
    fresh = world.api("staff").get(f"/api/v1/orders/{oid}").json()
    # An action's answer masks the recipient's phone and leaves out the address, as lists do; only the order's
    # own page shows them in full (and audits it). Everything else is the order as stored.
    shown, masked = fresh.pop("recipient"), answered.pop("recipient")
    assert answered == fresh
    assert masked == {**shown, "phone": "138****0000", "address": None}
