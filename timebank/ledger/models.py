from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.clock import ClockDateTimeField
from timebank.orgs.models import Org


class AccountKind(models.TextChoices):
    EARNED = "earned", _("待结算")
    GOODS = "goods", _("可兑换物品")
    RESERVE = "reserve", _("储存")
    ISSUANCE = "issuance", _("发行")
    DONATION_POOL = "donation_pool", _("捐赠池")
    GOODS_REDEEMED = "goods_redeemed", _("已兑换物品")
    CLEARING = "clearing", _("跨行清算")
    # One per peer node and head office (timebank/federation): what that peer owes the bank (positive) or is owed.
    FEDERATION = "federation", _("跨节点清算")


MEMBER_BUCKETS = (AccountKind.EARNED, AccountKind.GOODS, AccountKind.RESERVE)
SYSTEM_KINDS = (AccountKind.ISSUANCE, AccountKind.DONATION_POOL, AccountKind.GOODS_REDEEMED, AccountKind.CLEARING)


class TransactionKind(models.TextChoices):
    DEPOSIT = "deposit", _("存入")
    WITHDRAWAL = "withdrawal", _("支取")
    TRANSFER = "transfer", _("转赠亲属")
    DONATION = "donation", _("自愿捐赠")
    ADJUSTMENT = "adjustment", _("调整")
    REVERSAL = "reversal", _("冲正")
    SERVICE_RECORD = "service_record", _("服务记录")
    SETTLEMENT = "settlement", _("结算")
    GOODS_REDEMPTION = "goods_redemption", _("兑换物品")
    SERVICE_REDEMPTION = "service_redemption", _("兑换服务")


class Account(models.Model):
    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # No index of its own: the unique (member, kind) index leads with the member and serves every lookup by it,
    # and one index fewer is one entry fewer to rewrite on every balance update.
    member = models.ForeignKey(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="accounts", db_index=False
    )
    kind = models.CharField(max_length=20, choices=AccountKind.choices)
    # Kept in step with the legs inside the same database transaction; `verify` recomputes it.
    balance_minutes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "kind"], condition=Q(member__isnull=False), name="account_member_kind"
            ),
            # One system account of each kind per bank, except the federation clearing accounts: one per peer node.
            models.UniqueConstraint(
                fields=["bank", "kind"],
                condition=Q(member__isnull=True) & ~Q(kind="federation"),
                name="account_system_kind",
            ),
            models.CheckConstraint(
                condition=~Q(kind="goods") | Q(balance_minutes__gte=0), name="account_goods_not_negative"
            ),
        ]
        indexes = [
            # A bank's member accounts of one bucket. No balance included (it was, for the risk's sums from the index
            # alone, migration 0008): an indexed balance makes every balance update non-HOT and rewrites an entry in
            # every index of the table, the larger part of a settlement's time (bench/README.md "Settlement
            # benchmark"); the sums read the table instead, at the same cost when it is not freshly vacuumed.
            models.Index(fields=["bank", "kind"], condition=Q(member__isnull=False), name="account_bank_kind"),
            # A bank's few system accounts, federation clearing accounts included (account_system_kind leaves
            # those out, so it cannot serve `member IS NULL`): the head office's outstanding minutes by double entry
            # read a handful of rows instead of scanning every account. No balance included: the system accounts
            # are updated by most postings, and an unchanged key keeps those updates HOT.
            models.Index(fields=["bank"], condition=Q(member__isnull=True), name="account_bank_system"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.member_id or self.bank_id}"


class Transaction(models.Model):
    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    # The chain fields (seq, prev_hash, hash) stay empty until the sealer links the row into its bank's ledger
    # chain, after it committed (timebank/ledger/sealer.py). Balances and limits never wait for that.
    seq = models.BigIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=20, choices=TransactionKind.choices)
    memo = models.CharField(max_length=500, blank=True)
    # The amount moved: the sum of the positive legs.
    minutes = models.BigIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    idem_scope = models.CharField(max_length=40, blank=True)
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL stays out of the unique key
    fingerprint = models.CharField(max_length=64, blank=True)
    reverses = models.OneToOneField("self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by")
    created_at = models.DateTimeField(db_index=True)
    prev_hash = models.CharField(max_length=64, blank=True, default="")
    hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "seq"], name="transaction_bank_seq"),
            models.UniqueConstraint(
                fields=["idem_scope", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="transaction_idempotency_key",
            ),
        ]
        # A bank's transactions in a period, and of one kind (reports count and sum them).
        indexes = [
            models.Index(fields=["bank", "created_at"], name="transaction_bank_created"),
            models.Index(
                fields=["bank", "kind", "created_at"], include=["id", "minutes"], name="transaction_bank_kind_created"
            ),
            # The sealer's queue: the rows of a bank not yet in its chain, in id order.
            models.Index(fields=["bank", "id"], condition=Q(seq__isnull=True), name="transaction_unsealed"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class Leg(models.Model):
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="legs")
    # No index of its own: the (account, -id) index below serves every lookup by account.
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="legs", db_index=False)
    minutes = models.BigIntegerField()
    balance_after_minutes = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=~Q(minutes=0), name="leg_minutes_not_zero")]
        indexes = [models.Index(fields=["account", "-id"])]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.minutes}"


