"""Credit-moving actions. Each is atomic, idempotent per (caller, key), and audited."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from timebank.approvals.actions import is_person, needs_approval, open_approval, replayed_approval
from timebank.approvals.models import Approval, ApprovalKind
from timebank.audit.actions import record
from timebank.ledger import summary
from timebank.ledger.checkpoint import checkpoint_text, make_checkpoint
from timebank.ledger.events import CreditsOverCap, StoredTimeSpending, TransactionReversed, TransactionReversing
from timebank.ledger.models import (
    MEMBER_BUCKETS,
    SYSTEM_KINDS,
    Account,
    AccountKind,
    PublishedCheckpoint,
    Transaction,
    TransactionKind,
)
from timebank.ledger.posting import (
    Locked,
    check_minutes,
    lock_accounts,
    lock_set,
    post,
    run_idempotent,
    transfer_in_one_call,
)
from timebank.lib.errors import Conflict, Invalid
from timebank.lib.events import publish
from timebank.lib.summaries import LOCK_TIMEOUT_SECONDS, Rebuilt, rebuild
from timebank.members.models import Member, MemberStatus, RelativeLink
from timebank.ops.idempotency import check_key, fingerprint, scope_of
from timebank.orgs.models import Org, OrgKind, Rules, User


def open_system_accounts(bank: Org) -> None:
    Account.objects.bulk_create([Account(bank=bank, kind=k) for k in SYSTEM_KINDS])


def open_member_accounts(member: Member) -> None:
    Account.objects.bulk_create([Account(bank_id=member.bank_id, member=member, kind=k) for k in MEMBER_BUCKETS])


def system_account_id(bank_id: int, kind: str) -> int:
    return Account.objects.values_list("pk", flat=True).get(bank_id=bank_id, member__isnull=True, kind=kind)


@dataclass
class Buckets:
    earned: Account
    goods: Account
    reserve: Account

    @property
    def spendable(self) -> int:
        return self.earned.balance_minutes + self.reserve.balance_minutes


def member_account_ids(member_id: int) -> dict[str, int]:
    return dict(Account.objects.filter(member_id=member_id).values_list("kind", "pk"))


def _member_buckets(locked: Locked, member_id: int) -> Buckets:
    return Buckets(*(locked.bucket(member_id, k) for k in MEMBER_BUCKETS))


def _floor(bank_id: int, *, overdraft: bool) -> int:
    if not overdraft:
        return 0
    return -Rules.objects.values_list("overdraft_minutes", flat=True).get(head_office_id=bank_id)


def _pay_legs(b: Buckets, minutes: int, floor: int) -> list[tuple[Account, int]]:
    """Debit `minutes` from reserve first, then earned; never from goods."""
    if b.spendable - minutes < floor:
        raise Conflict(
            _("时间余额不足。"), code="insufficient_balance", fields={"available_minutes": b.spendable - floor}
        )
    from_reserve = min(minutes, max(b.reserve.balance_minutes, 0))
    return [(b.reserve, -from_reserve), (b.earned, -(minutes - from_reserve))]


# Rules other cities use (issue 16) ----------------------------------------------------------------------------


def storage_cap_minutes(bank_id: int) -> int | None:
    """The head office's `storage_cap_hours` in minutes (None: no cap)."""
    hours = Rules.objects.values_list("storage_cap_hours", flat=True).get(head_office_id=bank_id)
    return None if hours is None else hours * 60


def pool_if_capped(cap: int | None) -> list[str]:
    """The system account a capped credit may need: lock it with the member's buckets."""
    return [AccountKind.DONATION_POOL] if cap is not None else []


def credit_legs(
    locked: Locked, member_id: int, account: Account, minutes: int, cap: int | None
) -> tuple[list[tuple[Account, int]], int]:
    """The one home of the storage cap (储存上限): credit `minutes` to `account`, one of `member_id`'s buckets; the
    part that would take the member's stored time (all three buckets together) above `cap` goes to the bank's
    donation pool instead (locked with the buckets, `pool_if_capped`). Exactly at the cap keeps everything.
    Returns the legs and the minutes sent to the pool; `announce_over_cap` tells the member after posting.
    Applied where time is credited to a member from outside them: deposits (orders, service records, activities,
    award bonuses), gifts from a relative, positive adjustments and yearly grants. Not to moves of the member's own
    time (settlement between their buckets, an inter-bank move of their balance) nor to reversals (exact undoing)."""
    if cap is None or minutes <= 0:
        return [(account, minutes)], 0
    held = sum(locked.bucket(member_id, k).balance_minutes for k in MEMBER_BUCKETS)
    kept = min(minutes, max(cap - held, 0))
    over = minutes - kept
    legs = [(account, kept)]
    if over:
        legs.append((locked.system(AccountKind.DONATION_POOL), over))
    return legs, over


