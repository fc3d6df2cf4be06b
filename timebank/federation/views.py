"""Federation pages (issue 16): a member sends minutes to a member of a peer node (from 我的时间) and reads the
outcome; the superuser and head-office admins see each peer of their bank: balance, limit, the transfers still
pending or refused, and the comparison of the two nodes' statements for a day. The work is the federation core's:
`actions.do_send_transfer`, `actions.deliver`, `actions.reconcile`, and the `access` functions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from timebank.federation import actions
from timebank.federation.access import access_peer, access_transfer, reads_delivery_errors, visible_peers
from timebank.federation.api import _configured
from timebank.federation.forms import FederatedTransferForm, ReconcileForm
from timebank.federation.models import Direction, FederatedTransfer, Peer, TransferState
from timebank.federation.stuck import STUCK_AFTER, delivery
from timebank.federation.views_moves import incoming_waiting, move_reason, outgoing
from timebank.ledger.models import AccountKind
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.members.person import who
from timebank.orders.views_member import balances
from timebank.orgs.models import Role
from timebank.orgs.scope import user_of
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, page

# Why a peer refused a transfer, in the member's words (the core's reason codes).
REASONS: dict[str, Any] = {
    "unknown_account": _("对方时间银行没有这个会员编号。"),
    "name_mismatch": _("姓名和会员编号对不上。"),
    "member_not_active": _("对方会员现在不是正常状态，不能收时间。"),
    "peer_limit": _("超过了两家时间银行之间的往来限额。"),
}


def reason_text(code: str) -> str:
    return str(REASONS.get(code) or _("对方时间银行没有接收（%(code)s）。") % {"code": code or "refused"})


def _deliver_now(transfer: FederatedTransfer) -> FederatedTransfer:
    """Try the peer at once, as the API does; inside a transaction (never the network there) the task worker or
    `federation_sync` delivers it after commit."""
    if connection.in_atomic_block:
        from timebank.federation.tasks import enqueue_sync

        transaction.on_commit(enqueue_sync)
        return transfer
    return actions.deliver(transfer)


@page("member")
def send(request: HttpRequest) -> HttpResponse:
    """Send minutes to a relative who is a member of a time bank in another city (a peer node of the member's
    bank). The minutes leave at once; the result page says whether the other side has credited them."""
    member = who(request).member
    assert member is not None
    peers = list(Peer.objects.filter(bank_id=member.bank_id).order_by("name", "pk"))
    form = FederatedTransferForm(
        request.POST if request.method == "POST" else None,
        peers=[(p.pk, p.name) for p in peers],
        initial={"idempotency_key": new_idempotency_key()},
    )
    if request.method == "POST" and form.is_valid():
        _configured()
        data = form.cleaned_data
        peer = next(p for p in peers if p.pk == data["peer"])
        try:
            transfer, replayed = actions.do_send_transfer(
                user_of(request),
                member=member,
                peer=peer,
                to_account=data["to_account"],
                to_name=data["to_name"],
                minutes=data["total_minutes"],
                memo=data["memo"],
                idempotency_key=data["idempotency_key"],
            )
        except ApiError as exc:
            add_form_error(
                form, exc, {"peer_id": "peer", "minutes": "hours", "available_minutes": "hours", "memo": "memo"}
            )
        else:
            if replayed:
                messages.info(request, _("这一笔刚才已经办好了，没有重复送出。"))
            else:
                _deliver_now(transfer)
            return redirect("web:federation_transfer", transfer_id=transfer.transfer_id)
    parts = balances(member)
    return render(
        request,
        "federation/send.html",
        {
            "member": member,
            "form": form,
            "has_peers": bool(peers),
            "spendable": parts[AccountKind.EARNED] + parts[AccountKind.RESERVE],
            "sent": FederatedTransfer.objects.filter(member=member, direction=Direction.OUT)
            .select_related("peer")
            .order_by("-pk")[:10],
        },
        status=422 if form.errors else 200,
    )


@page("login")
def transfer_page(request: HttpRequest, transfer_id: str) -> HttpResponse:
    """One transfer to a peer node: pending, completed, or refused with the reason (the minutes are back)."""
    user = user_of(request)
    transfer = access_transfer(user, transfer_id)
    return render(
        request,
        "federation/transfer.html",
        {
            "t": transfer,
            "reason": reason_text(transfer.reason) if transfer.state == TransferState.REFUSED else "",
            "delivery": delivery(transfer),
            "shows_error": reads_delivery_errors(user, transfer),
        },
    )


def _peers_reader(request: HttpRequest) -> Any:
    user = user_of(request)
    if not (user.is_superuser or user.role == Role.HEAD_OFFICE_ADMIN):
        raise PermissionDenied(_("只有总行管理员可以查看跨城对接。"))
    return user


@page("login")
def peers_page(request: HttpRequest) -> HttpResponse:
    """The peers of the caller's bank (the superuser: all): balance, limit, how many transfers wait or were
    refused; the moves across nodes waiting for this head office, and the bank's outgoing moves."""
    user = _peers_reader(request)
    rows = []
    for peer in visible_peers(user):
        out = peer.transfers.filter(direction=Direction.OUT)
        pending = list(out.filter(state=TransferState.PENDING).select_related("outbox"))
        rows.append(
            {
                "peer": peer,
                "balance": peer.clearing_account.balance_minutes,
                "pending": len(pending),
                "stuck": sum(delivery(t).stuck for t in pending),
                "refused": out.filter(state=TransferState.REFUSED).count(),
            }
        )
    peers = visible_peers(user)
    return render(
        request,
        "federation/peers.html",
        {
            "rows": rows,
            "incoming": list(incoming_waiting(user)[:100]),
            "outgoing": [(m, move_reason(m)) for m in outgoing(peers)[:50]],
        },
    )


@page("login")
def peer_page(request: HttpRequest, peer_id: int) -> HttpResponse:
    """One peer: balance and limit, transfers pending (with the last delivery error and attempts) and refused (with
    the reason), recent completed ones, and the comparison of both nodes' statements for a chosen day (the code
    `federation_reconcile` runs; the peer is asked only when a day is chosen)."""
    _peers_reader(request)
    peer = access_peer(user_of(request), peer_id)
    transfers = peer.transfers.select_related("member", "outbox").order_by("-agreed_at", "-pk")
    yesterday = clock.localdate() - dt.timedelta(days=1)
    form = ReconcileForm(request.GET if "date" in request.GET else None, initial={"date": yesterday})
    result = None
    if form.is_bound and form.is_valid():
        result = actions.reconcile(peer, form.cleaned_data["date"])
    refused = [(t, reason_text(t.reason)) for t in transfers.filter(state=TransferState.REFUSED)[:50]]
    return render(
        request,
        "federation/peer.html",
        {
            "peer": peer,
            "balance": peer.clearing_account.balance_minutes,
            "pending": [(t, delivery(t)) for t in transfers.filter(state=TransferState.PENDING)[:50]],
            "stuck_after": int(STUCK_AFTER.total_seconds() // 60),
            "refused": refused,
            "completed": transfers.filter(state=TransferState.COMPLETED)[:20],
            "form": form,
            "result": result,
        },
    )
