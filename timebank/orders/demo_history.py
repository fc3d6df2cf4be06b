"""The history part of the demo timeline: the services before the orders, posted as records or deposits
(opening balances from the paper ledger, home services the sub-branch arranged, group activities), and the
money members moved; the demo logins' own small history."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from timebank.approvals.demo import with_second_person
from timebank.catalogue.demo import BANK2_SERVICES, GROUP_SERVICES, HOME_SERVICES, SERVICE_BY_NAME
from timebank.catalogue.demo_timeline import CatalogueTimeline
from timebank.ledger.demo_timeline import OPENING_REASON, DonationDraft, LedgerTimeline, TransferDraft, WithdrawalDraft
from timebank.lib.demo_plan import LAUNCH, Do, Ref, Step, do, when
from timebank.members.demo import PersonSpec, unique_people
from timebank.orders import records as order_records
from timebank.orgs.demo import BANK1


@dataclass(frozen=True)
class ServiceDraft(Step):
    """A service the sub-branch arranged: the simulation makes it a deposit paid by the recipient or the pool, or
    a service record (a subsidy), as the balances allow."""

    volunteer: int
    recipient: int
    item: str
    base: int
    actor: str


class OrdersHistory(LedgerTimeline, CatalogueTimeline):
    """Services outside orders, and the ledger's history since launch."""

    def service_record(
        self,
        at: int,
        volunteer: int,
        item: str,
        minutes: int,
        served_at: int,
        memo: str,
        actor: str,
        recipient: int | None = None,
    ) -> Do:
        """A service outside an order (a group activity, or a home service the sub-branch arranged), entered by
        `actor`; above the threshold it waits for the second person, who approves it at once."""
        return do(
            at,
            with_second_person,
            Ref.second_of(actor),
            order_records.do_service_record,
            Ref.maker(actor),
            volunteer=Ref.member(volunteer),
            service_item=Ref.item(volunteer, item),
            minutes=minutes,
            served_at=Ref.moment(served_at),
            recipient=Ref.member(recipient),
            memo=memo,
            idempotency_key=Ref.idempotency_key(),
        )

    def opening_balances(self, person: PersonSpec, *, scale: float) -> None:
        """Balances brought over from the paper ledger: settled (reserve, goods) and the current period."""
        rng = self.rng
        hours = max(1, min(400, round(rng.lognormvariate(3.0, 0.8) * scale)))
        settled = round(hours * rng.uniform(0.4, 0.9)) if scale >= 1 else 0
        reserve = settled * 30  # half of the settled hours, in minutes
        goods = round(settled * 30 * rng.choice((0, 0.25, 0.5, 1)) / 30) * 30  # some already spent on goods
        earned = (hours - settled) * 60
        at = self.daytime_at(LAUNCH + 1, LAUNCH + 1, 9, 16)
        for bucket, minutes in (("reserve", reserve), ("goods", goods), ("earned", earned)):
            if minutes > 0:
                self.add(self.ledger(at, "adjustment", person.index, minutes, OPENING_REASON, bucket=bucket))

    def duration(self) -> int:
        return self.rng.choices((30, 45, 60, 90, 120, 150, 180), weights=(8, 4, 20, 14, 12, 3, 3))[0]

    def service(
        self, volunteer: PersonSpec, recipients: Sequence[PersonSpec], by_org: dict[str, list[PersonSpec]]
    ) -> None:
        rng = self.rng
        near = by_org.get(volunteer.org)
        recipient = rng.choice(near if near and rng.random() < 0.7 else recipients)
        if recipient.index == volunteer.index:
            return  # someone who both volunteers and receives care does not serve themselves
        at = self.daytime_at(LAUNCH + 3, -1, 9, 18)
        item = self.service_for(volunteer)
        self.add(
            ServiceDraft(at, volunteer.index, recipient.index, item.name, self.duration(), self.manager(volunteer.org))
        )

    def group_activities(self, bank: str, records: int) -> None:
        """Clean-up days, health talks, patrols ...: several volunteers of one community, posted together."""
        rng = self.rng
        volunteers = self.active(bank, "volunteer")
        if not volunteers:
            return
        names = [s.name for s in GROUP_SERVICES if bank == BANK1 or s.name in BANK2_SERVICES] + ["义务家教"]
        by_org: dict[str, list[PersonSpec]] = {}
        for v in volunteers:
            by_org.setdefault(v.org, []).append(v)
        while records > 0:
            org = rng.choice(sorted(by_org))
            item = SERVICE_BY_NAME[rng.choice(names)]
            size = min(records, rng.randint(1, 3) if item.name in ("健康讲座", "义务家教") else rng.randint(3, 8))
            pool = by_org[org] if len(by_org[org]) >= size else volunteers
            skilled = [v for v in pool if item.skill and item.skill in v.skills]
            team = rng.sample(pool, min(size, len(pool)))
            if skilled and team[0] not in skilled:
                team[0] = rng.choice(skilled)
            day = rng.randint(LAUNCH + 3, -1)
            start = rng.choice((8, 9, 14, 15))
            base = rng.choice((60, 90, 120, 180))
            posted = when(day, min(20, start + base // 60 + 1), rng.randrange(0, 60, 5))
            memo = f"{item.name}（{org}集体活动）"
            for v in unique_people(team):
                self.add(
                    self.service_record(posted, v.index, item.name, base, when(day, start), memo, self.manager(v.org))
                )
            records -= len(team)

    def history(self, bank: str, *, services_per_volunteer: float, opening_share: float, opening_scale: float) -> None:
        rng = self.rng
        volunteers = self.active(bank, "volunteer")
        recipients = self.active(bank, "recipient")
        for person in [p for p in self.people if p.bank == bank and p.approved and not p.census and p.login is None]:
            if "volunteer" in person.roles and rng.random() < opening_share:
                self.opening_balances(person, scale=opening_scale)
            elif "recipient" in person.roles and rng.random() < 0.35 * opening_share:
                # older people who volunteered in earlier years and kept their stored time
                at = self.daytime_at(LAUNCH + 1, LAUNCH + 1, 9, 16)
                minutes = rng.randint(2, 40) * 30
                self.add(self.ledger(at, "adjustment", person.index, minutes, OPENING_REASON, bucket="reserve"))
        if not volunteers or not recipients:
            return
        by_org: dict[str, list[PersonSpec]] = {}
        for recipient in recipients:
            by_org.setdefault(recipient.org, []).append(recipient)
        # a few very active volunteers do most of the work, as in every volunteer team
        cumulative = list(itertools.accumulate(rng.paretovariate(1.6) for _ in volunteers))
        for _ in range(round(len(volunteers) * services_per_volunteer)):
            self.service(rng.choices(volunteers, cum_weights=cumulative)[0], recipients, by_org)
        self.group_activities(bank, round(len(volunteers) * 0.3))
        for _ in range(max(1, len(volunteers) // 15)):
            donor = rng.choices(volunteers, cum_weights=cumulative)[0]
            self.add(DonationDraft(self.daytime_at(LAUNCH + 5, -1), donor.index, rng.choice((60, 120, 180, 300))))
        for _ in range(len(recipients) // 10):
            item = rng.choice(HOME_SERVICES[:6])
            self.add(WithdrawalDraft(self.daytime_at(LAUNCH + 10, -1), bank, item.name, rng.choice((60, 90, 120))))
        linked = [
            link
            for link in self.links
            if self.people[link.member].bank == bank
            and self.people[link.relative].login is None
            and self.people[link.member].login is None
        ]
        for _ in range(round(len(linked) * 0.6)):
            link = rng.choice(linked)
            at = self.daytime_at(LAUNCH + 5, -1)
            self.add(TransferDraft(at, link.relative, link.member, link.relation, rng.choice((60, 120, 240))))

    def persona_history(self) -> None:
        """A small, readable story for the three member logins."""
        v, r, rel = self.volunteer, self.recipient, self.relative
        at = when(LAUNCH + 1, 10)
        for bucket, minutes in (("reserve", 1800), ("goods", 600), ("earned", 240)):
            self.add(self.ledger(at, "adjustment", v.index, minutes, OPENING_REASON, bucket=bucket))
        self.add(self.ledger(at + 5, "adjustment", r.index, 600, OPENING_REASON, bucket="reserve"))
        self.add(
            self.service_record(
                when(-80, 11),
                v.index,
                "家庭保洁",
                120,
                when(-80, 9),
                f"为{r.name}提供家庭保洁 120 分钟",
                "staff",
                r.index,
            )
        )
        self.add(
            self.ledger(
                when(-66, 17),
                "deposit",
                v.index,
                90,
                f"为{r.name}提供聊天陪伴 90 分钟（普通服务 ×1）",
                payer="recipient",
                other=r.index,
            )
        )
        self.add(
            self.service_record(
                when(-60, 16),
                rel.index,
                "家电维修",
                60,
                when(-60, 10),
                f"为{r.name}维修洗衣机 60 分钟",
                "staff",
                r.index,
            )
        )
        self.add(
            self.service_record(
                when(-55, 17), v.index, "义务家教", 120, when(-55, 14), "义务家教（顺河社区集体活动）", "staff"
            )
        )
        self.add(
            self.ledger(when(-45, 20), "transfer", rel.index, 120, f"转赠亲属{r.name}（子女孝心转赠）", other=r.index)
        )
        self.add(
            self.service_record(
                when(-41, 12),
                rel.index,
                "社区环保清洁",
                180,
                when(-41, 8),
                "社区环保清洁（古城社区集体活动）",
                "branch_admin",
            )
        )
        self.add(self.ledger(when(-35, 10), "donation", v.index, 60, "自愿捐赠到捐赠池，帮助困难老人"))
        self.add(self.ledger(when(-33, 15), "withdrawal", r.index, 60, "兑换服务：家庭保洁 60 分钟"))