def check_capped_legs(legs: list[tuple[Account, int]]) -> None:
    """A credit paid from the donation pool to a member at the cap would go from the pool back to it: nothing."""
    net: dict[int, int] = {}
    for account, minutes in legs:
        net[account.pk] = net.get(account.pk, 0) + minutes
    if sum(1 for m in net.values() if m) < 2:
        raise Conflict(
            _("这位会员的储存时间已达上限，这笔时间会全部回到捐赠池；请改由政府补贴支付。"),
            code="storage_cap_reached",
        )


def announce_over_cap(member_id: int, over: int, cap: int | None, tx: Transaction) -> None:
    if over and cap is not None:
        publish(CreditsOverCap(member_id, over, cap, tx))


def check_star_gate(member: Member, rules: Rules) -> None:
    """The head office's `spend_min_star_level`, wherever stored time pays for the member's own service (409
    `below_star_level` from the app that knows star levels, which answers StoredTimeSpending)."""
    if rules.spend_min_star_level is not None:
        publish(StoredTimeSpending(member.pk, member.bank_id, rules.spend_min_star_level))


def _require_active(member: Member, field: str) -> None:
    if member.status != MemberStatus.ACTIVE:
        raise Conflict(_("会员不是正常状态，不能办理。"), code="member_not_active", fields={field: member.status})


def do_deposit(
    actor: User | None,
    *,
    volunteer: Member,
    minutes: int,
    payer: str,
    payer_member: Member | None = None,
    kind: str = TransactionKind.DEPOSIT,
    memo: str = "",
    idempotency_key: str | None = None,
) -> tuple[Transaction, bool]:
    """Credit a volunteer's `earned`, paid by issuance (`subsidy`), a member (`recipient`) or the pool."""
    check_minutes(minutes)
    key = check_key(idempotency_key)
    fp = fingerprint(
        "deposit",
        {
            "v": volunteer.pk,
            "m": minutes,
            "payer": payer,
            "pm": payer_member.pk if payer_member else None,
            "kind": kind,
            "memo": memo,
        },
    )

    if payer not in ("subsidy", "recipient", "pool"):
        raise Invalid(_("付款方式只能是 subsidy、recipient 或 pool。"), fields={"payer": "invalid"})
    if payer == "recipient" and payer_member is None:
        raise Invalid(_("请指定付款人。"), fields={"payer": "required"})
    source_kind = {"subsidy": AccountKind.ISSUANCE, "pool": AccountKind.DONATION_POOL}.get(payer)

    def body() -> Transaction:
        _require_active(volunteer, "volunteer_id")
        members = [volunteer.pk] + ([payer_member.pk] if payer_member is not None and payer == "recipient" else [])
        cap = storage_cap_minutes(volunteer.bank_id)
        locked = lock_set(volunteer.bank_id, members, [*([source_kind] if source_kind else []), *pool_if_capped(cap)])
        if payer == "recipient":
            assert payer_member is not None
            legs = _pay_legs(
                _member_buckets(locked, payer_member.pk), minutes, _floor(volunteer.bank_id, overdraft=True)
            )
        else:
            assert source_kind is not None
            source = locked.system(source_kind)
            if payer == "pool" and source.balance_minutes < minutes:
                raise Conflict(_("捐赠池余额不足。"), code="insufficient_pool")
            legs = [(source, -minutes)]
        credit, over = credit_legs(locked, volunteer.pk, locked.bucket(volunteer.pk, AccountKind.EARNED), minutes, cap)
        check_capped_legs([*legs, *credit])
        tx = post(
            bank_id=volunteer.bank_id,
            kind=kind,
            legs=[*legs, *credit],
            actor=actor,
            memo=memo,
            key=key,
            fp=fp,
            audit=(
                f"ledger.{kind}",
                {"volunteer": volunteer.pk, "minutes": minutes, "payer": payer, **({"over_cap": over} if over else {})},
            ),
        )
        announce_over_cap(volunteer.pk, over, cap, tx)
        return tx

    return run_idempotent(actor, key, fp, body)


