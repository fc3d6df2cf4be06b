"""Settlement (结算): each member's `earned` minutes move into `goods` and `reserve` by the rules' share.

Members are settled in batches. Each batch is one ledger transaction, committed with the settlement's
progress, so every member is settled wholly or not at all, an interrupted run resumes where it stopped,
and a finished settlement answers again without moving anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.ledger.models import (
    Account,
    AccountKind,
    Leg,
    Settlement,
    SettlementLine,
    SettlementStatus,
    TransactionKind,
)
from timebank.ledger.posting import lock_accounts, post
from timebank.lib.errors import Conflict, Invalid
from timebank.orgs.models import Org, Rules, User

BATCH = 1000
SHANGHAI = ZoneInfo("Asia/Shanghai")


def split(moved: int, goods_share_percent: int) -> tuple[int, int]:
    """Whole minutes: goods rounds down, so the odd minute stays in reserve and none is created or lost."""
    goods = moved * goods_share_percent // 100
    return goods, moved - goods


def cutoff_for(period_end: dt.date) -> dt.datetime:
    """The end of `period_end` in Asia/Shanghai: postings before it count."""
    return dt.datetime.combine(period_end + dt.timedelta(days=1), dt.time(), tzinfo=SHANGHAI)


def start_settlement(actor: User | None, head_office: Org, period_end: dt.date) -> tuple[Settlement, bool]:
    """Find or open the settlement for this period. Returns (settlement, already_settled)."""
    if period_end > timezone.localdate():
        raise Invalid(_("结算日期不能晚于今天。"), fields={"period_end": "in_future"})
    existing = Settlement.objects.filter(head_office=head_office, period_end=period_end).first()
    if existing is not None:
        return existing, existing.status == SettlementStatus.DONE
    later = Settlement.objects.filter(head_office=head_office, period_end__gt=period_end).exists()
    if later:
        raise Conflict(_("已有更晚的结算，不能再结算更早的期间。"), code="period_before_last")
    rules = Rules.objects.get(head_office=head_office)
    try:
        with transaction.atomic():
            settlement = Settlement.objects.create(
                head_office=head_office,
                period_end=period_end,
                goods_share_percent=rules.goods_share_percent,
                actor=actor if actor and actor.pk else None,
            )
            record(
                actor,
                "settlement.start",
                settlement,
                bank_id=head_office.pk,
                data={"period_end": period_end.isoformat(), "goods_share_percent": rules.goods_share_percent},
            )
    except IntegrityError:
        # Two starts raced: the other one is the settlement.
        settlement = Settlement.objects.get(head_office=head_office, period_end=period_end)
        return settlement, settlement.status == SettlementStatus.DONE
    return settlement, False


def run_settlement(
    settlement: Settlement,
    *,
    batch: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
    stop_after_batches: int | None = None,
) -> Settlement:
    """Settle every member not yet done. `progress(done, total)` is called after each batch."""
    if settlement.status == SettlementStatus.DONE:
        return settlement
    bank_id = settlement.head_office_id
    cutoff = cutoff_for(settlement.period_end)
    earned = Account.objects.filter(bank_id=bank_id, kind=AccountKind.EARNED, member__isnull=False)
    total = earned.count()
    done = earned.filter(pk__lte=settlement.last_account_id).count()
    batches = 0
    while True:
        ids = list(earned.filter(pk__gt=settlement.last_account_id).order_by("pk").values_list("pk", flat=True)[:batch])
        if not ids:
            break
        settlement = _settle_batch(settlement.pk, ids, cutoff)
        done += len(ids)
        batches += 1
        if progress:
            progress(done, total)
        if stop_after_batches is not None and batches >= stop_after_batches:
            return settlement
    with transaction.atomic():
        settlement = Settlement.objects.select_for_update().get(pk=settlement.pk)
        if settlement.status != SettlementStatus.DONE:
            settlement.status = SettlementStatus.DONE
            settlement.finished_at = timezone.now()
            settlement.save(update_fields=["status", "finished_at"])
            record(
                settlement.actor,
                "settlement.finish",
                settlement,
                bank_id=bank_id,
                data={"members": settlement.members, "moved_minutes": settlement.moved_minutes},
            )
    return settlement


@transaction.atomic
def _settle_batch(settlement_id: int, earned_ids: list[int], cutoff: dt.datetime) -> Settlement:
    settlement = Settlement.objects.select_for_update().get(pk=settlement_id)
    if earned_ids[0] <= settlement.last_account_id:
        return settlement  # another runner did this batch
    members = dict(Account.objects.filter(pk__in=earned_ids).values_list("pk", "member_id"))
    bucket_ids = Account.objects.filter(
        member_id__in=members.values(), kind__in=(AccountKind.GOODS, AccountKind.RESERVE)
    ).values_list("member_id", "kind", "pk")
    others: dict[tuple[int, str], int] = {(m, k): pk for m, k, pk in bucket_ids}
    locked = lock_accounts([*earned_ids, *others.values()])
    # Earned as of the cutoff = now minus what was posted to it since.
    since = dict(
        Leg.objects.filter(account_id__in=earned_ids, transaction__created_at__gte=cutoff)
        .values("account_id")
        .annotate(total=Sum("minutes"))
        .values_list("account_id", "total")
    )
    legs: list[tuple[Account, int]] = []
    lines: list[tuple[int, int, int, int]] = []
    for earned_id in earned_ids:
        account = locked[earned_id]
        at_cutoff = account.balance_minutes - since.get(earned_id, 0)
        moved = min(at_cutoff, account.balance_minutes)
        if moved <= 0:
            continue
        goods, reserve = split(moved, settlement.goods_share_percent)
        member_id = members[earned_id]
        legs.append((account, -moved))
        if goods:
            legs.append((locked[others[(member_id, AccountKind.GOODS)]], goods))
        if reserve:
            legs.append((locked[others[(member_id, AccountKind.RESERVE)]], reserve))
        lines.append((member_id, moved, goods, reserve))
    if lines:
        tx = post(
            bank_id=settlement.head_office_id,
            kind=TransactionKind.SETTLEMENT,
            legs=legs,
            actor=settlement.actor,
            memo=f"结算 {settlement.period_end.isoformat()}",
            key=f"settlement-{settlement.pk}-{earned_ids[0]}",
            fp=f"settlement-{settlement.pk}",
        )
        homes = dict(Account.objects.filter(pk__in=earned_ids).values_list("member_id", "member__home_org_id"))
        SettlementLine.objects.bulk_create(
            [
                SettlementLine(
                    settlement=settlement,
                    member_id=m,
                    org_id=homes[m],
                    earned_minutes=moved,
                    goods_minutes=g,
                    reserve_minutes=r,
                    transaction=tx,
                )
                for m, moved, g, r in lines
            ],
            batch_size=2000,
        )
        settlement.members += len(lines)
        settlement.moved_minutes += sum(line[1] for line in lines)
        settlement.goods_minutes += sum(line[2] for line in lines)
        settlement.reserve_minutes += sum(line[3] for line in lines)
        record(
            settlement.actor,
            "settlement.batch",
            tx,
            bank_id=settlement.head_office_id,
            data={"settlement": settlement.pk, "members": len(lines)},
        )
    settlement.last_account_id = earned_ids[-1]
    settlement.save(update_fields=["last_account_id", "members", "moved_minutes", "goods_minutes", "reserve_minutes"])
    return settlement


def do_settle(
    actor: User | None,
    head_office: Org,
    period_end: dt.date,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Settlement, bool]:
    """Start (or resume) and finish the settlement. Returns (settlement, already_settled)."""
    settlement, already = start_settlement(actor, head_office, period_end)
    if already:
        return settlement, True
    return run_settlement(settlement, progress=progress), False
