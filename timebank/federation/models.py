"""Federation between deployments (通存通兑, issue 16): peer nodes, the transfers between them, the outbox that
delivers them and the nonces that keep a signed message from being replayed.

Names follow the Credit Commons protocol where they fit: a transfer is a transaction with a `uuid`, a `state`
(`pending`, `completed`, and ours `refused`), a `payer`, a `payee` and a `quant` in the messages between nodes."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.ledger.models import Account, Transaction
from timebank.lib.clock import ClockDateTimeField
from timebank.orgs.models import Org


class Peer(models.Model):
    """Another deployment this node trades with, for one local head office, through its own clearing account."""

    node_id = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    url = models.CharField(max_length=300)
    public_key = models.CharField(max_length=100)  # Ed25519, base64 of the 32 raw bytes
    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    limit_minutes = models.BigIntegerField()
    # Its balance is what the peer owes this node: positive after our members sent minutes to theirs.
    clearing_account = models.OneToOneField(Account, on_delete=models.PROTECT, related_name="+")
    created_at = ClockDateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"peer {self.node_id}"


class TransferState(models.TextChoices):
    PENDING = "pending", _("待对方入账")
    COMPLETED = "completed", _("已完成")
    REFUSED = "refused", _("被退回")


class Direction(models.TextChoices):
    OUT = "out", _("转出")
    IN = "in", _("转入")


class FederatedTransfer(models.Model):
    """One transfer between this node and a peer, on either side, under the `transfer_id` both nodes use. Unique
    here, so each side debits or credits it exactly once."""

    transfer_id = models.UUIDField(unique=True, default=uuid.uuid4)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="transfers")
    # Out: the local member who sends. In: the local member credited (None when refused for an unknown account).
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="federated_transfers"
    )
    # Out: the receiving member's id on the peer, and the name it must have there. In: the sender's account there.
    remote_account = models.CharField(max_length=64)
    remote_name = models.CharField(max_length=100, blank=True)
    minutes = models.BigIntegerField()
    memo = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=10, choices=TransferState.choices, default=TransferState.PENDING)
    reason = models.CharField(max_length=40, blank=True)
    # Out: the debit into the clearing account. In: the credit out of it. The refund of a refused transfer.
    transaction = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    refund = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idem_scope = models.CharField(max_length=40, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL stays out of the unique key
    fingerprint = models.CharField(max_length=64, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    # The time both nodes date it by (the sender's creation time, carried in the message): the day of the
    # statements it appears on once completed.
    agreed_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["idem_scope", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="federated_transfer_idempotency_key",
            ),
        ]
        indexes = [models.Index(fields=["peer", "state", "agreed_at"], name="federated_transfer_peer_day")]

    def __str__(self) -> str:
        return f"{self.direction} {self.transfer_id}"


class Outbox(models.Model):
    """A message to a peer still to deliver: one per outgoing transfer, written with its debit. `federation_sync`
    (and the task worker) retry it until the peer answers with the transfer's outcome."""

    transfer = models.OneToOneField(FederatedTransfer, on_delete=models.PROTECT, related_name="outbox")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(delivered_at__isnull=True), name="outbox_due"),
        ]

    def __str__(self) -> str:
        return f"outbox {self.transfer_id}"


class SeenNonce(models.Model):
    """The nonce of every signed message a peer sent, kept so a replayed message is refused (401)."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="+")
    nonce = models.CharField(max_length=100)
    seen_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["peer", "nonce"], name="federation_nonce_once")]

    def __str__(self) -> str:
        return f"{self.peer_id}:{self.nonce}"


class MoveState(models.TextChoices):
    REQUESTED = "requested", _("待对方总行审批")
    COMPLETED = "completed", _("已迁入")
    REFUSED = "refused", _("被拒绝")


class FederatedMove(models.Model):
    """Moving home across nodes (跨城迁移, issue 16; actions in moves.py), on either side under the `move_id` both
    nodes use. Out: the leaving member, whose buckets were debited into the clearing account for the peer when
    they asked. In: the request as received (`snapshot`), then the member created here on approval."""

    move_id = models.UUIDField(unique=True, default=uuid.uuid4)
    direction = models.CharField(max_length=3, choices=Direction.choices)
    peer = models.ForeignKey(Peer, on_delete=models.PROTECT, related_name="moves")
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="federated_moves"
    )
    # Out: the receiving community's id on the peer. In: the local community.
    remote_org = models.CharField(max_length=64, blank=True)
    to_org = models.ForeignKey(Org, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    # Out: the member's id on the peer once arrived. In: the member's id on the sending node.
    remote_member = models.CharField(max_length=64, blank=True)
    state = models.CharField(max_length=10, choices=MoveState.choices, default=MoveState.REQUESTED)
    reason = models.CharField(max_length=200, blank=True)
    # What travels: buckets, lifetime minutes by category, certificates, insurance, consents, the keyed hash of
    # the ID number and the consent to share it (never the number).
    snapshot = models.JSONField(default=dict)
    earned_minutes = models.BigIntegerField(default=0)
    goods_minutes = models.BigIntegerField(default=0)
    reserve_minutes = models.BigIntegerField(default=0)
    # Lifetime credited service minutes carried in (In, completed): star levels count them.
    carried_minutes = models.BigIntegerField(default=0)
    transaction = models.OneToOneField(Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # In: when the sending node acknowledged the outcome (None: `federation_sync` tells it again).
    notified_at = models.DateTimeField(null=True, blank=True)
    created_at = ClockDateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=Q(state="requested", direction="out"),
                name="federated_move_one_open_per_member",
            ),
        ]

    def __str__(self) -> str:
        return f"move {self.direction} {self.move_id}"