class SettlementStatus(models.TextChoices):
    RUNNING = "running", _("进行中")
    DONE = "done", _("已完成")


class Settlement(models.Model):
    """结算: one per head office and period end. Progress is kept so an interrupted run resumes."""

    head_office = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="settlements")
    period_end = models.DateField()
    goods_share_percent = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=SettlementStatus.choices, default=SettlementStatus.RUNNING)
    # Members are settled in batches ordered by their earned account's id; this is the last one done.
    last_account_id = models.BigIntegerField(default=0)
    members = models.PositiveIntegerField(default=0)
    moved_minutes = models.BigIntegerField(default=0)
    goods_minutes = models.BigIntegerField(default=0)
    reserve_minutes = models.BigIntegerField(default=0)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    started_at = ClockDateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["head_office", "period_end"], name="settlement_once_per_period")]

    def __str__(self) -> str:
        return f"settlement {self.head_office_id} {self.period_end}"


class SettlementLine(models.Model):
    """Per member: what the settlement moved (for the downloadable report)."""

    settlement = models.ForeignKey(Settlement, on_delete=models.CASCADE, related_name="lines")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="+")
    org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    earned_minutes = models.BigIntegerField()
    goods_minutes = models.BigIntegerField()
    reserve_minutes = models.BigIntegerField()
    transaction = models.ForeignKey(Transaction, on_delete=models.PROTECT, related_name="+")

    def __str__(self) -> str:
        return f"{self.settlement_id}: {self.member_id}"


class MoveStatus(models.TextChoices):
    REQUESTED = "requested", _("待审批")
    COMPLETED = "completed", _("已完成")
    REJECTED = "rejected", _("已拒绝")


class InterBankMove(models.Model):
    """A member moving to a community of another bank on this deployment takes their credits along.

    Both head offices approve; then one database transaction posts the member's buckets into the source
    bank's clearing account and out of the target bank's clearing account into a new membership there.
    """

    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="moves_out")
    to_org = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    new_member = models.OneToOneField(
        "members.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="moved_in"
    )
    status = models.CharField(max_length=10, choices=MoveStatus.choices, default=MoveStatus.REQUESTED)
    reason = models.CharField(max_length=500, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    source_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    earned_minutes = models.BigIntegerField(default=0)
    goods_minutes = models.BigIntegerField(default=0)
    reserve_minutes = models.BigIntegerField(default=0)
    source_transaction = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_transaction = models.OneToOneField(
        Transaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = ClockDateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member"], condition=Q(status="requested"), name="one_open_move_per_member")
        ]

    def __str__(self) -> str:
        return f"move {self.member_id} → {self.to_org_id}"


SUMMARY_STRIPES = 8  # rows per (bank, day, kind): concurrent writers of one bank-day rarely share one


class DailySummary(models.Model):
    """What a bank's ledger moved in one day (Asia/Shanghai) per transaction kind, kept by the posting path
    (`timebank.ledger.summary`) in the same database transaction as the legs, so the head office's stats read a
    few hundred rows instead of counting a year of transactions. `verify` recomputes it from the transactions.

    Each (bank, day, kind) is split over `SUMMARY_STRIPES` rows chosen by the transaction's id, and readers sum
    the stripes: consecutive transactions take consecutive ids, so writers posting at once update different
    rows instead of queueing on one."""

    bank = models.ForeignKey(Org, on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    kind = models.CharField(max_length=20, choices=TransactionKind.choices)
    stripe = models.PositiveSmallIntegerField()
    # Transactions of the bank posted that day, and the minutes they moved (the sum of `Transaction.minutes`).
    transactions = models.BigIntegerField(default=0)
    minutes = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "day", "kind", "stripe"], name="daily_summary_key"),
        ]

    def __str__(self) -> str:
        return f"{self.bank_id} {self.day} {self.kind}: {self.transactions}"


class PublishedCheckpoint(models.Model):
    """A signed checkpoint (timebank/ledger/checkpoint.py) as published on the public disclosure pages, kept as
    the exact JSON text that was signed and served, byte for byte. A database writer can insert a row here but
    cannot sign one: every reader (the pages, the incremental `verify`) checks the signature and ignores rows
    whose signature does not verify with this deployment's key."""

    text = models.TextField()
    made_at = models.DateTimeField()  # the checkpoint's own `made_at`, signed inside `text`
    created_at = ClockDateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["-made_at", "-id"], name="checkpoint_latest")]

    def __str__(self) -> str:
        return f"checkpoint {self.pk} {self.made_at:%Y-%m-%d %H:%M}"
