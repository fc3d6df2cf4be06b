"""Settlement (结算): each member's `earned` minutes move into `goods` and `reserve` by the rules' share.

Members are settled in batches. Each batch is one ledger transaction, committed with the settlement's
progress, so every member is settled wholly or not at all, an interrupted run resumes where it stopped,
and a finished settlement answers again without moving anything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.ledger.events import SettlementFinished
from timebank.ledger.models import Account, AccountKind, Settlement, SettlementStatus, TransactionKind
from timebank.ledger.posting import write_transaction
from timebank.lib.errors import Conflict, Invalid
from timebank.lib.events import publish
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
            publish(SettlementFinished(settlement))  # the automatic notice (timebank.notices), in this transaction
    return settlement


@transaction.atomic
def _settle_batch(settlement_id: int, earned_ids: list[int], cutoff: dt.datetime) -> Settlement:
    """One batch, in plain rows rather than model objects: a million members must settle in about a minute."""
    settlement = Settlement.objects.select_for_update().get(pk=settlement_id)
    if earned_ids[0] <= settlement.last_account_id:
        return settlement  # another runner did this batch
    marks = ", ".join(["%s"] * len(earned_ids))
    # Only "%s" placeholders are formatted in; the ids travel as parameters.
    lock_sql = f"SELECT a.id, a.member_id, a.kind, a.balance_minutes, m.home_org_id FROM ledger_account a JOIN members_member m ON m.id = a.member_id WHERE a.member_id IN (SELECT member_id FROM ledger_account WHERE id IN ({marks})) ORDER BY a.id"  # noqa: S608
    since_sql = f"SELECT l.account_id, SUM(l.minutes) FROM ledger_leg l JOIN ledger_transaction t ON t.id = l.transaction_id WHERE t.created_at >= %s AND l.account_id IN ({marks}) GROUP BY l.account_id"  # noqa: S608
    with connection.cursor() as cursor:
        # Every bucket of the batch's members, locked in primary-key order like any other writer.
        cursor.execute(lock_sql + (" FOR UPDATE OF a" if connection.vendor == "postgresql" else ""), earned_ids)
        accounts = cursor.fetchall()
        # Earned as of the cutoff = now minus what was posted to it since.
        # Adapted as the ORM would: SQLite stores UTC text, so a "+08:00" string would compare 8 hours off.
        cursor.execute(since_sql, [connection.ops.adapt_datetimefield_value(cutoff), *earned_ids])
        since = dict(cursor.fetchall())
    buckets: dict[int, dict[str, tuple[int, int]]] = {}
    homes: dict[int, int] = {}
    for account_id, member_id, kind, balance, home in accounts:
        buckets.setdefault(member_id, {})[kind] = (account_id, balance)
        homes[member_id] = home
    changes: dict[int, tuple[int, int]] = {}  # account_id -> (minutes, balance_after)
    lines: list[tuple[int, int, int, int]] = []
    for member_id, b in buckets.items():
        earned_id, earned = b[AccountKind.EARNED]
        moved = min(earned - since.get(earned_id, 0), earned)
        if moved <= 0:
            continue
        goods, reserve = split(moved, settlement.goods_share_percent)
        changes[earned_id] = (-moved, earned - moved)
        for kind, amount in ((AccountKind.GOODS, goods), (AccountKind.RESERVE, reserve)):
            if amount:
                account_id, balance = b[kind]
                changes[account_id] = (amount, balance + amount)
        lines.append((member_id, moved, goods, reserve))
    if lines:
        tx = write_transaction(
            bank_id=settlement.head_office_id,
            kind=TransactionKind.SETTLEMENT,
            rows=[(a, m, after) for a, (m, after) in sorted(changes.items())],
            actor=settlement.actor,
            memo=f"结算 {settlement.period_end.isoformat()}",
            key=f"settlement-{settlement.pk}-{earned_ids[0]}",
            fp=f"settlement-{settlement.pk}",
            audit=("settlement.batch", {"settlement": settlement.pk, "members": len(lines)}),
        )
        _insert_lines(settlement.pk, tx.pk, [(m, homes[m], moved, g, r) for m, moved, g, r in lines])
        settlement.members += len(lines)
        settlement.moved_minutes += sum(line[1] for line in lines)
        settlement.goods_minutes += sum(line[2] for line in lines)
        settlement.reserve_minutes += sum(line[3] for line in lines)
    settlement.last_account_id = earned_ids[-1]
    settlement.save(update_fields=["last_account_id", "members", "moved_minutes", "goods_minutes", "reserve_minutes"])
    return settlement


def _insert_lines(settlement_id: int, tx_id: int, rows: list[tuple[int, int, int, int, int]]) -> None:
    columns = "(settlement_id, transaction_id, member_id, org_id, earned_minutes, goods_minutes, reserve_minutes)"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO ledger_settlementline {columns} SELECT %s, %s, * FROM "  # noqa: S608
                "unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])",
                [settlement_id, tx_id, *([r[i] for r in rows] for i in range(5))],
            )
        else:
            cursor.executemany(
                f"INSERT INTO ledger_settlementline {columns} VALUES (%s, %s, %s, %s, %s, %s, %s)",  # noqa: S608
                [(settlement_id, tx_id, *r) for r in rows],
            )


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
