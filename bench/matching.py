"""Matching benchmark: GET /api/v1/orders/{id}/candidates on PostgreSQL with a growing bank of volunteers.

    .venv/bin/python bench/matching.py [--sizes 1000,10000,100000] [--calls 300] [--explain]

Recreates the scratch database `timebank_bench_matching` (nothing else is touched), runs the migrations,
builds one bank (head office, 10 towns, 100 communities spread over a city about 50 km across), then grows it
to each size in `--sizes` and, at each size, times `--calls` candidate calls through the real API (bearer
token, access check, ranking, JSON), cycling over 60 open orders of several kinds. It prints p50/p95/max
and the SQL queries per call, which must not grow with the number of volunteers. The goal: p95 < 50 ms
at 100,000 volunteers. At the largest size it measures again with the rules requiring insurance.

Benchmark-only shortcut: volunteers, recipients, certificates, insurance policies and the service history
(past orders with ratings and hours) are bulk-inserted; the orgs, staff, service items and the open orders
being matched go through the actions.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PG_HOST = os.environ.get("BENCH_PGHOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PGPORT", "5432")
PG_USER = os.environ.get("BENCH_PGUSER", "postgres")
BENCH_DB = "timebank_bench_matching"
GOAL_P95_MS = 50.0
CITY = (34.56, 117.73)  # 台儿庄, roughly
TOWNS = 10
COMMUNITIES_PER_TOWN = 10
RECIPIENTS = 3000
OPEN_ORDERS = 60
WARMUP_CALLS = 30

# What volunteers can do, as in the demo: skills named like service items, willingness as categories.
SKILLS = (
    "家庭保洁",
    "家电维修",
    "水电维修",
    "管道疏通",
    "医疗护理",
    "测量血压",
    "心理咨询",
    "法律咨询",
    "聊天陪伴",
    "陪同就医",
    "代买代办",
    "义务家教",
    "理发",
    "做饭送餐",
)
CATEGORIES = ("mutual_care", "health_care", "legal_aid", "tutoring", "community_education", "culture_sports")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLOTS = ("morning", "afternoon", "evening")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶"
GIVEN = [
    "秀英",
    "桂英",
    "建国",
    "建华",
    "玉兰",
    "志强",
    "淑珍",
    "德明",
    "春梅",
    "永福",
    "丽华",
    "国庆",
    "凤英",
    "长林",
    "素芬",
    "学文",
]
# (name, category, tier, certificate, share of open orders)
ITEMS = (
    ("家庭保洁", "mutual_care", "ordinary", None, 45),
    ("陪同就医", "health_care", "ordinary", None, 15),
    ("家电维修", "mutual_care", "technical", None, 15),
    ("医疗护理", "health_care", "professional", "nursing", 12),
    ("心理咨询", "mutual_care", "professional", "counselling", 8),
    ("法律咨询", "legal_aid", "professional", "legal", 5),
)
# Share of volunteers holding each certificate (a tenth of them expired).
CERTIFICATE_SHARE = {"nursing": 0.05, "first_aid": 0.08, "counselling": 0.02, "legal": 0.01, "electrician": 0.03}


def configure_env() -> None:
    os.environ["DATABASE_URL"] = f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{BENCH_DB}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "timebank.settings"
    os.environ["DEBUG"] = "0"  # no query log: measure what production runs
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def say(text: str = "") -> None:
    print(text, flush=True)


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0 < p <= 100)."""
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def recreate_database() -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(BENCH_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(BENCH_DB)))
        row = conn.execute("SELECT version()").fetchone()
        say(f"  server: {str(row[0]).split(' on ')[0] if row else '?'} at {PG_HOST}:{PG_PORT}")


def vacuum() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


# ------------------------------------------------------------------------------------------------ the bank


@dataclass
class Community:
    org_id: int
    path: str
    lat: float
    lon: float


@dataclass
class Bank:
    bank_id: int
    communities: list[Community]
    token: str
    items: dict[str, int]
    recipient_ids: list[int] = field(default_factory=list)
    volunteers: int = 0
    open_orders: list[tuple[int, str]] = field(default_factory=list)  # (order id, item name)


