"""The pages of moving home across nodes (跨城迁移, issue 16). On the sending node staff of the member's home
subtree ask from the member's page (`POST /federation/moves`) and follow the move; on the receiving node the
head-office admins approve or reject the moves waiting on their federation page. Each page asks the endpoint's
access function (federation/access.py) and calls its action (federation/moves.py); a double submit of one form
acts once (`form_once`). The peer is called after commit, never inside the form's transaction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.db import connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.federation import moves
from timebank.federation.access import access_move, access_move_request, visible_peers
from timebank.federation.api import NotConfigured, _configured
from timebank.federation.forms import FederatedMoveForm, MoveRejectForm
from timebank.federation.models import Direction, FederatedMove, MoveState, Peer
from timebank.ledger.forms_interbank import MoveApproveForm
from timebank.lib.errors import ApiError
from timebank.members.models import Member
from timebank.ops.idempotency import Words, form_once, submit_once
from timebank.orgs.models import User
from timebank.orgs.scope import user_of
from timebank.web.views.common import add_form_error, page

# Why a receiving node refused a move on arrival, in staff's words (moves.py's reason codes); a head office's
# own refusal is its free text, shown as written.
MOVE_REASONS = {
    "unknown_org": _("对方节点没有这个社区编号。"),
    "peer_limit": _("超过了两家时间银行之间的往来限额。"),
    "no_consent": _("会员没有同意提供身份证号的校验值。"),
    "rejected": _("对方总行没有批准。"),
}


def move_reason(move: FederatedMove) -> str:
    return str(MOVE_REASONS.get(move.reason) or move.reason)


def outgoing(peers: QuerySet[Peer]) -> QuerySet[FederatedMove]:
    return (
        FederatedMove.objects.filter(direction=Direction.OUT, peer__in=peers)
        .select_related("peer", "member")
        .order_by("-created_at", "-pk")
    )


def incoming_waiting(user: User) -> QuerySet[FederatedMove]:
    """Moves from peers waiting for this head office (the superuser: every bank's)."""
    return (
        FederatedMove.objects.filter(direction=Direction.IN, state=MoveState.REQUESTED, peer__in=visible_peers(user))
        .select_related("peer", "to_org")
        .order_by("created_at", "pk")
    )


def _deliver(move: FederatedMove, *, outcome: bool) -> None:
    """Tell the peer at once (after commit: `form_once` has returned); an unreachable peer is tried again by
    `federation_sync`."""
    if connection.in_atomic_block:
        from timebank.federation.tasks import enqueue_sync

        transaction.on_commit(enqueue_sync)
        return
    if outcome:
        moves.notify(move)
    else:
        moves.deliver_request(move)


def _member_page(
    request: HttpRequest, member: Member, form: FederatedMoveForm | None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "federation/member_moves.html",
        {
            "member": member,
            "form": form,
            "moves": [
                (m, move_reason(m))
                for m in FederatedMove.objects.filter(member=member, direction=Direction.OUT)
                .select_related("peer")
                .order_by("-created_at", "-pk")
            ],
        },
        status=status,
    )


def _peers_of(member: Member) -> list[tuple[int, str]]:
    return list(Peer.objects.filter(bank_id=member.bank_id).order_by("name", "pk").values_list("pk", "name"))


@page("workbench")
def member_moves(request: HttpRequest, member_id: int) -> HttpResponse:
    """A member's moves to other cities and their state; POST /federation/moves from the page (the member's home
    subtree's staff): the peer node, the community's id there, the consent, a note."""
    user = user_of(request)
    member = access_move_request(user, member_id)
    peers = _peers_of(member)
    if request.method != "POST":
        return _member_page(request, member, FederatedMoveForm(peers=peers) if peers else None)
    form = FederatedMoveForm(request.POST, peers=peers)
    status = 422
    if form.is_valid():
        _configured()
        data = form.cleaned_data
        move = None
        try:
            peer = Peer.objects.get(pk=data["peer_id"], bank_id=member.bank_id)  # one of the choices
            with form_once(request, data["idempotency_key"], "federation.move_request") as once:
                if once.replay is None:
                    move = moves.do_request_move(
                        user,
                        member=member,
                        peer=peer,
                        to_org=str(data["to_org_id"]),
                        consent_share_id_number=data["consent_share_id_number"],
                        reason=data["reason"],
                    )
                    once.keep(str(move.move_id))
                else:
                    messages.info(request, _("这一笔刚才已经办好了，没有重复提交。"))
                    return redirect("web:federation_move", move_id=once.replay.body)
        except ApiError as exc:
            add_form_error(form, exc, {"peer_id": "peer_id", "to_org_id": "to_org_id"})
            status = exc.status
        else:
            assert move is not None
            _deliver(move, outcome=False)
            messages.success(
                request, _("已提交跨城迁移申请，等待对方城市的总行审批。会员的时间已转出，对方拒绝时会退回。")
            )
            return redirect("web:federation_move", move_id=move.move_id)
    return _member_page(request, member, form, status)


def _move_page(
    request: HttpRequest,
    move: FederatedMove,
    approve_form: MoveApproveForm | None = None,
    reject_form: MoveRejectForm | None = None,
    status: int = 200,
) -> HttpResponse:
    decide = move.direction == Direction.IN and move.state == MoveState.REQUESTED
    return render(
        request,
        "federation/move.html",
        {
            "move": move,
            "reason": move_reason(move) if move.state == MoveState.REFUSED else "",
            "total": move.earned_minutes + move.goods_minutes + move.reserve_minutes,
            "decide": decide,
            "approve_form": approve_form or MoveApproveForm(),
            "reject_form": reject_form or MoveRejectForm(),
        },
        status=status,
    )


@page("login")
def move_page(request: HttpRequest, move_id: str) -> HttpResponse:
    """One move (GET /federation/moves/{id}): its state and, when refused, the reason."""
    return _move_page(request, access_move(user_of(request), move_id))


def _decide(
    request: HttpRequest,
    move: FederatedMove,
    form: MoveApproveForm | MoveRejectForm,
    action: str,
    decide: Callable[[dict[str, Any]], FederatedMove],
    success: Words,
) -> HttpResponse:
    """A head office's decision on a move, once per form key (`submit_once`), and the peer told after commit:
    `submit_once` answers (`done`) only once its keyed transaction has ended, and only the submit that decided
    tells the peer (a replayed double submit decided nothing). A refusal stays on the page with its own status;
    a node without federation is its error page, as before the form."""
    decided: list[FederatedMove] = []

    def act(data: dict[str, Any]) -> FederatedMove:
        _configured()
        decided.append(decide(data))
        return decided[-1]

    def refused(form: Any, exc: ApiError) -> int:
        if isinstance(exc, NotConfigured):
            raise exc
        add_form_error(form, exc)
        return exc.status

    def done(_kept: str) -> HttpResponse:
        if decided:
            _deliver(decided[-1], outcome=True)
        return redirect("web:federation_move", move_id=move.move_id)

    def again(status: int) -> HttpResponse:
        move.refresh_from_db()
        forms: dict[str, Any] = {"approve_form" if isinstance(form, MoveApproveForm) else "reject_form": form}
        return _move_page(request, move, status=status, **forms)

    return submit_once(request, form, action, act, done=done, again=again, success=success, refused=refused)


@require_POST
@page("login")
def move_approve(request: HttpRequest, move_id: str) -> HttpResponse:
    """POST /federation/moves/{id}/approve: the member arrives in the chosen community with their balances."""
    user = user_of(request)
    move = access_move(user, move_id, decide=True)
    return _decide(
        request,
        move,
        MoveApproveForm(request.POST),
        "federation.move_approve",
        lambda _data: moves.do_approve_move(user, move),
        _("已批准，会员已迁入。"),
    )


@require_POST
@page("login")
def move_reject(request: HttpRequest, move_id: str) -> HttpResponse:
    """POST /federation/moves/{id}/reject: the reason is required here; the sending node shows it."""
    user = user_of(request)
    move = access_move(user, move_id, decide=True)
    return _decide(
        request,
        move,
        MoveRejectForm(request.POST),
        "federation.move_reject",
        lambda data: moves.do_reject_move(user, move, data["reason"]),
        _("已拒绝，对方节点会把时间退回给会员。"),
    )
