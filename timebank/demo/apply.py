"""Applying the plan through the actions, inside one transaction, with the clock following the timeline."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from timebank.catalogue.demo import MenuSpec, seed_catalogue, seed_menus
from timebank.catalogue.models import ServiceItem
from timebank.evaluation.demo import seed_evaluation
from timebank.funds.models import FundEntry
from timebank.goods.models import Redemption
from timebank.hotline.models import CallLog
from timebank.ledger.demo_timeline import seed_waiting_credit
from timebank.ledger.models import Transaction
from timebank.lib import clock
from timebank.lib.demo_plan import LAUNCH, RECENT, RECENT_SPAN, Do, Ref, Step, when
from timebank.members.actions import do_link_relative
from timebank.members.demo import LinkSpec, PersonSpec, register_person
from timebank.members.models import InsurancePolicy, Member, MemberStatus
from timebank.needs.models import Need
from timebank.notices.demo import seed_notices
from timebank.orders.models import Order, ServiceRecord
from timebank.orgs.demo import (
    BANK1,
    BANK2,
    MEMBER_LOGINS,
    STAFF_LOGINS,
    DemoLogin,
    OrgSpec,
    manager_of,
    seed_orgs,
)
from timebank.orgs.models import Org, User
from timebank.teams.demo import seed_teams


@dataclass
class Plan:
    """What `generator.build_plan` drew: the orgs, the people and their links, the menus, and the timeline's steps
    in time order."""

    seed: int
    orgs: list[OrgSpec]
    people: list[PersonSpec]
    links: list[LinkSpec]
    menus: list[MenuSpec]
    steps: list[Step]


@dataclass
class DemoResult:
    banks: list[Org]
    logins: list[DemoLogin]
    members: int
    pending: int
    transactions: int
    orders: int = 0
    service_records: int = 0
    needs: int = 0
    calls: int = 0
    redemptions: int = 0
    fund_entries: int = 0
    seconds: float = 0.0


def progress_bar(enabled: bool) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def existing_demo_usernames() -> list[str]:
    names = [login.username for login in (*STAFF_LOGINS, *MEMBER_LOGINS)]
    return sorted(User.objects.filter(username__in=names).values_list("username", flat=True))


class Clock:
    """The demo's time while the plan is applied: inside `timebank.lib.clock.running(clock.now)`, `clock.now()`
    answers it. It never goes back, so ledger and audit timestamps stay in the order of their chains."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def now(self) -> dt.datetime:
        return self.current

    def set(self, moment: dt.datetime) -> None:
        self.current = max(self.current, moment)


