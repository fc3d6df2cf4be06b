"""The staff's ledger pages: a member's statement, one transaction and its reversal, adjustments (opening
balances from paper ledgers, corrections). Each asks the access function of its endpoint (ledger/api.py) and
calls its action; a double submit of the same form acts once (`form_once`)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.approvals.models import Approval
from timebank.ledger import actions
from timebank.ledger.access import access_transaction
from timebank.ledger.forms import AdjustmentForm, MemberSearchForm, ReversalForm, WithdrawalForm
from timebank.ledger.models import (
    InterBankMove,
    Leg,
    Transaction,
    TransactionKind,
)
from timebank.ledger.statement_words import balance_of, describe
from timebank.lib.errors import ApiError, Forbidden, NotFound
from timebank.lib.masking import mask_phone
from timebank.members.access import access_member, access_member_to_manage
from timebank.members.models import Member
from timebank.members.search import find_members
from timebank.ops.idempotency import submit_once
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, User
from timebank.orgs.scope import require_manager, user_of
from timebank.web.views.common import explain, page


def finished(request: HttpRequest, made: str, posted: Any) -> HttpResponse:
    """Where a credit form goes once done: `made` is "approval:<id>" (above the approval threshold: nothing
    moved yet, the approvals page shows it waiting) or "tx:<id>" (posted: its transaction's page)."""
    kind, _sep, pk = made.partition(":")
    if kind == "approval":
        messages.warning(
            request, _("超过了需要审核的分钟数，还没有入账：等待另一位工作人员审核批准。审核后才记入账户。")
        )
        return redirect("approvals:list")
    messages.success(request, posted)
    return redirect("web:staff_transaction", transaction_id=int(pk))


def made_label(made: Transaction | Approval) -> str:
    """What `finished` reads back, also from a replayed form (kept by `form_once`)."""
    return f"approval:{made.pk}" if isinstance(made, Approval) else f"tx:{made.pk}"


def picked_member(user: User, request: HttpRequest, field: str, form: Any) -> tuple[Member | None, int]:
    """The member a form names in `field` (picked from the search, or typed), as the endpoint's access check
    answers, and the page's status. On a bound form (validated here) a refusal goes next to the field with its
    status (403 outside the subtree, 404 unknown); on a GET it is the page's refusal."""
    if form.is_bound:
        form.is_valid()
        raw = form.cleaned_data.get(field)
    else:
        typed = request.GET.get(field, "")
        raw = int(typed) if typed.isdigit() and len(typed) <= 10 else None
    if raw is None:
        return None, 422 if form.errors else 200
    try:
        return access_member_to_manage(user, int(raw)), 422 if form.errors else 200
    except (Forbidden, NotFound) as exc:
        if not form.is_bound:
            raise
        form.add_error(field, explain(exc))
        return None, exc.status


def search_results(user: User, request: HttpRequest, *, volunteers: bool) -> tuple[MemberSearchForm, list[Member]]:
    search = MemberSearchForm(request.GET)
    found = find_members(user, search.cleaned_data["q"], volunteers=volunteers) if search.is_valid() else []
    for member in found:
        member.masked_phone = mask_phone(member.phone) if member.phone else ""  # type: ignore[attr-defined]
    return search, found


# A member's statement and one transaction ------------------------------------------------------------------


@page("workbench")
def staff_statement(request: HttpRequest, member_id: int) -> HttpResponse:
    """The member's buckets and their ledger legs, newest first (GET /members/{id}/statement)."""
    user = user_of(request)
    member = access_member(user, member_id)
    legs = Leg.objects.filter(account__member=member).select_related("transaction", "account").order_by("-pk")
    rows = Paginator(legs, 30).get_page(request.GET.get("page"))
    return render(
        request,
        "ledger/staff/statement.html",
        {
            "member": member,
            # The same words, total and parts the member reads on 我的时间 (statement_words).
            "balance": balance_of(member.pk),
            "lines": describe(rows, member.pk),
            "rows": rows,
            "can_adjust": has_role(user, MANAGING_ROLES, member.home_org),
            # Inter-bank moves (跨行转移) change where the credits are: their state is shown with them.
            "moves": list(InterBankMove.objects.filter(member=member).select_related("to_org").order_by("-pk")[:3]),
        },
    )


def _may_reverse(user: User, tx: Transaction) -> bool:
    try:
        access_transaction(user, tx.pk, manage=True)
    except ApiError:
        return False
    return True


def _transaction_page(
    request: HttpRequest, tx: Transaction, form: ReversalForm | None = None, status: int = 200
) -> HttpResponse:
    user = user_of(request)
    legs = list(Leg.objects.filter(transaction=tx).select_related("account__member").order_by("pk"))
    reversed_by = Transaction.objects.filter(reverses=tx).first()
    can_reverse = tx.kind != TransactionKind.REVERSAL and reversed_by is None and _may_reverse(user, tx)
    return render(
        request,
        "ledger/staff/transaction.html",
        {
            "tx": tx,
            "legs": legs,
            "reversed_by": reversed_by,
            "can_reverse": can_reverse or form is not None,
            "form": form or ReversalForm(),
        },
        status=status,
    )


@page("workbench")
def staff_transaction(request: HttpRequest, transaction_id: int) -> HttpResponse:
    """One transaction and its legs (GET /ledger/transactions/{id}); the reverse form for those who may."""
    tx = access_transaction(user_of(request), transaction_id, manage=False)
    return _transaction_page(request, tx)


@require_POST
@page("workbench")
def staff_transaction_reverse(request: HttpRequest, transaction_id: int) -> HttpResponse:
    """POST /ledger/reversals from the page: its access check and action; a refusal (409: already reversed, the
    voucher handed over, the balance would fall below the floor) is shown on the form with its reason."""
    user = user_of(request)
    original = access_transaction(user, transaction_id, manage=True)
    form = ReversalForm(request.POST)
    return submit_once(
        request,
        form,
        "ledger.reversal",
        lambda data: actions.do_reversal(user, original=original, reason=data["reason"])[0],
        success=_("已冲正"),
        done=lambda made: redirect("web:staff_transaction", transaction_id=int(made)),
        again=lambda status: _transaction_page(request, original, form, status),
        refusal_status=True,
    )


# Adjustments -------------------------------------------------------------------------------------------------


@page("workbench")
def staff_adjustment(request: HttpRequest) -> HttpResponse:
    """POST /ledger/adjustments from the page (staff and admins of the member's home subtree): find the member by
    name or phone, then the minutes, the bucket and the reason. Above the bank's approval threshold it waits
    for a second person (the approvals page)."""
    user = user_of(request)
    require_manager(user)
    search, found = search_results(user, request, volunteers=False)
    form = AdjustmentForm(request.POST) if request.method == "POST" else AdjustmentForm()
    member, status = picked_member(user, request, "member_id", form)
    if member is not None and not form.is_bound:
        form = AdjustmentForm(initial={"member_id": member.pk})

    def again(status: int) -> HttpResponse:
        context = {"form": form, "search": search, "found": found, "member": member}
        return render(request, "ledger/staff/adjustment.html", context, status=status)

    if not (form.is_bound and not form.errors and member is not None):
        return again(status)  # the search, the form, or why this member cannot be picked (403/404)
    name = member.name
    return submit_once(
        request,
        form,
        "ledger.adjustment",
        lambda data: made_label(
            actions.do_adjustment(
                user, member=member, minutes=data["minutes"], bucket=data["bucket"], reason=data["reason"]
            )[0]
        ),
        done=lambda made: finished(request, made, _("已调整 %(name)s 的时间，已入账。") % {"name": name}),
        again=again,
        refusal_status=True,
    )


# Withdrawals ------------------------------------------------------------------------------------------------


@page("workbench")
def staff_withdrawal(request: HttpRequest) -> HttpResponse:
    """POST /ledger/withdrawals from the page (支取: staff and admins of the member's home subtree): a service the
    member received and paid from stored time outside an order. Find the member, then the minutes and a memo."""
    user = user_of(request)
    require_manager(user)
    search, found = search_results(user, request, volunteers=False)
    form = WithdrawalForm(request.POST) if request.method == "POST" else WithdrawalForm()
    member, status = picked_member(user, request, "member_id", form)
    if member is not None and not form.is_bound:
        form = WithdrawalForm(initial={"member_id": member.pk})

    def again(status: int) -> HttpResponse:
        context = {
            "form": form,
            "search": search,
            "found": found,
            "member": member,
            # What a withdrawal may take: reserve, then earned (never the goods bucket), as 我的时间 says it.
            "spendable": balance_of(member.pk).spendable if member else 0,
        }
        return render(request, "ledger/staff/withdrawal.html", context, status=status)

    if not (form.is_bound and not form.errors and member is not None):
        return again(status)
    return submit_once(
        request,
        form,
        "ledger.withdrawal",
        lambda data: actions.do_withdrawal(user, member=member, minutes=data["minutes"], memo=data["memo"])[0],
        success=_("已从 %(name)s 的时间里支取。") % {"name": member.name},
        done=lambda made: redirect("web:staff_transaction", transaction_id=int(made)),
        again=again,
        aliases={"available_minutes": "minutes"},
        refusal_status=True,
    )
