"""One idempotency service (timebank/ops/idempotency.py): the `Idempotency-Key` header, the API body's
`idempotency_key` and the ledger's key follow one set of rules, and a key names one write per caller."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from typing import Any

import pytest
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from tests.conftest import World, error_code, web_client
from tests.test_idempotency_header import item, order_body  # noqa: F401 - the fixture
from timebank.catalogue.models import ServiceItem
from timebank.goods.models import Goods
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Transaction
from timebank.ops.idempotency import fingerprint, once
from timebank.ops.models import IdempotentRequest
from timebank.orders.models import Order
from timebank.orgs.actions import do_issue_token
from timebank.orgs.models import Rules


def fund(world: World, persona: str, minutes: int) -> None:
    Rules.objects.filter(head_office=world.bank).update(approval_threshold_minutes=None)
    do_adjustment(
        world.users["superuser"], member=world.members[persona], minutes=minutes, bucket="reserve", reason="期初"
    )


def transfer(world: World, key: str, minutes: int = 30) -> dict[str, Any]:
    return {
        "from_member_id": world.members["recipient"].pk,
        "to_member_id": world.members["relative"].pk,
        "minutes": minutes,
        "kind": "relative",
        "memo": "",
        "idempotency_key": key,
    }


def test_the_same_key_through_header_and_body_is_one_action(world: World) -> None:
    fund(world, "recipient", 600)
    api = world.api("recipient")
    body = transfer(world, "t-1")
    first = api.post("/api/v1/transfers", body, HTTP_IDEMPOTENCY_KEY="t-1")
    assert first.status_code == 201, first.content
    txs = Transaction.objects.count()
    # The retry without the header, with the header alone naming it, and with both: the same answer.
    for extra in ({}, {"HTTP_IDEMPOTENCY_KEY": "t-1"}):
        again = api.post("/api/v1/transfers", body, **extra)
        assert again.status_code == 201 and again.json() == first.json()
        assert again["Idempotent-Replayed"] == "true"
    assert Transaction.objects.count() == txs
    # One claim for the key, not one per way of sending it.
    assert IdempotentRequest.objects.filter(key="t-1").count() == 1
    # The key names that transfer: another body under it, by header or body, is 409 and moves nothing.
    other = api.post("/api/v1/transfers", transfer(world, "t-1", 31))
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    # Validation comes before conflicts: an invalid body under the key is the endpoint's 422.
    invalid = api.post("/api/v1/transfers", {**transfer(world, "t-1"), "minutes": "many"})
    assert invalid.status_code == 422
    assert Transaction.objects.count() == txs


def test_a_body_key_first_then_the_header_is_the_same_action(world: World) -> None:
    fund(world, "recipient", 600)
    api = world.api("recipient")
    body = transfer(world, "t-2")
    first = api.post("/api/v1/transfers", body)
    assert first.status_code == 201, first.content
    again = api.post("/api/v1/transfers", body, HTTP_IDEMPOTENCY_KEY="t-2")
    assert again.status_code == 201 and again.json() == first.json()
    assert Transaction.objects.filter(idempotency_key="t-2").count() == 1


def test_the_order_actions_honour_their_body_key(world: World, item: ServiceItem) -> None:  # noqa: F811
    """The seven order input schemas declare an optional `idempotency_key`: a retried transition answers
    what the first one answered instead of 409 for a state it already left, and does nothing more."""
    staff = world.api("staff")
    oid = staff.post("/api/v1/orders", order_body(world, item)).json()["id"]
    volunteer = world.members["volunteer"].pk
    body = {"volunteer_id": volunteer, "idempotency_key": "dispatch-1"}
    first = staff.post(f"/api/v1/orders/{oid}/dispatch", body)
    assert first.status_code == 200 and first.json()["state"] == "dispatched"
    vol = world.api("volunteer")
    assert vol.post(f"/api/v1/orders/{oid}/accept", {"idempotency_key": "accept-1"}).status_code == 200
    # The order has moved on: the dispatch's retry answers the dispatch, and dispatches nobody again.
    again = staff.post(f"/api/v1/orders/{oid}/dispatch", body)
    assert again.status_code == 200 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Order.objects.get(pk=oid).state == "accepted"
    replay = vol.post(f"/api/v1/orders/{oid}/accept", {"idempotency_key": "accept-1"})
    assert replay.status_code == 200 and replay["Idempotent-Replayed"] == "true"
    # Without a key a repeated transition is refused by the order's state, as before.
    assert vol.post(f"/api/v1/orders/{oid}/accept", {}).status_code == 409
    # The key with another body is 409; a refused request does not consume its key.
    other = staff.post(f"/api/v1/orders/{oid}/dispatch", {**body, "volunteer_id": volunteer + 10_000})
    assert other.status_code == 409 and error_code(other) == "idempotency_key_reused"
    early = staff.post(f"/api/v1/orders/{oid}/confirm", {"idempotency_key": "confirm-1"})
    assert early.status_code == 409 and not IdempotentRequest.objects.filter(key="confirm-1").exists()


def test_a_refused_block_gives_its_key_back(world: World) -> None:
    fp = fingerprint("test", {"n": 1})
    with pytest.raises(ValueError), once("user:1", "k-once", fp) as claim:
        assert claim.replay is None
        raise ValueError
    assert not IdempotentRequest.objects.filter(key="k-once").exists()
    with once("user:1", "k-once", fp) as claim:
        assert claim.replay is None
        claim.keep("made 7")
    with once("user:1", "k-once", fp) as claim:
        assert claim.replay is not None and claim.replay.body == "made 7"


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers")
@pytest.mark.django_db(transaction=True)
def test_parallel_retries_of_an_order_action_with_one_body_key_act_once(world: World, item: ServiceItem) -> None:  # noqa: F811
    staff = world.api("staff")
    body = order_body(world, item)
    body["scheduled_start"] = (timezone.now() + dt.timedelta(hours=2)).isoformat()
    oid = staff.post("/api/v1/orders", body).json()["id"]
    token = do_issue_token(world.users["staff"])
    threads = 8
    barrier = threading.Barrier(threads)
    answers: list[tuple[int, bytes]] = [(0, b"")] * threads
    payload = json.dumps({"reason": "老人住院了", "idempotency_key": "cancel-race"})

    def worker(i: int) -> None:
        try:
            client = Client(raise_request_exception=False)
            barrier.wait(timeout=30)
            resp = client.post(
                f"/api/v1/orders/{oid}/cancel",
                data=payload,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                REMOTE_ADDR=f"10.9.0.{i + 1}",
            )
            answers[i] = (resp.status_code, resp.content)
        except BaseException as exc:
            answers[i] = (599, repr(exc).encode())
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert {status for status, _body in answers} == {200}, answers
    assert len({content for _status, content in answers}) == 1
    assert Order.objects.get(pk=oid).state == "cancelled"
    assert IdempotentRequest.objects.filter(key="cancel-race").count() == 1


def _page_key(html: str, name: str = "idempotency_key") -> str:
    found = re.search(rf'name="{name}" value="([0-9a-f]{{32}})"', html)
    assert found is not None, name
    return found.group(1)


def test_a_page_form_submitted_twice_acts_once(world: World) -> None:
    """The outlet counter's new-goods form: its hidden key is claimed through the service, so the second
    submit adds nothing and says so; a refused submit gives the key back for the corrected form."""
    staff = web_client(world.users["staff"])
    url = f"/outlet/{world.outlet.pk}/"
    key = _page_key(staff.get(url).content.decode())
    form = {"idempotency_key": key, "name": "大米 5 斤", "price_minutes": "60", "stock": "-1"}
    assert staff.post(f"{url}goods/", form).status_code == 422  # refused: the key stays free
    assert not IdempotentRequest.objects.filter(key=key).exists()
    form["stock"] = "3"
    first = staff.post(f"{url}goods/", form)
    second = staff.post(f"{url}goods/", form, follow=True)
    assert first.status_code == 302 and second.status_code == 200
    assert "没有重复添加" in second.content.decode()
    assert Goods.objects.filter(outlet=world.outlet, name="大米 5 斤").count() == 1
    claim = IdempotentRequest.objects.get(key=key)
    assert claim.scope == f"user:{world.users['staff'].pk}" and claim.status == 0
    # Another staff login's form with the same key is its own.
    other = web_client(world.users["head_office_admin"])
    assert other.post(f"{url}goods/", {**form, "name": "食用油"}).status_code == 302
    assert Goods.objects.filter(outlet=world.outlet).count() == 2


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers")
@pytest.mark.django_db(transaction=True)
def test_parallel_submits_of_one_page_form_act_once(world: World) -> None:
    staff = world.users["staff"]
    url = f"/outlet/{world.outlet.pk}/"
    key = _page_key(web_client(staff).get(url).content.decode())
    form = {"idempotency_key": key, "name": "挂面", "price_minutes": "30", "stock": "5"}
    threads = 6
    barrier = threading.Barrier(threads)
    answers: list[int] = [0] * threads

    def worker(i: int) -> None:
        try:
            client = web_client(staff)
            barrier.wait(timeout=30)
            answers[i] = client.post(f"{url}goods/", form, REMOTE_ADDR=f"10.8.0.{i + 1}").status_code
        except BaseException:
            answers[i] = 599
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=120)
    assert answers == [302] * threads
    assert Goods.objects.filter(outlet=world.outlet, name="挂面").count() == 1