def build_bank(rng: random.Random) -> Bank:
    from timebank.catalogue.actions import do_create_service_item
    from timebank.orgs.actions import do_create_org, do_create_staff, do_issue_token
    from timebank.orgs.models import OrgKind, User

    root = User(username="bench-root", is_superuser=True, is_staff=True)
    root.set_unusable_password()
    root.save()
    bank = do_create_org(root, name="压测时间银行", kind=OrgKind.HEAD_OFFICE, parent=None)
    communities = []
    for t in range(TOWNS):
        town = do_create_org(root, name=f"街道{t:02d}", kind=OrgKind.BRANCH, parent=bank)
        town_lat, town_lon = CITY[0] + rng.uniform(-0.2, 0.2), CITY[1] + rng.uniform(-0.25, 0.25)
        for c in range(COMMUNITIES_PER_TOWN):
            org = do_create_org(root, name=f"社区{t:02d}-{c:02d}", kind=OrgKind.SUB_BRANCH, parent=town)
            lat, lon = town_lat + rng.uniform(-0.04, 0.04), town_lon + rng.uniform(-0.05, 0.05)
            communities.append(Community(org.pk, org.path, lat, lon))
    # An operator of the whole bank: the 12349 hotline dispatches anywhere in it.
    operator = do_create_staff(
        root, org=bank, username="bench-operator", password="bench-pass-1", name="坐席", role="operator"
    )
    items = {
        name: do_create_service_item(
            root, head_office=bank, name=name, category=category, tier=tier, requires_certificate=cert
        ).pk
        for name, category, tier, cert, _share in ITEMS
    }
    return Bank(bank.pk, communities, do_issue_token(operator), items)


def _place(rng: random.Random, home: Community) -> tuple[Decimal | None, Decimal | None]:
    if rng.random() < 0.15:  # registered at the desk without a location
        return None, None
    lat = home.lat + rng.gauss(0, 0.01)
    lon = home.lon + rng.gauss(0, 0.012)
    return Decimal(f"{lat:.6f}"), Decimal(f"{lon:.6f}")


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def add_recipients(b: Bank, rng: random.Random) -> None:
    from timebank.members.models import Member, MemberStatus

    rows = []
    for _ in range(RECIPIENTS):
        home = rng.choice(b.communities)
        lat, lon = _place(rng, home)
        rows.append(
            Member(
                bank_id=b.bank_id,
                home_org_id=home.org_id,
                name=_name(rng),
                birth_date=dt.date(rng.randint(1930, 1950), rng.randint(1, 12), rng.randint(1, 28)),
                is_recipient=True,
                status=MemberStatus.ACTIVE,
                latitude=lat,
                longitude=lon,
            )
        )
    b.recipient_ids = [m.pk for m in Member.objects.bulk_create(rows, batch_size=2000)]


def add_volunteers(b: Bank, n: int, rng: random.Random) -> None:
    """`n` more volunteers with certificates, insurance and a service history."""
    from django.utils import timezone

    from timebank.members.models import Certificate, InsurancePolicy, Member, MemberStatus
    from timebank.orders.models import Order, OrderState

    today = timezone.localdate()
    now = timezone.now()
    rows = []
    for _ in range(n):
        home = rng.choice(b.communities)
        lat, lon = _place(rng, home)
        skills = rng.sample(SKILLS, rng.randint(1, 4))
        willing = sorted({"mutual_care"} if rng.random() < 0.8 else set()) + rng.sample(CATEGORIES, rng.randint(0, 2))
        if rng.random() < 0.3:
            willing.append(rng.choice(ITEMS)[0])
        days = rng.sample(DAYS, rng.randint(0, 6))
        status = MemberStatus.ACTIVE if rng.random() < 0.93 else rng.choice((MemberStatus.SUSPENDED, MemberStatus.LEFT))
        rows.append(
            Member(
                bank_id=b.bank_id,
                home_org_id=home.org_id,
                name=_name(rng),
                birth_date=dt.date(rng.randint(1950, 1990), rng.randint(1, 12), rng.randint(1, 28)),
                is_volunteer=True,
                is_recipient=rng.random() < 0.05,
                status=status,
                latitude=lat,
                longitude=lon,
                skills=sorted(skills),
                willing_services=sorted(set(willing)),
                availability={d: sorted(rng.sample(SLOTS, rng.randint(1, 3))) for d in days},
            )
        )
    members = Member.objects.bulk_create(rows, batch_size=2000)
    certificates = []
    policies = []
    orders = []
    for m in members:
        for kind, share in CERTIFICATE_SHARE.items():
            if rng.random() < share:
                expired = rng.random() < 0.1
                until = today + dt.timedelta(days=rng.randint(-400, -1) if expired else rng.randint(30, 1000))
                certificates.append(Certificate(member=m, kind=kind, issuer="市培训中心", valid_until=until))
        if rng.random() < 0.75:
            start = today - dt.timedelta(days=rng.randint(0, 300))
            end = start + dt.timedelta(days=365) if rng.random() < 0.9 else today - dt.timedelta(days=1)
            policies.append(
                InsurancePolicy(member=m, insurer="人保", policy_number=f"P{m.pk}", starts_on=start, ends_on=end)
            )
        # Activity is skewed: many never served, a few serve a lot.
        for _ in range(min(int(rng.expovariate(0.5)), 20)):
            confirmed = now - dt.timedelta(days=rng.uniform(0, 180))
            minutes = rng.choice((30, 60, 60, 90, 120))
            reviewed = rng.random() < 0.7
            orders.append(
                Order(
                    bank_id=b.bank_id,
                    org_id=rng.choice(b.communities).org_id,
                    recipient_id=rng.choice(b.recipient_ids),
                    service_item_id=b.items["家庭保洁"],
                    volunteer=m,
                    state=OrderState.REVIEWED if reviewed else OrderState.CONFIRMED,
                    payer="subsidy",
                    channel="app",
                    scheduled_start=confirmed - dt.timedelta(minutes=minutes + 30),
                    planned_minutes=minutes,
                    multiplier=Decimal(1),
                    code="000000",
                    actual_minutes=minutes,
                    credited_minutes=minutes,
                    confirmed_at=confirmed,
                    rating=rng.choices((5, 4, 3, 2, 1), (60, 25, 10, 3, 2))[0] if reviewed else None,
                )
            )
        if rng.random() < 0.05:  # already booked in the coming days
            start = now + dt.timedelta(hours=rng.uniform(1, 24 * 14))
            orders.append(
                Order(
                    bank_id=b.bank_id,
                    org_id=rng.choice(b.communities).org_id,
                    recipient_id=rng.choice(b.recipient_ids),
                    service_item_id=b.items["家庭保洁"],
                    volunteer=m,
                    state=OrderState.ACCEPTED,
                    payer="subsidy",
                    channel="app",
                    scheduled_start=start,
                    planned_minutes=60,
                    multiplier=Decimal(1),
                    code="000000",
                )
            )
    Certificate.objects.bulk_create(certificates, batch_size=5000)
    InsurancePolicy.objects.bulk_create(policies, batch_size=5000)
    Order.objects.bulk_create(orders, batch_size=5000)
    b.volunteers += n


