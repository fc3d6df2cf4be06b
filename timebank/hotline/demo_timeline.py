"""The hotline's part of the demo timeline: calls to the 12349 desk (about orders, advice, complaints), return
visits (回访) after services, and welfare checks (定期巡访)."""

from __future__ import annotations

from timebank.hotline.actions import NeedSpec, do_log_call, do_record_return_visit, do_record_welfare_check
from timebank.hotline.demo import CALL_SUMMARIES, WELFARE_CONCERN, WELFARE_OK
from timebank.lib.demo_plan import Do, Ref, do, when
from timebank.members.demo import MOBILE_PREFIXES, WELFARE_CATEGORIES, PersonSpec, weighted
from timebank.needs.demo_timeline import NeedsTimeline
from timebank.orders.demo_timeline import OrderStories, Story
from timebank.orgs.demo import BANK1


class HotlineTimeline(NeedsTimeline, OrderStories):
    """Built on the needs (a call or check may open or name one) and the orders (calls and return visits in an
    order's story: `call` and `return_visit` are drawn here for `OrderStories`)."""

    def log_call(
        self,
        at: int,
        kind: str,
        actor: str,
        summary: str,
        minutes: int,
        *,
        org: str = "",
        member: int | None = None,
        phone: str = "",
        order: int | None = None,
        need: int | None = None,
    ) -> Do:
        """A call to the 12349 desk that ended at `at` after `minutes`: from a member, or an unknown number in `org`."""
        return do(
            at,
            do_log_call,
            Ref.login(actor),
            org=Ref.org(org) if member is None else None,
            kind=kind,
            summary=summary,
            started_at=Ref.moment(at, minutes),
            ended_at=Ref.moment(at),
            member=Ref.member(member),
            phone=phone,
            order=Ref.order(order),
            need=Ref.need(need),
        )

    def call(self, story: Story, at: int, kind: str, summary: str, actor: str, need: int | None = None) -> bool:
        moment = self.next_at(story, at)
        if moment is None:
            return False
        r = story.recipient
        minutes = self.rng.randint(2, 9)
        self.add(self.log_call(moment, kind, actor, summary, minutes, member=r.index, order=story.key, need=need))
        return True

    def return_visit(self, at: int, order: int, outcome: str, satisfaction: int | None, note: str, actor: str) -> Do:
        """回访: the desk calls the recipient after a service."""
        return do(
            at,
            do_record_return_visit,
            Ref.login(actor),
            order=Ref.order(order),
            outcome=outcome,
            satisfaction=satisfaction,
            note=note,
        )

    def calls(self, bank: str, count: int) -> None:
        """Calls to the 12349 desk that are not about an order: advice, complaints, questions."""
        rng = self.rng
        members = [p for p in self.people if p.bank == bank and p.approved and not p.census and p.login is None]
        kinds = ["legal_advice", "psychological_advice", "other"]  # each at least once
        kinds += [rng.choice(("legal_advice", "psychological_advice", "other", "complaint")) for _ in range(count - 3)]
        for kind in kinds:
            at = self.daytime_at(-28, -1, 8, 19)
            summary = rng.choice(CALL_SUMMARIES[kind])
            operator = self.operator(bank)
            if kind == "other" and rng.random() < 0.6:
                phone = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(0, 10**8):08d}"
                self.add(
                    self.log_call(at, kind, operator, summary, rng.randint(1, 6), org=bank, phone=phone)
                )  # unknown
            else:
                m = rng.choice(members)
                self.add(self.log_call(at, kind, operator, summary, rng.randint(3, 20), member=m.index))

    def welfare_check(
        self,
        at: int,
        actor: str,
        person: PersonSpec,
        method: str,
        note: str,
        *,
        found_ok: bool = True,
        need: NeedSpec | None = None,
    ) -> Do:
        """定期巡访 of `person`; a concern found (`found_ok` False: health changed) may open a need at once."""
        return do(
            at,
            do_record_welfare_check,
            Ref.login(actor),
            member=Ref.member(person.index),
            method=method,
            found_ok=found_ok,
            health_changed=not found_ok,
            note=note,
            need=need,
        )

    def welfare_checks(self, bank: str, cap: int) -> None:
        """定期巡访: most recently, some overdue (last check over a week ago), some never checked."""
        rng = self.rng
        pool = [p for p in self.people if p.bank == bank and p.approved and p.login is None and "recipient" in p.roles]
        pool = [p for p in pool if WELFARE_CATEGORIES & set(p.recipient_categories)]
        chosen = rng.sample(pool, min(cap, len(pool)))
        if bank == BANK1:
            for at, method, note in (
                (when(-10, 10), "phone", "老人身体状况良好"),
                (when(-3, 15), "visit", "上门看望，屋里收拾得挺干净"),
            ):
                actor = "operator" if method == "phone" else "staff"
                self.add(self.welfare_check(at, actor, self.recipient, method, note))
        for person in chosen:
            roll = rng.random()
            if roll < 0.15:
                continue  # never checked: first on the list
            last = rng.randint(-6, -1) if roll < 0.7 else rng.randint(-27, -8)
            days = [last] + ([last - rng.randint(7, 10)] if last - 10 > -29 and rng.random() < 0.6 else [])
            for day in sorted(days):
                method = weighted(rng, {"phone": 50, "visit": 35, "video": 15})
                actor = self.operator(bank) if method != "visit" else self.manager(person.org)
                at = when(day, rng.randint(9, 17), rng.randrange(0, 60, 5))
                if rng.random() < 0.12:
                    note = rng.choice(WELFARE_CONCERN)
                    level = self.level_for(person.recipient_categories)
                    need = NeedSpec(
                        level=level, notes=note, item_ids=Ref.item_ids(person.index, self.items_for(person))
                    )
                    self.add(self.welfare_check(at, actor, person, method, note, found_ok=False, need=need))
                else:
                    self.add(self.welfare_check(at, actor, person, method, rng.choice(WELFARE_OK)))
