"""Settlement (结算): each member's `earned` minutes move into `goods` and `reserve` by the rules' share.

Members are settled in batches. Each batch is one ledger transaction, committed with the settlement's
progress, so every member is settled wholly or not at all, an interrupted run resumes where it stopped,
and a finished settlement answers again without moving anything.

On PostgreSQL a batch is written set-based (`_settle_batch_set_based`): the batch's members are chosen, locked
and split by one statement into a temporary table, and the legs, new balances and settlement lines are each one
`INSERT ... SELECT`/`UPDATE ... FROM` over it: members' rows pass through Python only where `_chain_batch` reads
the legs to hash them. Elsewhere (SQLite) `_settle_batch` does the same in plain rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import next_entry, record
from timebank.audit.chain import scope_for
from timebank.audit.sealing import seal_inline
from timebank.ledger.events import SettlementFinished
from timebank.ledger.models import Account, AccountKind, Leg, Settlement, SettlementStatus, Transaction, TransactionKind
from timebank.ledger.posting import write_transaction
from timebank.ledger.summary import add_to_summary
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.lib.events import publish
from timebank.ops.idempotency import scope_of
from timebank.orgs.models import Org, Rules, User

BATCH = 1000  # members per batch written in plain rows (SQLite)
SET_BATCH = 10_000  # members per set-based batch (PostgreSQL)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def split(moved: int, goods_share_percent: int) -> tuple[int, int]:
    """Whole minutes: goods rounds down, so the odd minute stays in reserve and none is created or lost."""
    goods = moved * goods_share_percent // 100
    return goods, moved - goods


def amounts(earned: int, since: int, goods_share_percent: int) -> tuple[int, int, int] | None:
    """One member's settlement: (moved, goods, reserve), or None when nothing moves. `earned` is the bucket now and
    `since` what was posted to it after the cutoff: the smaller of earned then and earned now moves. The plain-rows
    batch and the preview use this; the set-based batch is the same rule in SQL (`_FILL_BATCH`)."""
    moved = min(earned - since, earned)
    if moved <= 0:
        return None
    goods, reserve = split(moved, goods_share_percent)
    return moved, goods, reserve


@dataclass
class Preview:
    """What a settlement for `period_end` would move now (a dry run: nothing is locked or written)."""

    period_end: dt.date
    goods_percent: int  # the rule in force, as the run will apply it
    members: int = 0
    moved_minutes: int = 0
    goods_minutes: int = 0
    reserve_minutes: int = 0
    existing: Settlement | None = None  # already started or done for that date: it answers instead


def check_period_end(head_office: Org, period_end: dt.date) -> Settlement | None:
    """`start_settlement`'s refusals (a future date, a date before the last settlement); the existing settlement
    for that date, if any."""
    if period_end > clock.localdate():
        raise Invalid(_("结算日期不能晚于今天。"), fields={"period_end": "in_future"})
    existing = Settlement.objects.filter(head_office=head_office, period_end=period_end).first()
    if existing is not None:
        return existing
    if Settlement.objects.filter(head_office=head_office, period_end__gt=period_end).exists():
        raise Conflict(_("已有更晚的结算，不能再结算更早的期间。"), code="period_before_last")
    return None


def preview_settlement(head_office: Org, period_end: dt.date) -> Preview:
    """The settlement's totals for `period_end` if it ran now, member by member with `amounts` as the run does;
    refused as `start_settlement` refuses."""
    existing = check_period_end(head_office, period_end)
    rules = Rules.objects.get(head_office=head_office)
    found = Preview(period_end, rules.goods_share_percent, existing=existing)
    if existing is not None:
        return found
    earned = Account.objects.filter(bank_id=head_office.pk, kind=AccountKind.EARNED, member__isnull=False)
    since = dict(
        Leg.objects.filter(account__in=earned, transaction__created_at__gte=cutoff_for(period_end))
        .values("account_id")
        .annotate(s=Sum("minutes"))
        .values_list("account_id", "s")
    )
    for account_id, balance in earned.values_list("pk", "balance_minutes").iterator():
        got = amounts(balance, int(since.get(account_id) or 0), rules.goods_share_percent)
        if got is None:
            continue
        found.members += 1
        found.moved_minutes += got[0]
        found.goods_minutes += got[1]
        found.reserve_minutes += got[2]
    return found


def cutoff_for(period_end: dt.date) -> dt.datetime:
    """The end of `period_end` in Asia/Shanghai: postings before it count."""
    return dt.datetime.combine(period_end + dt.timedelta(days=1), dt.time(), tzinfo=SHANGHAI)


def start_settlement(actor: User | None, head_office: Org, period_end: dt.date) -> tuple[Settlement, bool]:
    """Find or open the settlement for this period. Returns (settlement, already_settled)."""
    existing = check_period_end(head_office, period_end)
    if existing is not None:
        return existing, existing.status == SettlementStatus.DONE
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
    batch: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    stop_after_batches: int | None = None,
    set_based: bool | None = None,
) -> Settlement:
    """Settle every member not yet done. `progress(done, total)` is called after each batch.

    `set_based` (default: on PostgreSQL) writes each batch set-based; False writes it in plain rows, the
    portable path (kept selectable on PostgreSQL so tests and the benchmark compare the two)."""
    if settlement.status == SettlementStatus.DONE:
        return settlement
    if set_based is None:
        set_based = connection.vendor == "postgresql"
    if set_based and connection.vendor != "postgresql":
        raise ValueError("the set-based settlement needs PostgreSQL")
    if batch is None:
        batch = SET_BATCH if set_based else BATCH
    bank_id = settlement.head_office_id
    cutoff = cutoff_for(settlement.period_end)
    earned = Account.objects.filter(bank_id=bank_id, kind=AccountKind.EARNED, member__isnull=False)
    total = earned.count()
    done = earned.filter(pk__lte=settlement.last_account_id).count()
    batches = 0
    while True:
        if set_based:
            settlement, count = _settle_batch_set_based(settlement.pk, cutoff, batch)
        else:
            ids = list(
                earned.filter(pk__gt=settlement.last_account_id).order_by("pk").values_list("pk", flat=True)[:batch]
            )
            count = len(ids)
            if ids:
                settlement = _settle_batch(settlement.pk, ids, cutoff)
        if not count:
            break
        done += count
        batches += 1
        if progress:
            progress(done, total)
        if stop_after_batches is not None and batches >= stop_after_batches:
            return settlement
    with transaction.atomic():
        settlement = Settlement.objects.select_for_update().get(pk=settlement.pk)
        if settlement.status != SettlementStatus.DONE:
            settlement.status = SettlementStatus.DONE
            settlement.finished_at = clock.now()
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
        # int(): PostgreSQL sums bigints to numeric (Decimal), which would not mix with the ints below.
        since = {account_id: int(total) for account_id, total in cursor.fetchall()}
    buckets: dict[int, dict[str, tuple[int, int]]] = {}
    homes: dict[int, int] = {}
    for account_id, member_id, kind, balance, home in accounts:
        buckets.setdefault(member_id, {})[kind] = (account_id, balance)
        homes[member_id] = home
    changes: dict[int, tuple[int, int]] = {}  # account_id -> (minutes, balance_after)
    lines: list[tuple[int, int, int, int]] = []
    for member_id, b in buckets.items():
        earned_id, earned = b[AccountKind.EARNED]
        got = amounts(earned, since.get(earned_id, 0), settlement.goods_share_percent)
        if got is None:
            continue
        moved, goods, reserve = got
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


# The batch's members, one row each, kept server-side for the statements that follow (PostgreSQL only).
# A temporary table lives as long as the connection; each batch empties it first (TRUNCATE, as rows deleted
# from it would never be vacuumed).
_BATCH_TABLE = """
CREATE TEMPORARY TABLE IF NOT EXISTS settlement_batch (
    member_id bigint NOT NULL, org_id bigint NOT NULL,
    earned_id bigint NOT NULL, goods_id bigint, reserve_id bigint,
    earned bigint NOT NULL, goods_balance bigint, reserve_balance bigint,
    moved bigint NOT NULL, goods bigint NOT NULL, reserve bigint NOT NULL
)
"""

# Chooses the next `n` members (by earned account id), locks all their buckets in primary-key order like any
# other writer, and splits what each had earned by the cutoff: the rules of `_settle_batch` and `split`, in SQL.
_FILL_BATCH = """
INSERT INTO settlement_batch
WITH batch AS MATERIALIZED (
    SELECT id, member_id FROM ledger_account
    WHERE bank_id = %(bank)s AND kind = 'earned' AND member_id IS NOT NULL AND id > %(after)s
    ORDER BY id LIMIT %(n)s
), locked AS MATERIALIZED (
    SELECT a.id, a.member_id, a.kind, a.balance_minutes FROM ledger_account a
    WHERE a.member_id IN (SELECT member_id FROM batch) AND a.bank_id = %(bank)s
    ORDER BY a.id FOR UPDATE
), since AS (
    -- Earned as of the cutoff = now minus what was posted to it since.
    SELECT l.account_id, SUM(l.minutes)::bigint AS minutes
    FROM ledger_leg l JOIN ledger_transaction t ON t.id = l.transaction_id
    WHERE t.created_at >= %(cutoff)s AND l.account_id IN (SELECT id FROM batch)
    GROUP BY l.account_id
), buckets AS (
    SELECT member_id,
        MAX(id) FILTER (WHERE kind = 'earned') AS earned_id,
        MAX(id) FILTER (WHERE kind = 'goods') AS goods_id,
        MAX(id) FILTER (WHERE kind = 'reserve') AS reserve_id,
        MAX(balance_minutes) FILTER (WHERE kind = 'earned') AS earned,
        MAX(balance_minutes) FILTER (WHERE kind = 'goods') AS goods_balance,
        MAX(balance_minutes) FILTER (WHERE kind = 'reserve') AS reserve_balance
    FROM locked GROUP BY member_id
)
SELECT b.member_id, m.home_org_id, b.earned_id, b.goods_id, b.reserve_id, b.earned, b.goods_balance,
    b.reserve_balance, mv.moved, mv.moved * %(pct)s::bigint / 100, mv.moved - mv.moved * %(pct)s::bigint / 100