def do_withdrawal(
    actor: User | None, *, member: Member, minutes: int, memo: str = "", idempotency_key: str | None = None
) -> tuple[Transaction, bool]:
    """A service received and paid from stored time outside an order (credits go back to issuance)."""
    check_minutes(minutes)
    key = check_key(idempotency_key)
    fp = fingerprint("withdrawal", {"member": member.pk, "m": minutes, "memo": memo})

    def body() -> Transaction:
        _require_active(member, "member_id")
        check_star_gate(member, Rules.objects.get(head_office_id=member.bank_id))
        locked = lock_set(member.bank_id, [member.pk], [AccountKind.ISSUANCE])
        legs = _pay_legs(_member_buckets(locked, member.pk), minutes, _floor(member.bank_id, overdraft=True))
        return post(
            bank_id=member.bank_id,
            kind=TransactionKind.WITHDRAWAL,
            legs=[*legs, (locked.system(AccountKind.ISSUANCE), minutes)],
            actor=actor,
            memo=memo,
            key=key,
            fp=fp,
            audit=("ledger.withdrawal", {"member": member.pk, "minutes": minutes}),
        )

    return run_idempotent(actor, key, fp, body)


def do_transfer(
    actor: User | None,
    *,
    from_member: Member,
    to_member: Member | None,
    minutes: int,
    kind: str,
    memo: str = "",
    idempotency_key: str | None = None,
) -> tuple[Transaction, bool]:
    """Give time to a linked relative, or donate it (to a member or the bank's pool). Never overdraws."""
    check_minutes(minutes)
    key = check_key(idempotency_key)
    if len(memo) > 500:
        raise Invalid(_("备注太长。"), fields={"memo": "too_long"})
    if kind not in ("relative", "donation"):
        raise Invalid(_("类型只能是 relative 或 donation。"), fields={"kind": "invalid"})
    if to_member is not None and to_member.pk == from_member.pk:
        raise Invalid(_("不能转给自己。"), fields={"to_member_id": "self"})
    if to_member is not None and to_member.bank_id != from_member.bank_id:
        raise Invalid(_("收款人属于另一家时间银行。"), fields={"to_member_id": "other_bank"})
    if kind == "relative":
        if to_member is None:
            raise Invalid(_("请选择接收的亲属。"), fields={"to_member_id": "required"})
        if not RelativeLink.objects.filter(member=from_member, relative=to_member).exists():
            raise Invalid(_("只能转赠给已登记的亲属。"), code="not_a_relative", fields={"to_member_id": "not_linked"})
    fp = fingerprint(
        "transfer",
        {"from": from_member.pk, "to": to_member.pk if to_member else None, "m": minutes, "kind": kind, "memo": memo},
    )
    tx_kind = TransactionKind.TRANSFER if kind == "relative" else TransactionKind.DONATION
    audit_data: dict[str, object] = {
        "from": from_member.pk,
        "to": to_member.pk if to_member else "pool",
        "minutes": minutes,
    }

    if from_member.status == MemberStatus.ACTIVE and (to_member is None or to_member.status == MemberStatus.ACTIVE):
        # PostgreSQL: the common case in one statement; None when it wrote nothing and `body` must decide.
        done = transfer_in_one_call(
            bank_id=from_member.bank_id,
            from_member_id=from_member.pk,
            to_member_id=to_member.pk if to_member is not None else None,
            minutes=minutes,
            kind=tx_kind,
            memo=memo,
            actor=actor,
            key=key,
            fp=fp,
            audit=(f"ledger.{tx_kind}", audit_data),
        )
        if done is not None:
            return done, False

    def body() -> Transaction:
        _require_active(from_member, "from_member_id")
        if to_member is not None:
            _require_active(to_member, "to_member_id")
        members = [from_member.pk] + ([to_member.pk] if to_member is not None else [])
        cap = storage_cap_minutes(from_member.bank_id) if to_member is not None else None
        locked = lock_set(
            from_member.bank_id, members, pool_if_capped(cap) if to_member else [AccountKind.DONATION_POOL]
        )
        if to_member is not None:
            credit, over = credit_legs(
                locked, to_member.pk, locked.bucket(to_member.pk, AccountKind.RESERVE), minutes, cap
            )
        else:
            credit, over = [(locked.system(AccountKind.DONATION_POOL), minutes)], 0
        legs = _pay_legs(_member_buckets(locked, from_member.pk), minutes, 0)
        tx = post(
            bank_id=from_member.bank_id,
            kind=tx_kind,
            legs=[*legs, *credit],
            actor=actor,
            memo=memo,
            key=key,
            fp=fp,
            audit=(f"ledger.{tx_kind}", {**audit_data, **({"over_cap": over} if over else {})}),
        )
        if to_member is not None:
            announce_over_cap(to_member.pk, over, cap, tx)
        return tx

    return run_idempotent(actor, key, fp, body)