def open_orders(b: Bank, rng: random.Random) -> None:
    """The orders being matched, through do_create_order: a mix of items, some recipients without a location."""
    from django.utils import timezone

    from timebank.catalogue.models import ServiceItem
    from timebank.members.models import Member
    from timebank.orders.actions import do_create_order

    items = {i.name: i for i in ServiceItem.objects.filter(head_office_id=b.bank_id)}
    names = [name for name, *_rest in ITEMS]
    weights = [share for *_rest, share in ITEMS]
    recipients = list(Member.objects.filter(pk__in=rng.sample(b.recipient_ids, OPEN_ORDERS)).select_related("home_org"))
    for recipient in recipients:
        name = rng.choices(names, weights)[0]
        start = timezone.now() + dt.timedelta(days=rng.randint(1, 10), hours=rng.randint(0, 10))
        order = do_create_order(
            None,
            recipient=recipient,
            service_item=items[name],
            scheduled_start=start,
            planned_minutes=rng.choice((60, 90, 120)),
            payer="subsidy",
            channel="hotline",
        )
        b.open_orders.append((order.pk, name))


# --------------------------------------------------------------------------------------------- measuring


@dataclass
class Run:
    volunteers: int
    timings_ms: list[float]
    queries: Counter[int]
    by_kind: dict[str, list[float]]
    returned: Counter[int]


def measure(b: Bank, calls: int) -> Run:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {b.token}")

    def call(order_id: int) -> Any:
        resp = client.get(f"/api/v1/orders/{order_id}/candidates", {"limit": 50})
        if resp.status_code != 200:
            raise SystemExit(f"candidates of order {order_id}: {resp.status_code} {resp.content[:300]!r}")
        return resp.json()

    queries: Counter[int] = Counter()
    returned: Counter[int] = Counter()
    for order_id, _name in b.open_orders:  # query counts, one call per order (not timed)
        with CaptureQueriesContext(connection) as ctx:
            body = call(order_id)
        queries[len(ctx.captured_queries)] += 1
        returned[len(body["items"])] += 1
    for i in range(WARMUP_CALLS):
        call(b.open_orders[i % len(b.open_orders)][0])
    timings = []
    by_kind: dict[str, list[float]] = {}
    for i in range(calls):
        order_id, name = b.open_orders[i % len(b.open_orders)]
        t0 = time.perf_counter()
        call(order_id)
        spent = (time.perf_counter() - t0) * 1000
        timings.append(spent)
        by_kind.setdefault(name, []).append(spent)
    return Run(b.volunteers, sorted(timings), queries, by_kind, returned)


def set_insurance_rule(b: Bank, required: bool) -> None:
    from timebank.orgs.actions import do_update_rules
    from timebank.orgs.models import Rules

    do_update_rules(None, Rules.objects.get(head_office_id=b.bank_id), {"require_insurance_to_dispatch": required})


