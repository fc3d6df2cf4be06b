"""Who may see and do what with peers, federated transfers and moves across nodes: the API's endpoints and the
pages ask these functions."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.federation.models import Direction, FederatedMove, FederatedTransfer, Peer
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import _get as get_member
from timebank.members.access import member_of, relative_ids
from timebank.members.models import Member
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Role, User


def access_create_peer(user: User) -> None:
    """Registering a peer node: the superuser only."""
    if not user.is_superuser:
        raise Forbidden(_("只有系统管理员可以登记对接节点。"), code="not_superuser")


def visible_peers(user: User) -> QuerySet[Peer]:
    """The superuser sees every peer; a head-office admin the peers of their bank."""
    peers = Peer.objects.select_related("clearing_account", "bank").order_by("pk")
    if user.is_superuser:
        return peers
    scope = staff_scope(user)
    if scope is None or user.role != Role.HEAD_OFFICE_ADMIN:
        return peers.none()
    return peers.filter(bank__path__startswith=scope.path)


def access_peer(user: User, peer_id: int) -> Peer:
    peer = Peer.objects.select_related("clearing_account", "bank").filter(pk=peer_id).first()
    if peer is None:
        raise NotFound(_("找不到这个对接节点。"), code="peer_not_found")
    if has_role(user, {Role.HEAD_OFFICE_ADMIN}, peer.bank):
        return peer
    raise Forbidden(_("只有这家时间银行的总行管理员可以查看。"), code="not_head_office_admin")


def access_transfer(user: User, transfer_id: str) -> FederatedTransfer:
    """Read a transfer sent from this node: the sender, their relatives, and staff (staff, branch and head-office
    admins) of the sender's home subtree."""
    try:
        key = uuid.UUID(str(transfer_id))
    except ValueError:
        raise NotFound(_("找不到这笔跨节点转账。"), code="transfer_not_found") from None
    transfer = (
        FederatedTransfer.objects.select_related("member__home_org", "peer")
        .filter(transfer_id=key, direction=Direction.OUT)
        .first()
    )
    if transfer is None or transfer.member is None:
        raise NotFound(_("找不到这笔跨节点转账。"), code="transfer_not_found")
    sender = transfer.member
    if has_role(user, MANAGING_ROLES, sender.home_org):
        return transfer
    me = member_of(user)
    if me is not None and (me.pk == sender.pk or sender.pk in relative_ids(me)):
        return transfer
    raise Forbidden(_("您无权查看这笔跨节点转账。"), code="outside_subtree")


def reads_delivery_errors(user: User, transfer: FederatedTransfer) -> bool:
    """A delivery's last error is the peer's or the network's own text (an HTTP body, a host name): for staff of
    the sender's home subtree, who can act on it, not for the member or their relatives."""
    return transfer.member is not None and has_role(user, MANAGING_ROLES, transfer.member.home_org)


def access_move_request(user: User, member_id: int) -> Member:
    """Asking to move a member to a peer node (跨城迁移), and reading their outgoing moves: the member themselves,
    or staff (staff, branch and head-office admins) of their home subtree."""
    member = get_member(member_id)
    if has_role(user, MANAGING_ROLES, member.home_org):
        return member
    me = member_of(user)
    if me is not None and me.pk == member.pk:
        return member
    raise Forbidden(_("只有会员本人或其所属机构的工作人员可以申请跨节点迁移。"), code="outside_subtree")


def access_move(user: User, move_id: str, *, decide: bool = False) -> FederatedMove:
    """An outgoing move: as `access_move_request` (reading only; the peer decides). An incoming one: the head-office
    admins of the bank it arrives at (reading and deciding)."""
    try:
        key = uuid.UUID(str(move_id))
    except ValueError:
        raise NotFound(_("找不到这个跨节点迁移。"), code="move_not_found") from None
    move = FederatedMove.objects.select_related("peer__bank", "member", "to_org").filter(move_id=key).first()
    if move is None:
        raise NotFound(_("找不到这个跨节点迁移。"), code="move_not_found")
    if move.direction == Direction.IN:
        if has_role(user, {Role.HEAD_OFFICE_ADMIN}, move.peer.bank):
            return move
        raise Forbidden(_("只有迁入银行的总行管理员可以办理。"), code="not_head_office_admin")
    if decide:
        raise Forbidden(_("迁出的申请由对方节点审批。"), code="not_receiving_node")
    assert move.member_id is not None
    access_move_request(user, move.member_id)
    return move
