"""The inter-bank move pages (跨行转移): staff of the member's home subtree request a move to a community of another
bank on this deployment; the head-office admins of both banks see the moves waiting for them and approve or reject
them. Each page asks the access function of its endpoint (ledger/api.py) and calls its action; a double submit of
the same form acts once (`form_once`)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.ledger.access import access_move
from timebank.ledger.forms_interbank import MoveApproveForm, MoveRejectForm, MoveRequestForm
from timebank.ledger.interbank import do_approve_move, do_reject_move, do_request_move
from timebank.ledger.models import InterBankMove, MoveStatus
from timebank.lib.errors import NotFound
from timebank.members.access import access_member, access_member_to_manage
from timebank.members.models import Member
from timebank.ops.idempotency import submit_once
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, Role, User
from timebank.orgs.scope import require_manager, user_of
from timebank.web.views.common import page


def _moves() -> QuerySet[InterBankMove]:
    return InterBankMove.objects.select_related("member__home_org", "member__bank", "to_org__head_office").order_by(
        "-pk"
    )


def admin_bank_ids(user: User) -> set[int] | None:
    """The banks whose head office the user administers (None: every bank, the superuser)."""
    if user.is_superuser:
        return None
    scope = staff_scope(user)
    if scope is None or user.role != Role.HEAD_OFFICE_ADMIN or scope.head_office_id is None:
        return set()
    return {scope.head_office_id}


def waiting_for(user: User) -> QuerySet[InterBankMove]:
    """Requested moves this head-office admin has still to approve or reject, for their side."""
    banks = admin_bank_ids(user)
    open_moves = _moves().filter(status=MoveStatus.REQUESTED)
    if banks is None:
        return open_moves
    return open_moves.filter(
        Q(member__bank_id__in=banks, source_approved_by__isnull=True)
        | Q(to_org__head_office_id__in=banks, target_approved_by__isnull=True)
    )


@page("workbench")
def interbank_moves(request: HttpRequest) -> HttpResponse:
    """The moves waiting for this head-office admin, and the moves of members of the caller's subtree."""
    user = user_of(request)
    scope = require_manager(user)
    mine = _moves() if scope is None else _moves().filter(member__home_org__path__startswith=scope.path)
    return render(
        request,
        "ledger/interbank/list.html",
        {"waiting": list(waiting_for(user)[:100]), "mine": list(mine[:100]), "is_admin": admin_bank_ids(user) != set()},
    )


def _member_page(
    request: HttpRequest, user: User, member: Member, form: MoveRequestForm | None = None, status: int = 200
) -> HttpResponse:
    manage = has_role(user, MANAGING_ROLES, member.home_org)
    return render(
        request,
        "ledger/interbank/member.html",
        {
            "member": member,
            "moves": list(_moves().filter(member=member)),
            "form": form or (MoveRequestForm(bank_id=member.bank_id) if manage else None),
        },
        status=status,
    )


@page("workbench")
def interbank_member(request: HttpRequest, member_id: int) -> HttpResponse:
    """A member's moves and their state; POST /interbank-moves from the page (staff and admins of the member's
    home subtree): the target community, picked from the other banks' communities, and a note."""
    user = user_of(request)
    if request.method != "POST":
        return _member_page(request, user, access_member(user, member_id))
    member = access_member_to_manage(user, member_id)
    form = MoveRequestForm(request.POST, bank_id=member.bank_id)

    def request_move(data: dict[str, Any]) -> InterBankMove:
        to_org = Org.objects.filter(pk=data["to_org_id"]).first()
        if to_org is None:
            raise NotFound(_("找不到该机构。"), code="org_not_found", fields={"to_org_id": "not_found"})
        return do_request_move(user, member, to_org, data["reason"])

    return submit_once(
        request,
        form,
        "ledger.interbank_request",
        request_move,
        success=_("已提交跨行转移申请，等待两家银行的总行管理员审批。"),
        done=lambda _kept: redirect("web:interbank_member", member_id=member.pk),
        again=lambda status: _member_page(request, user, member, form, status),
        refusal_status=True,
    )


def _move_page(
    request: HttpRequest,
    user: User,
    move: InterBankMove,
    side: str,
    reject_form: MoveRejectForm | None = None,
    approve_form: MoveApproveForm | None = None,
    status: int = 200,
) -> HttpResponse:
    approved = move.source_approved_by_id if side == "source" else move.target_approved_by_id
    return render(
        request,
        "ledger/interbank/move.html",
        {
            "move": move,
            "side": side,
            "can_decide": move.status == MoveStatus.REQUESTED,
            "can_approve": move.status == MoveStatus.REQUESTED and approved is None,
            "approve_form": approve_form or MoveApproveForm(),
            "reject_form": reject_form or MoveRejectForm(),
        },
        status=status,
    )


@page("workbench")
def interbank_move(request: HttpRequest, move_id: int) -> HttpResponse:
    """One move (GET /interbank-moves/{id}): the head-office admins of both banks; approve and reject forms."""
    user = user_of(request)
    move, side = access_move(user, move_id)
    return _move_page(request, user, move, side)


@require_POST
@page("workbench")
def interbank_move_approve(request: HttpRequest, move_id: int) -> HttpResponse:
    """POST /interbank-moves/{id}/approve from the page: each head office approves for its side; the second
    approval moves the member and their credits. A refusal (already approved, closed) shows on the page."""
    user = user_of(request)
    move, side = access_move(user, move_id)
    form = MoveApproveForm(request.POST)

    def again(status: int) -> HttpResponse:
        move.refresh_from_db()
        return _move_page(request, user, move, side, approve_form=form, status=status)

    return submit_once(
        request,
        form,
        "ledger.interbank_approve",
        lambda _data: do_approve_move(user, move, side=side).status,
        success=_("已批准。"),
        done=lambda _kept: redirect("web:interbank_move", move_id=move.pk),
        again=again,
        refusal_status=True,
    )


@require_POST
@page("workbench")
def interbank_move_reject(request: HttpRequest, move_id: int) -> HttpResponse:
    """POST /interbank-moves/{id}/reject from the page: the reason is required."""
    user = user_of(request)
    move, side = access_move(user, move_id)
    form = MoveRejectForm(request.POST)

    def again(status: int) -> HttpResponse:
        move.refresh_from_db()
        return _move_page(request, user, move, side, reject_form=form, status=status)

    return submit_once(
        request,
        form,
        "ledger.interbank_reject",
        lambda data: do_reject_move(user, move, side=side, reason=data["reason"]).status,
        success=_("已驳回。"),
        done=lambda _kept: redirect("web:interbank_move", move_id=move.pk),
        again=again,
        refusal_status=True,
    )