def explain_near_pool(b: Bank) -> None:
    """The plan of the nearest-volunteers query: it should be an index scan on member_volunteer_geo_gist."""
    from django.db import connection

    from timebank.orders import matching
    from timebank.orders.models import Order

    shown: set[str] = set()
    for order_id, name in b.open_orders:
        order = Order.objects.select_related("service_item", "recipient__home_org").get(pk=order_id)
        if order.recipient.latitude is None or name not in ("家庭保洁", "心理咨询") or name in shown:
            continue
        shown.add(name)
        need = matching.need_for(order, insurance_required=False)
        eligible = matching.eligible_volunteers(order, insurance_required=False, today=dt.date.today())  # noqa: DTZ011
        assert need.latitude is not None and need.longitude is not None
        qs = eligible.filter(latitude__isnull=False, longitude__isnull=False).order_by(
            matching.NearnessKey(need.latitude, need.longitude)
        )
        sql, params = qs.values(*matching.POOL_FIELDS)[: matching.NEAR_POOL].query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) {sql}", params)
            plan = [row[0] for row in cursor.fetchall()]
        say(f"    nearest pool for a {name} order:")
        for line in plan:
            if any(k in line for k in ("Scan", "Join", "Limit", "Sort", "Execution Time")):
                say(f"      {line.strip()[:140]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="volunteer counts, ascending (default 1k,10k,100k)"
    )
    parser.add_argument("--calls", type=int, default=300, help="timed calls per size (default 300)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--explain", action="store_true", help="print the plan of the nearest-pool query per size")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if not sizes or sizes != sorted(sizes) or sizes[0] < 1 or args.calls < 1:
        parser.error("--sizes must be ascending positive counts, --calls positive")
    rng = random.Random(args.seed)

    say("== Matching benchmark: GET /api/v1/orders/{id}/candidates ==")
    say(f"  host: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    say(f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (other work skews the numbers)")
    t0 = time.monotonic()
    recreate_database()
    configure_env()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    b = build_bank(rng)
    add_recipients(b, rng)
    say(
        f"  database {BENCH_DB}: migrated, {len(b.communities)} communities in {TOWNS} towns, "
        f"{RECIPIENTS} recipients, in {time.monotonic() - t0:.1f} s"
    )
    say(f"  {args.calls} timed calls per size (limit=50), over {OPEN_ORDERS} open orders; operator's bearer token")
    say()

    runs: list[Run] = []
    for size in sizes:
        t0 = time.monotonic()
        add_volunteers(b, size - b.volunteers, rng)
        vacuum()
        if not b.open_orders:
            open_orders(b, rng)
        say(f"-- {size:,} volunteers (built in {time.monotonic() - t0:.1f} s)")
        if args.explain:
            explain_near_pool(b)
        run = measure(b, args.calls)
        runs.append(run)
        t = run.timings_ms
        say(f"  p50 {percentile(t, 50):6.1f} ms   p95 {percentile(t, 95):6.1f} ms   max {t[-1]:6.1f} ms")
        say(f"  queries per call: {dict(sorted(run.queries.items()))} (count: orders)")
        for name, spent in sorted(run.by_kind.items()):
            spent.sort()
            say(
                f"    {name:<6} p50 {percentile(spent, 50):6.1f} ms  p95 {percentile(spent, 95):6.1f} ms  ({len(spent)} calls)"
            )
        say()

    say(f"-- {b.volunteers:,} volunteers, the rules requiring valid accident insurance (a second hard filter)")
    set_insurance_rule(b, True)
    insured_run = measure(b, args.calls)
    set_insurance_rule(b, False)
    t = insured_run.timings_ms
    say(f"  p50 {percentile(t, 50):6.1f} ms   p95 {percentile(t, 95):6.1f} ms   max {t[-1]:6.1f} ms")
    say(f"  queries per call: {dict(sorted(insured_run.queries.items()))} (count: orders)")
    say()

    say("== Summary ==")
    say(f"  {'volunteers':>10}  {'p50 ms':>7}  {'p95 ms':>7}  {'queries/call':>12}")
    for run in runs:
        t = run.timings_ms
        counts = sorted(run.queries)
        shown = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
        say(f"  {run.volunteers:>10,}  {percentile(t, 50):7.1f}  {percentile(t, 95):7.1f}  {shown:>12}")
    t = insured_run.timings_ms
    say(f"  {'(insured)':>10}  {percentile(t, 50):7.1f}  {percentile(t, 95):7.1f}")
    last = runs[-1]
    p95 = percentile(last.timings_ms, 95)
    steady = all(sorted(r.queries) == sorted(runs[0].queries) for r in runs)
    say(
        f"  goal p95 < {GOAL_P95_MS:g} ms at {last.volunteers:,}: {'met' if p95 < GOAL_P95_MS else 'NOT met'} "
        f"({p95:.1f} ms); queries per call {'the same at every size' if steady else 'CHANGE with size'}"
    )
    return 0 if p95 < GOAL_P95_MS and steady else 1


if __name__ == "__main__":
    sys.exit(main())