FROM buckets b
JOIN members_member m ON m.id = b.member_id
LEFT JOIN since s ON s.account_id = b.earned_id
CROSS JOIN LATERAL (SELECT GREATEST(LEAST(b.earned - COALESCE(s.minutes, 0), b.earned), 0) AS moved) AS mv
"""

# The legs of the batch's transaction: three per member who moved anything (none of zero minutes).
_BATCH_LEGS = """
SELECT x.account_id, b.member_id, x.kind, x.minutes, x.after
FROM settlement_batch b CROSS JOIN LATERAL (VALUES
    (b.earned_id, 'earned', -b.moved, b.earned - b.moved),
    (b.goods_id, 'goods', b.goods, b.goods_balance + b.goods),
    (b.reserve_id, 'reserve', b.reserve, b.reserve_balance + b.reserve)
) AS x(account_id, kind, minutes, after)
WHERE x.minutes <> 0
"""
_INSERT_LEGS = (
    "INSERT INTO ledger_leg (transaction_id, account_id, minutes, balance_after_minutes) "  # noqa: S608
    f"SELECT %s, account_id, minutes, after FROM ({_BATCH_LEGS}) AS legs ORDER BY account_id"
)
_UPDATE_BALANCES = (
    "UPDATE ledger_account AS a SET balance_minutes = legs.after "  # noqa: S608
    f"FROM ({_BATCH_LEGS}) AS legs WHERE a.id = legs.account_id"
)
_INSERT_LINES = (
    "INSERT INTO ledger_settlementline (settlement_id, transaction_id, member_id, org_id, earned_minutes, "
    "goods_minutes, reserve_minutes) SELECT %s, %s, member_id, org_id, moved, goods, reserve FROM settlement_batch "
    "WHERE moved > 0 ORDER BY earned_id"
)


@transaction.atomic
def _settle_batch_set_based(settlement_id: int, cutoff: dt.datetime, batch: int) -> tuple[Settlement, int]:
    """The next `batch` members after `last_account_id`, in one database transaction and a handful of statements
    whatever the batch's size. Returns the settlement and how many members the batch held (0: none left)."""
    settlement = Settlement.objects.select_for_update().get(pk=settlement_id)
    if settlement.status == SettlementStatus.DONE:
        return settlement, 0
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_TABLE)
        cursor.execute("TRUNCATE settlement_batch")
        cursor.execute(
            _FILL_BATCH,
            {
                "bank": settlement.head_office_id,
                "after": settlement.last_account_id,
                "n": batch,
                "cutoff": cutoff,
                "pct": settlement.goods_share_percent,
            },
        )
        cursor.execute(
            "SELECT COUNT(*), MIN(earned_id), MAX(earned_id), COUNT(*) FILTER (WHERE moved > 0), "
            "COALESCE(SUM(moved), 0), COALESCE(SUM(goods), 0), COALESCE(SUM(reserve), 0) FROM settlement_batch"
        )
        count, first_id, last_id, members, moved, goods, reserve = cursor.fetchone()
        if not count:
            return settlement, 0
        if members:
            tx = _batch_transaction(settlement, first_id, members, int(moved))
            add_to_summary(tx)
            tx_id = tx.pk
            cursor.execute(_INSERT_LEGS, [tx_id])
            cursor.execute(_UPDATE_BALANCES)
            cursor.execute(_INSERT_LINES, [settlement.pk, tx_id])
            seal_inline(scope_for(settlement.head_office_id), ["ledger", "audit"])
    settlement.members += members
    settlement.moved_minutes += moved
    settlement.goods_minutes += goods
    settlement.reserve_minutes += reserve
    settlement.last_account_id = last_id
    settlement.save(update_fields=["last_account_id", "members", "moved_minutes", "goods_minutes", "reserve_minutes"])
    return settlement, count


def _batch_transaction(settlement: Settlement, first_account_id: int, members: int, moved: int) -> Transaction:
    """The batch's one ledger transaction, inserted unsealed before its legs, and its `settlement.batch` audit entry.
    The sealer links both into the bank's chains once the legs are in (at once in "inline" mode).

    `moved` is the transaction's amount, the sum of its positive legs: each member's goods and reserve legs add up to
    what left earned (`split`), so the batch's total moved is that sum without another pass over the legs."""
    bank_id = settlement.head_office_id
    actor = settlement.actor
    tx = Transaction(
        bank_id=bank_id,
        kind=TransactionKind.SETTLEMENT,
        memo=f"结算 {settlement.period_end.isoformat()}",
        actor=actor,
        idem_scope=scope_of(actor),
        idempotency_key=f"settlement-{settlement.pk}-{first_account_id}",
        fingerprint=f"settlement-{settlement.pk}",
        minutes=moved,
        created_at=clock.now(),
    )
    tx.save(force_insert=True)
    data = {"settlement": settlement.pk, "members": members}
    next_entry(scope_for(bank_id), actor, "settlement.batch", tx, data=data).save(force_insert=True)
    return tx


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
