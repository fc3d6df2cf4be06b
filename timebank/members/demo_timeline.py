"""The demo timeline's common ground, and the members' part of it: who is who, and who registered lately.

The hundred days since launch are drawn by one `Timeline` (composed in `timebank/demo/timeline.py`) from a part
per app: each app's `demo_timeline` module holds a class with the steps that call its own actions, built on
the parts of the apps below it (`timebank/layers.py`). This base holds what all of them read: the planned
people and orgs, the shared random source, the drafts in the order they were drawn, and what the members hold
(certificates, insurance) that several apps look at.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

from timebank.lib.demo_plan import DAY, Ref, Step, daytime, do, when
from timebank.members.actions import do_approve_member
from timebank.members.demo import PersonSpec, Planner, register_person
from timebank.orgs.demo import BANK1, manager_of
from timebank.orgs.models import OrgKind


class TimelineBase:
    """The timeline's state and helpers, and the members' strand: late registrations and their approval."""

    def __init__(self, planner: Planner, volunteer: PersonSpec, recipient: PersonSpec, relative: PersonSpec) -> None:
        self.rng = planner.rng
        self.people = planner.people
        self.specs = planner.by_name
        self.links = planner.links
        self.volunteer, self.recipient, self.relative = volunteer, recipient, relative
        self.drafts: list[tuple[int, int, Step]] = []
        self.seq = itertools.count()
        self.cert_from: dict[int, dict[str, int]] = {}  # person → certificate kind → first day it can be used
        self.insured: dict[int, list[tuple[str, int, int]]] = {}  # person → (policy number, starts, ends)
        self._active: dict[tuple[str, str], list[PersonSpec]] = {}

    # -- helpers

    def add(self, step: Step) -> None:
        self.drafts.append((step.at, next(self.seq), step))

    def manager(self, org: str) -> str:
        return manager_of(org, self.specs)

    def operator(self, bank: str) -> str:
        return "operator" if bank == BANK1 else "nc_admin"

    def admin(self, bank: str) -> str:
        return "ho_admin" if bank == BANK1 else "nc_admin"

    def acts_for(self, person: PersonSpec) -> str:
        """Who records a member's own step: their login, or the staff who manage them."""
        return person.login or self.manager(person.org)

    def branch_of(self, org: str) -> str:
        spec = self.specs[org]
        while spec.kind not in (OrgKind.BRANCH, OrgKind.HEAD_OFFICE) and spec.parent:
            spec = self.specs[spec.parent]
        return spec.name

    def active(self, bank: str, role: str) -> list[PersonSpec]:
        """Approved members of the bank with `role`, registered at launch, without a demo login."""
        key = (bank, role)
        if key not in self._active:
            self._active[key] = [
                p
                for p in self.people
                if p.bank == bank and p.approved and not p.census and p.login is None and role in p.roles
            ]
        return self._active[key]

    def local(
        self,
        role: str,
        org: str,
        count: int,
        fallback: PersonSpec,
        *,
        strict: bool = False,
        avoid: frozenset[int] | set[int] = frozenset(),
    ) -> list[PersonSpec]:
        """`count` different members of `org`, else (unless `strict`) of its branch, else of the bank, none of
        `avoid`; `fallback` if there are too few (tiny demos)."""
        bank = self.specs[org].bank
        everyone = [p for p in self.active(bank, role) if p.index not in avoid]
        found: list[PersonSpec] = []
        pools = [[p for p in everyone if p.org == org]]
        if not strict:
            pools += [[p for p in everyone if self.branch_of(p.org) == self.branch_of(org)], everyone]
        for pool in pools:
            rest = [p for p in pool if p not in found]
            found += self.rng.sample(rest, min(len(rest), count - len(found)))
        return found + [fallback] * (count - len(found))

    def daytime_at(self, first_day: int, last_day: int, first_hour: int = 8, last_hour: int = 18) -> int:
        rng = self.rng
        return when(rng.randint(first_day, last_day), rng.randint(first_hour, last_hour), rng.randrange(0, 60, 5))

    def coords(self, person: PersonSpec) -> tuple[str, str]:
        rng = self.rng
        return (
            f"{person.lat + Decimal(rng.randint(-30, 30)) / 100000:.6f}",
            f"{person.lon + Decimal(rng.randint(-30, 30)) / 100000:.6f}",
        )

    def certified(self, person: PersonSpec, kind: str, day: int) -> bool:
        return self.cert_from.get(person.index, {}).get(kind, 1) < day

    def insured_on(self, person: PersonSpec, day: int) -> str:
        for number, starts, ends in self.insured.get(person.index, []):
            if starts <= day <= ends:
                return number
        return ""

    # -- members who registered lately

    def registrations(self) -> None:
        rng = self.rng
        for person in self.people:
            if person.approved:
                continue
            day = -rng.randint(4, 12) if person.approve_later else -rng.randint(1, 10)
            at = when(day, rng.randint(8, 21), rng.randrange(0, 60, 5))
            # a self-registration, waiting for approval
            home, referrer = Ref.org(person.org), Ref.member(person.referrer)
            self.add(do(at, register_person, person, None, home, referrer, keep=Ref.member(person.index)))
            if person.approve_later:
                approved = daytime(at + rng.randint(1, 2) * DAY + 60)
                actor = Ref.login(self.manager(person.org))
                self.add(
                    do(approved, do_approve_member, actor, Ref.member(person.index), keep=Ref.member(person.index))
                )
