"""Moving between banks on one deployment (跨行转移): credits follow the member, approved by both head offices."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.ledger.actions import member_account_ids, open_member_accounts, system_account_id
from timebank.ledger.models import MEMBER_BUCKETS, AccountKind, InterBankMove, MoveStatus, TransactionKind
from timebank.ledger.posting import lock_accounts, post
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Member, MemberStatus
from timebank.orgs.models import Org, User


@transaction.atomic
def do_request_move(actor: User | None, member: Member, to_org: Org, reason: str = "") -> InterBankMove:
    if to_org.head_office_id == member.bank_id:
        raise Invalid(_("新社区在同一家时间银行：直接修改会员的所属社区即可。"), fields={"to_org_id": "same_bank"})
    if member.status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        raise Conflict(_("会员当前状态不能办理这项操作。"), code="invalid_status")
    if len(reason) > 500:
        raise Invalid(_("备注太长。"), fields={"reason": "too_long"})
    try:
        with transaction.atomic():
            move = InterBankMove.objects.create(
                member=member, to_org=to_org, reason=reason.strip(), requested_by=actor if actor and actor.pk else None
            )
    except IntegrityError:
        raise Conflict(_("这位会员已有一个待审批的跨行转移。"), code="move_pending") from None
    record(actor, "interbank.request", move, bank_id=member.bank_id, data={"to_org": to_org.pk})
    return move


@transaction.atomic
def do_approve_move(actor: User | None, move: InterBankMove, *, side: str) -> InterBankMove:
    """`side` is "source" or "target": each head office approves for itself. The second approval moves."""
    # of=("self",): the move only, not the target org; `_complete` locks the member itself.
    move = InterBankMove.objects.select_for_update(of=("self",)).select_related("member", "to_org").get(pk=move.pk)
    if move.status != MoveStatus.REQUESTED:
        raise Conflict(_("这个跨行转移已经办结。"), code="move_closed")
    field = "source_approved_by" if side == "source" else "target_approved_by"
    if getattr(move, f"{field}_id") is not None:
        raise Conflict(_("这一方已经批准过了。"), code="already_approved")
    setattr(move, field, actor if actor and actor.pk else None)
    move.save(update_fields=[field])
    bank_id = move.member.bank_id if side == "source" else move.to_org.head_office_id
    assert bank_id is not None
    record(actor, f"interbank.approve_{side}", move, bank_id=bank_id)
    if move.source_approved_by_id and move.target_approved_by_id:
        _complete(actor, move)
    return move


@transaction.atomic
def do_reject_move(actor: User | None, move: InterBankMove, *, side: str, reason: str) -> InterBankMove:
    move = InterBankMove.objects.select_for_update(of=("self",)).select_related("member", "to_org").get(pk=move.pk)
    if move.status != MoveStatus.REQUESTED:
        raise Conflict(_("这个跨行转移已经办结。"), code="move_closed")
    move.status = MoveStatus.REJECTED
    move.reason = (move.reason + " | " if move.reason else "") + reason.strip()[:400]
    move.save(update_fields=["status", "reason"])
    bank_id = move.member.bank_id if side == "source" else move.to_org.head_office_id
    assert bank_id is not None
    record(actor, f"interbank.reject_{side}", move, bank_id=bank_id, data={"reason": reason[:200]})
    return move


def _complete(actor: User | None, move: InterBankMove) -> None:
    old = Member.objects.select_for_update().get(pk=move.member_id)
    target_bank = move.to_org.head_office_id
    assert target_bank is not None
    if old.id_number_hash and Member.objects.filter(bank_id=target_bank, id_number_hash=old.id_number_hash).exists():
        raise Conflict(_("目标银行已有这个身份证号的会员。"), code="duplicate_id_number")
    # The same person joins the target bank; their login follows them.
    copied = (
        "name",
        "phone",
        "birth_date",
        "gender",
        "id_number_encrypted",
        "id_number_hash",
        "id_number_masked",
        "address_encrypted",
        "latitude",
        "longitude",
        "is_volunteer",
        "is_recipient",
        "recipient_categories",
        "skills",
        "occupation",
        "willing_services",
        "availability",
    )
    new = Member.objects.create(
        bank_id=target_bank, home_org=move.to_org, status=MemberStatus.ACTIVE, **{f: getattr(old, f) for f in copied}
    )
    open_member_accounts(new)
    old_ids = member_account_ids(old.pk)
    new_ids = member_account_ids(new.pk)
    source_clearing = system_account_id(old.bank_id, AccountKind.CLEARING)
    target_clearing = system_account_id(target_bank, AccountKind.CLEARING)
    locked = lock_accounts([*old_ids.values(), *new_ids.values(), source_clearing, target_clearing])
    amounts = {k: locked[old_ids[k]].balance_minutes for k in MEMBER_BUCKETS}
    total = sum(amounts.values())
    memo = f"跨行转移 #{move.pk}"
    if any(amounts.values()):
        move.source_transaction = post(
            bank_id=old.bank_id,
            kind=TransactionKind.TRANSFER,
            actor=actor,
            memo=memo,
            legs=[*((locked[old_ids[k]], -v) for k, v in amounts.items()), (locked[source_clearing], total)],
        )
        move.target_transaction = post(
            bank_id=target_bank,
            kind=TransactionKind.TRANSFER,
            actor=actor,
            memo=memo,
            legs=[*((locked[new_ids[k]], v) for k, v in amounts.items()), (locked[target_clearing], -total)],
        )
    user = old.user
    old.user = None
    old.status = MemberStatus.LEFT
    old.save(update_fields=["user", "status", "updated_at"])
    if user is not None:
        new.user = user
        new.save(update_fields=["user"])
    move.new_member = new
    move.status = MoveStatus.COMPLETED
    move.completed_at = clock.now()
    move.earned_minutes, move.goods_minutes, move.reserve_minutes = (amounts[k] for k in MEMBER_BUCKETS)
    move.save(
        update_fields=[
            "new_member",
            "status",
            "completed_at",
            "earned_minutes",
            "goods_minutes",
            "reserve_minutes",
            "source_transaction",
            "target_transaction",
        ]
    )
    for bank_id in (old.bank_id, target_bank):
        record(
            actor,
            "interbank.complete",
            move,
            bank_id=bank_id,
            data={"old_member": old.pk, "new_member": new.pk, "minutes": total},
        )
