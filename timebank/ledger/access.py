"""Who may read or reverse a transaction: the API's endpoints and the staff pages ask the same function."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from timebank.ledger.models import Account, Transaction
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