def do_adjustment(
    actor: User | None,
    *,
    member: Member,
    minutes: int,
    bucket: str,
    reason: str,
    idempotency_key: str | None = None,
) -> tuple[Transaction | Approval, bool]:
    """Opening balances from paper records, and corrections. The counterpart is issuance.

    A person's positive adjustment above the head office's `approval_threshold_minutes` moves nothing: it
    answers `(Approval, replayed)` in state `pending_approval` until a second person approves it
    (timebank.approvals). Otherwise `(Transaction, replayed)`."""
    check_minutes(minutes, allow_negative=True)
    key = check_key(idempotency_key)
    bucket, reason = _check_adjustment(bucket, reason)
    fp = _adjustment_fp(member, minutes, bucket, reason)
    if not is_person(actor):
        return post_adjustment(actor, member=member, minutes=minutes, bucket=bucket, reason=reason, idempotency_key=key)
    if (waiting := replayed_approval(actor, key, fp)) is not None:
        return waiting, True
    # One transaction: needs_approval locks the member, so a parallel credit to them counts this one.
    with transaction.atomic():
        if needs_approval(actor, member, minutes) and not (
            key and Transaction.objects.filter(idem_scope=scope_of(actor), idempotency_key=key).exists()
        ):
            return open_approval(
                actor,
                kind=ApprovalKind.ADJUSTMENT,
                member=member,
                minutes=minutes,
                payload={"member_id": member.pk, "minutes": minutes, "bucket": bucket, "reason": reason},
                fp=fp,
                idempotency_key=key,
            )
        return post_adjustment(actor, member=member, minutes=minutes, bucket=bucket, reason=reason, idempotency_key=key)


def _check_adjustment(bucket: str, reason: str) -> tuple[str, str]:
    if bucket not in MEMBER_BUCKETS:
        raise Invalid(_("账户只能是 earned、goods 或 reserve。"), fields={"bucket": "invalid"})
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise Invalid(_("请填写调整原因（500 字以内）。"), fields={"reason": "required"})
    return bucket, reason


def _adjustment_fp(member: Member, minutes: int, bucket: str, reason: str) -> str:
    return fingerprint("adjustment", {"member": member.pk, "m": minutes, "bucket": bucket, "reason": reason})


def post_adjustment(
    actor: User | None,
    *,
    member: Member,
    minutes: int,
    bucket: str,
    reason: str,
    idempotency_key: str | None = None,
) -> tuple[Transaction, bool]:
    """The posting half of `do_adjustment`, with no four-eyes check: for an approved approval and the system."""
    check_minutes(minutes, allow_negative=True)
    key = check_key(idempotency_key)
    bucket, reason = _check_adjustment(bucket, reason)
    fp = _adjustment_fp(member, minutes, bucket, reason)

    def body() -> Transaction:
        cap = storage_cap_minutes(member.bank_id) if minutes > 0 else None
        locked = lock_set(member.bank_id, [member.pk], [AccountKind.ISSUANCE, *pool_if_capped(cap)])
        b = _member_buckets(locked, member.pk)
        account = locked.bucket(member.pk, bucket)
        if minutes < 0:
            if bucket == AccountKind.GOODS and account.balance_minutes + minutes < 0:
                raise Conflict(_("可兑换物品的时间不足。"), code="insufficient_balance")
            if bucket != AccountKind.GOODS and b.spendable + minutes < _floor(member.bank_id, overdraft=True):
                raise Conflict(_("调整后余额将低于下限。"), code="insufficient_balance")
        credit, over = credit_legs(locked, member.pk, account, minutes, cap)
        data = {"member": member.pk, "minutes": minutes, "bucket": bucket, "reason": reason}
        tx = post(
            bank_id=member.bank_id,
            kind=TransactionKind.ADJUSTMENT,
            legs=[*credit, (locked.system(AccountKind.ISSUANCE), -minutes)],
            actor=actor,
            memo=reason,
            key=key,
            fp=fp,
            audit=("ledger.adjustment", {**data, "over_cap": over} if over else data),
        )
        announce_over_cap(member.pk, over, cap, tx)
        return tx

    return run_idempotent(actor, key, fp, body)


