"""Who may read or reverse a transaction: the API's endpoints and the staff pages ask the same function."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from timebank.ledger.models import Account, InterBankMove, Transaction
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import member_of
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, Role, User


def access_transaction(user: User, tx_id: int, *, manage: bool) -> Transaction:
    """Read (`manage=False`: staff and operators of every member's home subtree, a member in it, the bank's
    head-office admin) or reverse (`manage=True`: staff and admins of every member's home subtree, the bank's
    head-office admin) a transaction."""
    tx = Transaction.objects.filter(pk=tx_id).first()
    if tx is None:
        raise NotFound(_("找不到这笔交易。"), code="transaction_not_found")
    if user.is_superuser:
        return tx
    members = {
        a.member
        for a in Account.objects.filter(legs__transaction=tx, member__isnull=False).select_related("member__home_org")
    }
    if has_role(user, {Role.HEAD_OFFICE_ADMIN}, tx.bank):
        return tx
    if members and all(
        has_role(user, MANAGING_ROLES if manage else MANAGING_ROLES | {Role.OPERATOR}, m.home_org)
        for m in members
        if m is not None
    ):
        return tx
    me = member_of(user)
    if not manage and me is not None and any(m is not None and m.pk == me.pk for m in members):
        return tx
    raise Forbidden(_("您无权查看这笔交易。"), code="outside_subtree")


def access_move(user: User, move_id: int) -> tuple[InterBankMove, str]:
    """Read, approve or reject an inter-bank move (跨行转移): the head-office admins of the member's bank (side
    "source") and of the target org's bank (side "target"). The API's endpoints and the pages ask this."""
    move = InterBankMove.objects.select_related("member__bank", "to_org__head_office").filter(pk=move_id).first()
    if move is None:
        raise NotFound(_("找不到这个跨行转移。"), code="move_not_found")
    if has_role(user, {Role.HEAD_OFFICE_ADMIN}, move.member.bank):
        return move, "source"
    if move.to_org.head_office is not None and has_role(user, {Role.HEAD_OFFICE_ADMIN}, move.to_org.head_office):
        return move, "target"
    raise Forbidden(_("只有两家银行的总行管理员可以审批。"), code="not_head_office_admin")
