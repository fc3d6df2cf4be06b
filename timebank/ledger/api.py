from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, paginate
from timebank.approvals.actions import pending_answer
from timebank.approvals.models import Approval
from timebank.approvals.schemas import PendingApprovalOut
from timebank.ledger import actions
from timebank.ledger.access import access_move, access_transaction
from timebank.ledger.interbank import do_approve_move, do_reject_move, do_request_move
from timebank.ledger.models import Account, InterBankMove, Leg, Settlement, Transaction
from timebank.ledger.schemas import (
    AdjustmentIn,
    BalanceOut,
    MoveIn,
    MoveOut,
    MoveRejectIn,
    PoolOut,
    ReversalIn,
    SettlementIn,
    SettlementOut,
    StatementEntry,
    TransactionOut,
    TransferIn,
    VerifyOut,
    WithdrawalIn,
)
from timebank.ledger.settlement import do_settle
from timebank.ledger.verify import verify
from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.members.access import access_member, access_member_to_manage, access_own_member, member_of
from timebank.orgs.access import access_bank_admin
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES, Org, Role

router = Router(tags=["ledger"])


def transaction_out(tx: Transaction) -> dict[str, Any]:
    legs = Leg.objects.filter(transaction=tx).select_related("account").order_by("pk")
    return {
        "transaction_id": tx.pk,
        "kind": tx.kind,
        "minutes": tx.minutes,
        "created_at": tx.created_at,
        "memo": tx.memo,
        "reverses_id": tx.reverses_id,
        "legs": [{"bucket": lg.account.kind, "member_id": lg.account.member_id, "minutes": lg.minutes} for lg in legs],
    }


def _answer(response: HttpResponse, tx: Transaction, replayed: bool) -> Status[dict[str, Any]]:
    if replayed:
        response["Idempotent-Replayed"] = "true"
    return Status(201, transaction_out(tx))