def do_reversal(
    actor: User | None, *, original: Transaction, reason: str, idempotency_key: str | None = None
) -> tuple[Transaction, bool]:
    """Undo a transaction by posting its legs negated. Postings themselves never change."""
    key = check_key(idempotency_key)
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise Invalid(_("请填写冲正原因（500 字以内）。"), fields={"reason": "required"})
    fp = fingerprint("reversal", {"tx": original.pk, "reason": reason})

    def body() -> Transaction:
        if original.kind == TransactionKind.REVERSAL:
            raise Conflict(_("冲正交易不能再冲正，请做调整。"), code="cannot_reverse_reversal")
        if Transaction.objects.filter(reverses=original).exists():
            raise Conflict(_("这笔交易已经冲正过了。"), code="already_reversed")
        # What hangs on the original is locked first (a goods redemption's voucher: refused when the goods were
        # handed over), by the apps above in their subscribers.
        publish(TransactionReversing(original))
        legs = list(original.legs.values_list("account_id", "minutes"))
        member_ids = set(
            Account.objects.filter(pk__in=[a for a, _m in legs], member__isnull=False).values_list(
                "member_id", flat=True
            )
        )
        all_ids = {a for a, _m in legs}
        per_member = {m: member_account_ids(m) for m in member_ids}
        for ids in per_member.values():
            all_ids |= set(ids.values())
        locked = lock_accounts(all_ids)
        new_legs = [(locked[a], -m) for a, m in legs]
        after = {a.pk: a.balance_minutes for a in locked.values()}
        for a, m in legs:
            after[a] -= m
        floor = _floor(original.bank_id, overdraft=True)
        for ids in per_member.values():
            if (
                after[ids[AccountKind.GOODS]] < 0
                or after[ids[AccountKind.EARNED]] + after[ids[AccountKind.RESERVE]] < floor
            ):
                raise Conflict(_("冲正后会员余额将低于下限，请改用调整。"), code="insufficient_balance")
        for account in locked.values():
            if account.kind == AccountKind.DONATION_POOL and after[account.pk] < 0:
                raise Conflict(_("捐赠池余额不足，无法冲正。"), code="insufficient_pool")
        # A voucher is voided and its stock returned in this transaction, before the chain head is locked.
        publish(TransactionReversed(actor, original))
        tx = post(
            bank_id=original.bank_id,
            kind=TransactionKind.REVERSAL,
            legs=new_legs,
            actor=actor,
            memo=reason,
            key=key,
            fp=fp,
            reverses=original,
        )
        record(actor, "ledger.reversal", tx, bank_id=original.bank_id, data={"reverses": original.pk, "reason": reason})
        return tx

    return run_idempotent(actor, key, fp, body)


def do_publish_checkpoint(actor: User | None) -> PublishedCheckpoint:
    """Make a signed checkpoint of every chain's tip (sealing what waits first), keep its exact text for the
    public disclosure pages and the incremental `verify`, and audit it in the global chain. The checkpoint is
    made before the transaction that stores it, so its own audit entry falls into the next checkpoint."""
    data = make_checkpoint()
    text = checkpoint_text(data)
    with transaction.atomic():
        row = PublishedCheckpoint.objects.create(text=text, made_at=dt.datetime.fromisoformat(data["made_at"]))
        record(
            actor,
            "checkpoint.publish",
            row,
            bank_id=None,
            data={
                "made_at": data["made_at"],
                "chains": len(data["chains"]),
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
            },
        )
    return row


@transaction.atomic
def do_rebuild_daily_summary(
    actor: User | None, bank: Org, *, dry_run: bool = False, lock_timeout: float = LOCK_TIMEOUT_SECONDS
) -> Rebuilt:
    """Make the bank's daily summary equal to its transactions counted again (`manage.py rebuild_summaries`): only the
    rows that differ are written, under a lock that holds off the table's writers until commit (see
    `timebank.lib.summaries`). Audited in the global chain, not the bank's: the bank's writers may hold its chain head
    while they wait for the table, and the rebuild must not wait for them in turn."""
    if bank.kind != OrgKind.HEAD_OFFICE:
        raise Invalid(_("汇总按总行保存：%(name)s 不是总行。") % {"name": bank.name}, code="not_head_office")
    done = rebuild(
        summary.SUMMARY,
        bank.pk,
        summary.recount_sql("AND t.bank_id = %s"),
        [bank.pk],
        dry_run=dry_run,
        lock_timeout=lock_timeout,
    )
    if done.rows and not dry_run:
        record(actor, "summary.rebuild", bank, bank_id=None, data=done.as_data())
    return done