class Applier:
    def __init__(self, plan: Plan, root: User | None, bar: Progress, now: dt.datetime) -> None:
        self.plan = plan
        self.root = root
        self.bar = bar
        self.real_now = now
        self.today = timezone.localdate(now)
        self.midnight = clock.start_of_day(self.today)
        self.clock = Clock(self.moment(when(LAUNCH, 7)))
        self.specs = {o.name: o for o in plan.orgs}
        self.orgs: dict[str, Org] = {}
        self.users: dict[str, User] = {}
        self.members: dict[int, Member] = {}
        self.items: dict[tuple[str, str], ServiceItem] = {}
        self.orders: dict[int, Order] = {}
        self.kept: dict[str, Any] = {}  # what planned calls kept (`Do.keep`): trainings, incidents, needs
        self.keys = itertools.count(1)

    # -- time and lookups

    def moment(self, at: int) -> dt.datetime:
        if at >= RECENT:
            return self.real_now - dt.timedelta(minutes=RECENT + RECENT_SPAN - at)
        return self.midnight + dt.timedelta(minutes=at)

    def day(self, offset: int) -> dt.date:
        return self.today + dt.timedelta(days=offset)

    def at(self, at: int) -> None:
        self.clock.set(self.moment(at))

    def user(self, login: str) -> User | None:
        return self.users[login] if login else None

    def second_of(self, maker: str) -> User | None:
        """Who approves a large credit this login made (四眼原则): their superior; a head office's admin's, the
        superuser (None when the demo runs without one)."""
        approver = {"staff": "branch_admin", "branch_admin": "ho_admin"}.get(maker)
        return self.users[approver] if approver else self.root

    def maker(self, login: str) -> User | None:
        """The login that enters a credit; with no second person to approve it, the system's import does."""
        return self.users[login] if login and self.second_of(login) is not None else None

    def member(self, index: int | None) -> Member | None:
        return self.members[index] if index is not None else None

    def item(self, index: int, name: str) -> ServiceItem:
        return self.items[(self.plan.people[index].bank, name)]

    def key(self) -> str:
        return f"demo-{next(self.keys)}"

    # -- the run

    def run(self) -> DemoResult:
        with clock.running(self.clock.now):
            self.prologue()
            seed_notices(self.orgs, self.users)  # launch-day notices: one pinned, one later expired, staff-only
            step_task = self.bar.add_task("时间线 timeline", total=len(self.plan.steps))
            for step in self.plan.steps:
                self.at(step.at)
                self.apply(step)
                self.bar.advance(step_task)
            seed_teams(self.orgs, self.users)  # teams and group activities, at the end: the clock is about now
            seed_evaluation(self.orgs, self.users)  # indicators, assessments, a complaint, penalties, awards
            seed_waiting_credit(self.users, self.key)  # one large credit left for a second person (待审核)
        banks = [self.orgs[BANK1], self.orgs[BANK2]]
        return DemoResult(
            banks=banks,
            logins=[*STAFF_LOGINS, *MEMBER_LOGINS],
            members=Member.objects.filter(bank__in=banks).count(),
            pending=Member.objects.filter(bank__in=banks, status=MemberStatus.PENDING).count(),
            transactions=Transaction.objects.filter(bank__in=banks).count(),
            orders=Order.objects.filter(bank__in=banks).count(),
            service_records=ServiceRecord.objects.filter(bank__in=banks).count(),
            needs=Need.objects.filter(bank__in=banks).count(),
            calls=CallLog.objects.filter(bank__in=banks).count(),
            redemptions=Redemption.objects.filter(member__bank__in=banks).count(),
            fund_entries=FundEntry.objects.filter(bank__in=banks).count(),
        )

    def prologue(self) -> None:
        """Launch day: the org trees and staff, the catalogue and menus, the members moved from paper."""
        plan, bar = self.plan, self.bar
        step = bar.add_task("机构与登录 orgs & logins", total=len(plan.orgs) + len(STAFF_LOGINS))
        self.orgs, self.users = seed_orgs(self.root, plan.orgs, lambda: bar.advance(step))
        self.at(when(LAUNCH, 8, 30))
        self.items = seed_catalogue(self.users, self.orgs)
        self.at(when(LAUNCH, 9))
        seed_menus(plan.menus, self.specs, self.users, self.orgs, self.items)

        at_launch = [p for p in plan.people if p.approved and not p.census]
        step = bar.add_task("会员 members", total=len(at_launch) + len(plan.links))
        for n, person in enumerate(at_launch):
            # members moved from the paper ledger through the day
            self.at(when(LAUNCH, 9, 30) + n * 420 // max(1, len(at_launch)))
            self.register(person, self.users[manager_of(person.org, self.specs)])
            bar.advance(step)
        self.at(when(LAUNCH, 16, 45))
        for link in plan.links:
            registrar = self.users[manager_of(plan.people[link.member].org, self.specs)]
            do_link_relative(registrar, self.members[link.member], self.members[link.relative], link.relation)
            bar.advance(step)

    def register(self, person: PersonSpec, registrar: User | None) -> None:
        referred_by = self.member(person.referrer)
        member = register_person(person, registrar, self.orgs[person.org], referred_by)
        self.members[person.index] = member
        if person.login:
            assert member.user is not None
            self.users[person.login] = member.user

    def apply(self, step: Step) -> None:
        assert isinstance(step, Do), f"unplanned step {step!r}"
        self.call(step)

    def call(self, step: Do) -> None:
        """A planned call of an action: its references resolved, its answer kept if the plan asks."""
        answer = step.action(*self.resolve(step.args), **{k: self.resolve(v) for k, v in step.kwargs.items()})
        if isinstance(answer, tuple):
            answer = answer[0]  # an action taking an idempotency key answers (what it made, replayed)
        if isinstance(step.keep, tuple):
            for ref, each in zip(step.keep, answer, strict=False):
                self.store(ref, each)
        elif step.keep is not None:
            self.store(step.keep, answer)

    def store(self, where: Ref | str, answer: Any) -> None:
        if isinstance(where, str):
            self.kept[where] = answer
        elif where.kind == "member":
            self.members[where.key] = answer
        elif where.kind == "order":
            self.orders[where.key] = answer
        else:
            raise AssertionError(f"cannot keep an answer as {where!r}")

    def resolve(self, value: Any) -> Any:
        """`value` with every `Ref` in it (also in lists, tuples and dataclasses) replaced by what it names."""
        if isinstance(value, Ref):
            return self.referent(value)
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.resolve(v) for v in value)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: self.resolve(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
            return dataclasses.replace(value, **fields)
        return value

    def referent(self, ref: Ref) -> Any:
        kind, key = ref.kind, ref.key
        if kind == "member":
            return self.members[key]
        if kind == "login":
            return self.user(key)
        if kind == "org":
            return self.orgs[key]
        if kind == "order":
            return self.orders[key]
        if kind == "kept":
            return self.kept[key]
        if kind == "day":
            return self.day(key)
        if kind == "moment":
            at, back = key
            return self.moment(at) - dt.timedelta(minutes=back)
        if kind == "item":
            return self.item(*key)
        if kind == "item_ids":
            person, names = key
            return [self.item(person, name).pk for name in names]
        if kind == "policy":
            member, number = key
            return InsurancePolicy.objects.get(member=self.members[member], policy_number=number)
        if kind == "key":
            return self.key()
        if kind == "maker":
            return self.maker(key)
        if kind == "second":
            return self.second_of(key)
        if kind == "order_code":
            return self.orders[key].code
        raise AssertionError(f"unknown reference {ref!r}")