@router.get("/members/{member_id}/balance", response=BalanceOut, tags=["ledger", "members"])
def balance(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
    member = access_member(caller(request), member_id)
    buckets = dict(Account.objects.filter(member=member).values_list("kind", "balance_minutes"))
    return {
        "member_id": member.pk,
        "total_minutes": sum(buckets.values()),
        "buckets": {k: buckets.get(k, 0) for k in ("earned", "goods", "reserve")},
    }


@router.get("/members/{member_id}/statement", response=Page[StatementEntry], tags=["ledger", "members"])
def statement(
    request: HttpRequest,
    member_id: PathId,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    bucket: Literal["earned", "goods", "reserve"] | None = None,
) -> dict[str, Any]:
    """One entry per ledger leg of the member, newest first."""
    member = access_member(caller(request), member_id)
    qs = Leg.objects.filter(account__member=member).select_related("transaction", "account")
    if bucket:
        qs = qs.filter(account__kind=bucket)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {
        "items": [
            {
                "transaction_id": lg.transaction_id,
                "kind": lg.transaction.kind,
                "bucket": lg.account.kind,
                "minutes": lg.minutes,
                "balance_after_minutes": lg.balance_after_minutes,
                "created_at": lg.transaction.created_at,
                "memo": lg.transaction.memo,
            }
            for lg in rows
        ],
        "next_cursor": nxt,
    }


@router.post("/transfers", response={201: TransactionOut})
def transfer(request: HttpRequest, response: HttpResponse, payload: TransferIn) -> Status[dict[str, Any]]:
    """Give time to a linked relative, or donate it (no `to_member_id`: to the bank's donation pool)."""
    user = caller(request)
    actions.check_minutes(payload.minutes)
    source = access_own_member(user, payload.from_member_id)
    target = None
    if payload.to_member_id is not None:
        target = _member_in_bank(payload.to_member_id, source.bank_id)
    tx, replayed = actions.do_transfer(
        user,
        from_member=source,
        to_member=target,
        minutes=payload.minutes,
        kind=payload.kind,
        memo=payload.memo,
        idempotency_key=payload.idempotency_key,
    )
    return _answer(response, tx, replayed)


def _member_in_bank(member_id: int, bank_id: int) -> Any:
    from timebank.members.models import Member

    member = Member.objects.filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    if member.bank_id != bank_id:
        raise Invalid(_("收款人属于另一家时间银行。"), fields={"to_member_id": "other_bank"})
    return member


@router.post("/ledger/adjustments", response={201: TransactionOut, 202: PendingApprovalOut})
def adjustment(request: HttpRequest, response: HttpResponse, payload: AdjustmentIn) -> Status[dict[str, Any]]:
    """Bring an opening balance over from paper records, or correct a mistake. The counterpart is issuance.

    A credit above the head office's `approval_threshold_minutes` answers 202 and waits for a second person."""
    user = caller(request)
    actions.check_minutes(payload.minutes, allow_negative=True)
    member = access_member_to_manage(user, payload.member_id)
    tx, replayed = actions.do_adjustment(
        user,
        member=member,
        minutes=payload.minutes,
        bucket=payload.bucket,
        reason=payload.reason,
        idempotency_key=payload.idempotency_key,
    )
    if isinstance(tx, Approval):
        if replayed:
            response["Idempotent-Replayed"] = "true"
        return Status(202, pending_answer(tx))
    return _answer(response, tx, replayed)


@router.post("/ledger/withdrawals", response={201: TransactionOut})
def withdrawal(request: HttpRequest, response: HttpResponse, payload: WithdrawalIn) -> Status[dict[str, Any]]:
    """Record a service the member received and paid from stored time outside an order (staff)."""
    user = caller(request)
    actions.check_minutes(payload.minutes)
    member = access_member_to_manage(user, payload.member_id)
    tx, replayed = actions.do_withdrawal(
        user, member=member, minutes=payload.minutes, memo=payload.memo, idempotency_key=payload.idempotency_key
    )
    return _answer(response, tx, replayed)


@router.post("/ledger/reversals", response={201: TransactionOut})
def reversal(request: HttpRequest, response: HttpResponse, payload: ReversalIn) -> Status[dict[str, Any]]:
    """Correct a transaction by posting its exact opposite. The original stays as it was."""
    user = caller(request)
    original = access_transaction(user, payload.transaction_id, manage=True)
    tx, replayed = actions.do_reversal(
        user, original=original, reason=payload.reason, idempotency_key=payload.idempotency_key
    )
    return _answer(response, tx, replayed)


@router.get("/ledger/transactions/{transaction_id}", response=TransactionOut)
def get_transaction(request: HttpRequest, transaction_id: PathId) -> dict[str, Any]:
    return transaction_out(access_transaction(caller(request), transaction_id, manage=False))


@router.get("/ledger/verify", response=VerifyOut)
def ledger_verify(request: HttpRequest, bank_id: PathId | None = None) -> dict[str, Any]:
    """Recompute every balance from the legs and walk the hash chains: the superuser (all banks)
    or a head-office admin (their bank)."""
    user = caller(request)
    if user.is_superuser and bank_id is None:
        report = verify(None)
    else:
        target = bank_id or (user.org.head_office_id if user.org_id and user.org else None)
        if target is None:
            raise Forbidden(_("只有总行管理员可以核对账本。"), code="not_head_office_admin")
        access_bank_admin(user, target)
        report = verify([target])
    return {"ok": report.ok, "transactions": report.transactions, "problems": report.problems}


def settlement_out(s: Settlement, already: bool) -> dict[str, Any]:
    return {
        "id": s.pk,
        "head_office_id": s.head_office_id,
        "period_end": s.period_end,
        "status": s.status,
        "members": s.members,
        "moved_minutes": s.moved_minutes,
        "goods_minutes": s.goods_minutes,
        "reserve_minutes": s.reserve_minutes,
        "already_settled": already,
    }


@router.post("/settlements", response={200: SettlementOut}, tags=["ledger", "settlement"])
def settle(request: HttpRequest, payload: SettlementIn) -> dict[str, Any]:
    """Settle a head office up to `period_end` (today or earlier): each member's `earned` moves into `goods`
    and `reserve` by `goods_share_percent`, the odd minute to `reserve`. Runs to completion. Running it again
    for the same period moves nothing and answers the original totals with `already_settled: true`."""
    user = caller(request)
    head_office = access_bank_admin(user, payload.head_office_id)
    settlement, already = do_settle(user, head_office, payload.period_end)
    return settlement_out(settlement, already)


@router.get("/settlements", response=Page[SettlementOut], tags=["ledger", "settlement"])
def list_settlements(
    request: HttpRequest,
    head_office_id: PathId,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    user = caller(request)
    head_office = access_bank_admin(user, head_office_id)
    rows, nxt = paginate(Settlement.objects.filter(head_office=head_office), limit, cursor, newest_first=True)
    return {"items": [settlement_out(s, s.status == "done") for s in rows], "next_cursor": nxt}


@router.post("/interbank-moves", response={201: MoveOut}, tags=["ledger", "members"])
def request_move(request: HttpRequest, payload: MoveIn) -> Status[InterBankMove]:
    """跨行转移: a member moving to a community of another bank on this deployment keeps their credits.
    Requested by the member or staff of their home subtree; both head offices then approve."""
    user = caller(request)
    me = member_of(user)
    member = (
        access_own_member(user, payload.member_id)
        if me is not None and me.pk == payload.member_id
        else access_member_to_manage(user, payload.member_id)
    )
    to_org = Org.objects.filter(pk=payload.to_org_id).first()
    if to_org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return Status(201, do_request_move(user, member, to_org, payload.reason))


@router.get("/interbank-moves/{move_id}", response=MoveOut, tags=["ledger", "members"])
def get_move(request: HttpRequest, move_id: PathId) -> InterBankMove:
    move, _side = access_move(caller(request), move_id)
    return move


@router.post("/interbank-moves/{move_id}/approve", response=MoveOut, tags=["ledger", "members"])
def approve_move(request: HttpRequest, move_id: PathId) -> InterBankMove:
    """Each head office approves for itself; the second approval moves the credits through the clearing accounts."""
    user = caller(request)
    move, side = access_move(user, move_id)
    return do_approve_move(user, move, side=side)


@router.post("/interbank-moves/{move_id}/reject", response=MoveOut, tags=["ledger", "members"])
def reject_move(request: HttpRequest, move_id: PathId, payload: MoveRejectIn) -> InterBankMove:
    user = caller(request)
    move, side = access_move(user, move_id)
    return do_reject_move(user, move, side=side, reason=payload.reason)


@router.get("/orgs/{org_id}/pool", response=PoolOut, tags=["ledger"])
def pool_statement(
    request: HttpRequest,
    org_id: PathId,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """The donation pool of a bank: its balance and its own statement (staff of the bank)."""
    user = caller(request)
    org = Org.objects.filter(pk=org_id).first()
    if org is None or org.head_office_id is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    bank = org.head_office
    assert bank is not None
    in_bank = (
        user.org is not None and user.org.head_office_id == bank.pk and user.role in MANAGING_ROLES | {Role.OPERATOR}
    )
    if not (user.is_superuser or in_bank):
        raise Forbidden(_("只有本银行的工作人员可以查看捐赠池。"), code="outside_subtree")
    account = Account.objects.get(bank=bank, member__isnull=True, kind="donation_pool")
    qs = Leg.objects.filter(account=account).select_related("transaction", "account")
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {
        "head_office_id": bank.pk,
        "balance_minutes": account.balance_minutes,
        "items": [
            {
                "transaction_id": lg.transaction_id,
                "kind": lg.transaction.kind,
                "bucket": lg.account.kind,
                "minutes": lg.minutes,
                "balance_after_minutes": lg.balance_after_minutes,
                "created_at": lg.transaction.created_at,
                "memo": lg.transaction.memo,
            }
            for lg in rows
        ],
        "next_cursor": nxt,
    }
