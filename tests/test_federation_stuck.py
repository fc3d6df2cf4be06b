"""Issue 16: "a refused or stuck transfer shows its reason". A transfer to a peer stays `pending` (the contract's
states are unchanged) until the peer answers; once a delivery has failed, or it has waited longer than
federation/stuck.py's STUCK_AFTER, it is shown as 滞留 with the attempts and the last delivery error: on the member's
transfer page, the head office's peer pages, and in GET /federation/transfers/{id} (added fields `stuck`, `attempts`,
`last_error`; the contract's fields stay as they are, and the POST's answer, which a replay repeats byte for byte,
does not carry them).

The peer is down: its address answers nothing (connection refused at once), as in tests/test_federation_pages.py."""

from __future__ import annotations

import datetime as dt
import html
import re

from django.utils import timezone

from tests import test_federation_pages as pages
from tests.conftest import World, web_client
from timebank.federation import actions
from timebank.federation.actions import apply_outcome, do_send_transfer
from timebank.federation.models import FederatedTransfer, Outbox
from timebank.federation.stuck import STUCK_AFTER, delivery

# The fixture of tests/test_federation_pages.py: a configured node whose volunteer has 300 minutes.
node, _peer = pages.node, pages._peer

CONTRACT_FIELDS = {"transfer_id", "state", "minutes", "peer_id", "to_account", "created_at"}


def _send(w: World, minutes: int = 60, key: str = "k1") -> FederatedTransfer:
    transfer, _replayed = do_send_transfer(
        w.users["volunteer"],
        member=w.members["volunteer"],
        peer=_peer(w),
        to_account="7",
        to_name="王小红",
        minutes=minutes,
        memo="",
        idempotency_key=key,
    )
    return transfer


def _api(w: World, t: FederatedTransfer) -> dict[str, object]:
    resp = w.api("volunteer").get(f"/api/v1/federation/transfers/{t.transfer_id}")
    assert resp.status_code == 200, resp.content
    body: dict[str, object] = resp.json()
    return body


def _text(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_a_failed_delivery_shows_stuck_with_the_error_and_attempts_everywhere(node: World) -> None:
    t = _send(node)
    fresh = _api(node, t)
    assert set(fresh) >= CONTRACT_FIELDS and fresh["state"] == "pending"
    assert (fresh["stuck"], fresh["attempts"], fresh["last_error"]) == (False, 0, "")
    member = web_client(node.users["volunteer"])
    assert "滞留" not in _text(member.get(f"/me/federation/{t.transfer_id}/").content.decode())

    # The peer is down: the worker's sync tries and fails, twice.
    assert actions.sync().pending == 1
    Outbox.objects.filter(transfer=t).update(next_attempt_at=timezone.now())
    assert actions.sync().pending == 1
    box = Outbox.objects.get(transfer=t)
    assert box.attempts == 2 and box.last_error

    seen = _api(node, t)
    assert seen["state"] == "pending"  # the contract's state is unchanged
    # The error is the peer's or the network's own text (an HTTP body, a host): staff read it, the member does not.
    assert (seen["stuck"], seen["attempts"], seen["last_error"]) == (True, 2, "")
    page = _text(member.get(f"/me/federation/{t.transfer_id}/").content.decode())
    assert "滞留" in page and "待对方入账" in page and "2 次" in page and box.last_error not in page
    assert "最近一次错误" not in page
    # Staff of the sender's home subtree read the same through the API, with the error.
    staff = node.api("staff").get(f"/api/v1/federation/transfers/{t.transfer_id}").json()
    assert (staff["stuck"], staff["attempts"], staff["last_error"]) == (True, 2, box.last_error)
    staff_page = _text(web_client(node.users["staff"]).get(f"/me/federation/{t.transfer_id}/").content.decode())
    assert box.last_error in staff_page

    admin = web_client(node.users["head_office_admin"])
    listing = admin.get("/manage/federation/").content.decode()
    assert re.search(r"<td>1</td>\s*<td><strong class=\"error\">1</strong></td>", listing), listing
    detail = _text(admin.get(f"/manage/federation/{t.peer_id}/").content.decode())
    assert "滞留" in detail and box.last_error in detail and "2 次" in detail

    # Once the peer answers, it is no longer stuck (completed), whatever the attempts were.
    apply_outcome(t, "completed", "")
    done = _api(node, t)
    assert (done["state"], done["stuck"], done["attempts"]) == ("completed", False, 2)
    page = _text(member.get(f"/me/federation/{t.transfer_id}/").content.decode())
    assert "滞留" not in page and "已完成" in page


def test_a_transfer_waiting_past_the_threshold_is_stuck_even_without_an_error(node: World) -> None:
    t = _send(node)
    now = timezone.now()
    assert dt.timedelta(minutes=30) == STUCK_AFTER
    FederatedTransfer.objects.filter(pk=t.pk).update(agreed_at=now - STUCK_AFTER + dt.timedelta(seconds=5))
    t.refresh_from_db()
    assert not delivery(t, now).stuck  # just inside: still only pending
    assert _api(node, t)["stuck"] is False
    FederatedTransfer.objects.filter(pk=t.pk).update(agreed_at=now - STUCK_AFTER - dt.timedelta(seconds=5))
    t.refresh_from_db()
    assert delivery(t, now).stuck and Outbox.objects.get(transfer=t).attempts == 0
    seen = _api(node, t)
    assert (seen["stuck"], seen["attempts"], seen["last_error"]) == (True, 0, "")
    page = _text(web_client(node.users["volunteer"]).get(f"/me/federation/{t.transfer_id}/").content.decode())
    assert "滞留" in page and "0 次" in page
    # A refused transfer is never stuck: it shows the peer's reason, and the minutes are back.
    apply_outcome(t, "refused", "name_mismatch")
    seen = _api(node, t)
    assert (seen["state"], seen["reason"], seen["stuck"]) == ("refused", "name_mismatch", False)
    page = _text(web_client(node.users["volunteer"]).get(f"/me/federation/{t.transfer_id}/").content.decode())
    assert "滞留" not in page and "姓名和会员编号对不上" in page


def test_an_incoming_transfer_is_never_stuck(node: World) -> None:
    t = _send(node)
    FederatedTransfer.objects.filter(pk=t.pk).update(direction="in", agreed_at=timezone.now() - dt.timedelta(days=1))
    t.refresh_from_db()
    assert not delivery(t).stuck
