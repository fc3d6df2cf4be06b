"""A seeded generator of demo data for the two banks of the seed documents.

Bank 1 is 台儿庄区时间银行 (a district: head office → six towns/streets → villages and communities → service
points). Bank 2 is 南充市爱心时间银行 (a city: head office → 顺庆区 → 和平路街道 → 驻春路社区), where 103
retired cadres brought in 630 residents; the generator mimics that with `referred_by` links.

Each app keeps its part of the demo world in its own `demo.py`, and seeds it through its own actions: orgs (the
banks, logins and org trees: `seed_orgs`), members (the people: `Planner`, `register_person`), catalogue (services
and menus), orders, needs (the census import), hotline, goods, safety and funds (their words and data), approvals
(`with_second_person`), notices, teams and evaluation (`seed_notices`, `seed_teams`, `seed_evaluation`). Each app
also draws its part of the hundred days since launch, in its `demo_timeline.py` (orders also `demo_history.py`),
with the plan's vocabulary in `timebank.lib.demo_plan` (`when`, `do`, `Ref`). This package is the driver: the
world's size (`world`), the timeline composed from the apps' parts (`timeline`) and the order of its strands
(`build_plan` below), the simulation of the balances (`simulation`), and the runner that applies the plan
(`apply`).

It works in two steps:

1. `build_plan` draws everything from `random.Random(seed)` into plain data (no database): the people, then a
   timeline of the hundred days since the platform went live: opening balances from the paper ledger, services
   and group activities, orders in every state, needs and census rows, hotline calls, return visits and welfare
   checks, insurance, certificates and training, goods and redemptions, money in and out, and one settlement.
   Each step is a planned call of an action (`demo_plan.do`, with `demo_plan.Ref`s for what the database will
   hold). Times are kept relative to "today" and birth dates to the current year, so the same seed gives the
   same plan on any day. `simulation` walks the steps with the balances and stock the actions will see, so no
   step overdraws, and settles what the plan left open (payers, quantities, counts).
2. `generate` applies the plan (`apply`): launch day by the apps' seed functions, then each planned call in
   time order, inside one database transaction. The calls run inside `timebank.lib.clock.running(...)`, so
   `clock.now()` follows the timeline (a clock that never goes back): ledger and audit timestamps, the
   settlement's cut-off, check-in and check-out times and "overdue" all look as they would have. Notifications
   for the order transitions are queued inside each transition; their delivery is handed to the task queue when
   the transaction commits.

Only the demo logins get passwords (hashing is slow); other members have no login.
"""

from __future__ import annotations

import time

from django.db import transaction

from timebank.demo.apply import Applier, DemoResult, Plan, existing_demo_usernames, progress_bar
from timebank.demo.simulation import Simulation
from timebank.demo.timeline import Timeline
from timebank.demo.world import MIN_MEMBERS, DemoDataExists
from timebank.lib import clock
from timebank.members.demo import Planner
from timebank.orgs.demo import (
    BANK1,
    BANK2,
    DEMO_LOGINS,
    DEMO_PASSWORD,
    MEMBER_LOGINS,
    STAFF_LOGINS,
    SUPERUSER_LOGIN,
    DemoLogin,
)
from timebank.orgs.models import User


def build_plan(*, members: int = 300, seed: int = 2019, year: int | None = None) -> Plan:
    """Everything the demo will hold, drawn from `random.Random(seed)`; no database access."""
    if members < MIN_MEMBERS:
        raise ValueError(f"members must be at least {MIN_MEMBERS}")
    p = Planner(seed, year or clock.localdate().year)
    volunteer, recipient, relative = p.personas()
    pending = max(3, round(members * 0.03))
    approve_later = pending // 3
    pending2 = max(1, pending // 4)
    pending1 = pending - pending2
    census = max(2, round(members * 0.015))
    bank2 = max(6, round(members * 0.22))
    bank1 = members - bank2 - 3  # the three member logins are in bank 1
    active2 = bank2 - pending2
    # 103 retired cadres brought in 630 residents: about one in seven.
    cadres = max(1, round(active2 * 103 / 733))
    p.bank_members(BANK1, bank1 - pending1 - census)
    p.bank_members(BANK2, active2, cadres=cadres)
    p.pending(BANK1, pending1, approve_later - approve_later // 3, first_at="顺河社区")
    p.pending(BANK2, pending2, approve_later // 3)
    p.census(BANK1, census, ("顺河社区", "古城社区", "华兴社区"))

    t = Timeline(p, volunteer, recipient, relative)
    t.catalogue()
    t.persona_history()
    # Bank 1 has run since 2019 on paper; bank 2 since October 2021 (110 services, 203 hours in its report).
    t.history(BANK1, services_per_volunteer=2.5, opening_share=0.65, opening_scale=1.0)
    t.history(BANK2, services_per_volunteer=1.0, opening_share=0.3, opening_scale=0.15)
    t.safety()
    t.goods()
    t.needs_register(BANK1, 0.35, 60)
    t.needs_register(BANK2, 0.3, 15)
    t.census_import()
    # a few dozen orders, in proportion to the bank, and the stories of the demo logins
    t.random_orders(BANK1, min(60, max(6, round(members * 0.12))))
    t.random_orders(BANK2, min(12, max(2, round(members * 0.02))))
    t.persona_orders()
    t.incidents()
    t.calls(BANK1, min(20, 4 + members // 40))
    t.calls(BANK2, min(6, 1 + members // 150))
    t.welfare_checks(BANK1, 40)
    t.welfare_checks(BANK2, 10)
    t.redemptions(min(30, max(3, members // 15)))
    t.money()
    t.registrations()
    t.settlement()
    t.duty()
    return Plan(seed=seed, orgs=p.orgs, people=p.people, links=p.links, menus=t.menus, steps=Simulation(t).run())


def generate(*, members: int = 300, seed: int = 2019, progress: bool = False, actor: User | None = None) -> DemoResult:
    """Build both demo banks with `members` members. `actor` (e.g. the superuser) creates the orgs and admins.

    Raises DemoDataExists when the demo logins are already there, ValueError for a size below MIN_MEMBERS.
    """
    started = time.perf_counter()
    clash = existing_demo_usernames()
    if clash:
        raise DemoDataExists(f"demo logins already exist: {', '.join(clash)}")
    now = clock.now()
    plan = build_plan(members=members, seed=seed)
    with transaction.atomic(), progress_bar(progress) as bar:
        result = Applier(plan, actor, bar, now).run()
    result.seconds = time.perf_counter() - started
    return result


__all__ = [
    "BANK1",
    "BANK2",
    "DEMO_LOGINS",
    "DEMO_PASSWORD",
    "MEMBER_LOGINS",
    "MIN_MEMBERS",
    "STAFF_LOGINS",
    "SUPERUSER_LOGIN",
    "DemoDataExists",
    "DemoLogin",
    "DemoResult",
    "Plan",
    "build_plan",
    "existing_demo_usernames",
    "generate",
]
