"""Drawing the timeline (pure: no database): the people's history, the catalogue, safety and incidents."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from timebank.approvals.demo import with_second_person
from timebank.catalogue.demo import (
    BANK2_SERVICES,
    CORE_MENU,
    GROUP_SERVICES,
    HOME_SERVICES,
    MENU_TIMES,
    MENU_TIMES_BY_ITEM,
    SERVICE_BY_NAME,
    MenuSpec,
    Service,
)
from timebank.demo.steps import (
    DAY,
    LAUNCH,
    Do,
    DonationDraft,
    OpAction,
    OrderInfo,
    Ref,
    ServiceDraft,
    Step,
    TransferDraft,
    WithdrawalDraft,
    day_of,
    daytime,
    do,
    when,
)
from timebank.demo.world import OPENING_REASON
from timebank.hotline.actions import do_log_call
from timebank.ledger import actions as ledger_actions
from timebank.ledger.models import TransactionKind
from timebank.members.demo import PersonSpec, Planner, unique_people
from timebank.orders import records as order_records
from timebank.orgs.demo import ASSOCIATION, BANK1, BANK2, manager_of
from timebank.orgs.models import OrgKind
from timebank.safety.actions import (
    AttendanceInput,
    do_add_certificate,
    do_add_group_policy,
    do_add_incident_follow_up,
    do_add_insurance_policy,
    do_close_incident,
    do_create_training,
    do_decide_responsibility,
    do_record_attendance,
    do_report_incident,
    do_update_claim,
)
from timebank.safety.demo import BANK2_ISSUERS, CERTIFICATES, INSURERS

# --------------------------------------------------------------------------------------------------------------
# Drawing the timeline (pure: no database)

RATINGS = {5: 55, 4: 30, 3: 10, 2: 4, 1: 1}
OUTCOMES = {
    "done": 62,
    "declined": 8,
    "no_show": 3,
    "cancelled": 8,
    "cancelled_dispatched": 5,
    "disputed": 6,
    "unfilled": 4,
}


@dataclass
class Story:
    """An order being drafted: its key, and the time of its latest step."""

    key: int
    recipient: PersonSpec
    item: Service
    t: int
    open: bool = True  # False once a step would fall after now: the rest has not happened yet


class TimelineBase:
    """The timeline's state and helpers, and its first strands: the catalogue, history, safety, incidents."""

    def __init__(self, planner: Planner, volunteer: PersonSpec, recipient: PersonSpec, relative: PersonSpec) -> None:
        self.rng = planner.rng
        self.people = planner.people
        self.specs = planner.by_name
        self.links = planner.links
        self.volunteer, self.recipient, self.relative = volunteer, recipient, relative
        self.drafts: list[tuple[int, int, Step]] = []
        self.seq = itertools.count()
        self.order_keys = itertools.count(1)
        self.need_keys = itertools.count(1)
        self.redemption_keys = itertools.count(1)
        self.orders: dict[int, OrderInfo] = {}
        self.done_orders: list[tuple[int, int, PersonSpec, PersonSpec]] = []  # key, check-in, volunteer, recipient
        self.menus: list[MenuSpec] = []
        self.menu_of: dict[str, list[str]] = {}
        self.cert_from: dict[int, dict[str, int]] = {}  # person → certificate kind → first day it can be used
        self.insured: dict[int, list[tuple[str, int, int]]] = {}  # person → (policy number, starts, ends)
        self.needs: dict[int, tuple[int, int, int]] = {}  # key → (recipient, created at, ended at or +inf)
        self.outlet_goods: dict[str, list[str]] = {}  # outlet → goods keys
        self.census_at = when(-60, 10)
        self._active: dict[tuple[str, str], list[PersonSpec]] = {}

    # -- helpers

    def add(self, step: Step) -> None:
        self.drafts.append((step.at, next(self.seq), step))

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

    def ledger(
        self,
        at: int,
        action: OpAction,
        member: int,
        minutes: int,
        memo: str,
        *,
        bucket: str = "",
        payer: str = "",
        other: int | None = None,
    ) -> Do:
        """A ledger operation on `member`'s time: an adjustment (opening balances from paper, entered by their
        manager), a deposit for a service (paid by the recipient `other` or the pool), a withdrawal, a transfer
        to the relative `other`, or a donation to the pool."""
        person = self.people[member]
        manager = self.manager(person.org)
        who, key = Ref.member(member), Ref.idempotency_key()
        if action == "adjustment":
            return do(
                at,
                with_second_person,
                Ref.second_of(manager),
                ledger_actions.do_adjustment,
                Ref.maker(manager),
                member=who,
                minutes=minutes,
                bucket=bucket,
                reason=memo,
                idempotency_key=key,
            )
        if action == "deposit":
            return do(
                at,
                ledger_actions.do_deposit,
                Ref.login(manager),
                volunteer=who,
                minutes=minutes,
                payer=payer,
                payer_member=Ref.member(other),
                kind=TransactionKind.SERVICE_REDEMPTION if payer == "recipient" else TransactionKind.DEPOSIT,
                memo=memo,
                idempotency_key=key,
            )
        if action == "withdrawal":
            return do(
                at, ledger_actions.do_withdrawal, Ref.login(manager), member=who, minutes=minutes, memo=memo,
                idempotency_key=key,
            )  # fmt: skip
        # transfers and donations are the member's own acts: by their login if they have one
        return do(
            at,
            ledger_actions.do_transfer,
            Ref.login(person.login) if person.login else None,
            from_member=who,
            to_member=Ref.member(other),
            minutes=minutes,
            kind="relative" if action == "transfer" else "donation",
            memo=memo,
            idempotency_key=key,
        )

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

    def needs_of(self, person: PersonSpec) -> list[int]:
        return [k for k, (who, _c, _e) in self.needs.items() if who == person.index]

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

    # -- the catalogue's menus (制单)

    def catalogue(self) -> None:
        rng = self.rng
        home = [s.name for s in HOME_SERVICES]
        for spec in self.specs.values():
            if spec.kind != OrgKind.SUB_BRANCH:
                continue
            if spec.bank == BANK2:
                names = [n for n in home if n in BANK2_SERVICES]
            elif spec.name == "顺河社区":
                names = home
            else:
                others = [n for n in home if n not in CORE_MENU]
                extra = set(rng.sample(others, rng.randint(3, 6)))
                names = [n for n in home if n in CORE_MENU or n in extra]
            outlet = next((o.name for o in self.specs.values() if o.parent == spec.name), f"{spec.name}服务站")
            for name in names:
                times = MENU_TIMES_BY_ITEM.get(name) or rng.choice(MENU_TIMES)
                place = f"{outlet}，也可上门" if name in ("理发", "测量血压", "法律咨询", "心理咨询") else "上门服务"
                self.menus.append(MenuSpec(spec.name, name, times, place))
            self.menu_of[spec.name] = names

    # -- ledger history: opening balances, services, group activities, donations, transfers

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

    def service_for(self, volunteer: PersonSpec) -> Service:
        rng = self.rng
        offered = [SERVICE_BY_NAME[n] for n in self.menu_of.get(volunteer.org, CORE_MENU)]
        skilled = [s for s in offered if s.skill and s.skill in volunteer.skills and not s.certificate]
        if skilled and rng.random() < 0.6:
            return rng.choice(skilled)
        return rng.choice([s for s in offered if s.skill is None])

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

    # -- safety: insurance, certificates, training, incidents

    def policy_number(self, prefix: str) -> str:
        return f"{prefix}{self.rng.randrange(10**11, 10**12)}"

    def insure(
        self, at: int, members: list[PersonSpec], insurer: str, number: str, starts: int, ends: int, actor: str
    ) -> None:
        for start in range(0, len(members), 500):
            chunk = members[start : start + 500]
            insured = [Ref.member(m.index) for m in chunk]
            self.add(
                do(
                    at,
                    do_add_group_policy,
                    Ref.login(actor),
                    insured,
                    insurer=insurer,
                    policy_number=number,
                    starts_on=Ref.day(starts),
                    ends_on=Ref.day(ends),
                )
            )
        for m in members:
            self.insured.setdefault(m.index, []).append((number, starts, ends))

    def safety(self) -> None:
        rng = self.rng
        volunteers1 = [self.volunteer, self.relative, *self.active(BANK1, "volunteer")]
        villages = {"泥沟镇", "涧头集镇"}
        in_villages = [v for v in volunteers1 if self.branch_of(v.org) in villages]
        rest = [v for v in volunteers1 if v not in in_villages]
        singles = [v for v in rest[2:] if rng.random() < 0.04][:6]  # insured on their own, ending soon
        uninsured = [v for v in rest[2:] if v not in singles and rng.random() < 0.05]
        group = [v for v in rest if v not in singles and v not in uninsured]
        start = LAUNCH - 5
        self.insure(
            when(LAUNCH + 2, 10), group, INSURERS["group"], self.policy_number("PEAC"), start, start + 364, "ho_admin"
        )
        # the villages' policy was bought the year before and ends within a month: the expiring list shows it
        self.insure(
            when(LAUNCH + 2, 11), in_villages, INSURERS["village"], self.policy_number("PZAE"), -347, 17, "ho_admin"
        )
        for v in singles:
            ends = rng.randint(5, 26)
            number = self.policy_number("PDEA")
            self.add(
                do(
                    when(LAUNCH + 3, 9),
                    do_add_insurance_policy,
                    Ref.login(self.manager(v.org)),
                    Ref.member(v.index),
                    insurer=INSURERS["single"],
                    policy_number=number,
                    starts_on=Ref.day(ends - 364),
                    ends_on=Ref.day(ends),
                )
            )
            self.insured.setdefault(v.index, []).append((number, ends - 364, ends))
        volunteers2 = self.active(BANK2, "volunteer")
        if volunteers2:
            self.insure(
                when(LAUNCH + 4, 10),
                volunteers2,
                INSURERS["bank2"],
                self.policy_number("ANC"),
                LAUNCH - 3,
                LAUNCH + 361,
                "nc_admin",
            )
        self.insured_count = {BANK1: len(group) + len(in_villages) + len(singles), BANK2: len(volunteers2)}

        # certificates that come with an occupation; a few end within the month
        expiring = 0
        for v in [*volunteers1, *volunteers2]:
            if v.occupation not in CERTIFICATES:
                continue
            kind, issuer = CERTIFICATES[v.occupation]
            if v.bank == BANK2:
                issuer = BANK2_ISSUERS[kind]
            valid_from = -rng.randint(400, 3000)
            if expiring == 0 or (expiring < 3 and rng.random() < 0.3):
                valid_until, expiring = rng.randint(5, 27), expiring + 1
            else:
                valid_until = rng.randint(200, 1800)
            at = self.daytime_at(LAUNCH + 1, LAUNCH + 8)
            self.add(
                do(
                    at,
                    do_add_certificate,
                    Ref.login(self.manager(v.org)),
                    Ref.member(v.index),
                    kind=kind,
                    issuer=issuer,
                    valid_from=Ref.day(valid_from),
                    valid_until=Ref.day(valid_until),
                )
            )
            self.cert_from.setdefault(v.index, {})[kind] = day_of(at)

        # training and assessment (培训/考核): a pass may grant a certificate
        sessions = (
            ("first_aid", BANK1, ASSOCIATION, "急救技能培训（心肺复苏与 AED）", "first_aid", -75, "区人民医院急诊科 刘建华", "区养老服务中心三楼培训室", "心肺复苏、AED 使用、跌倒和噎食的现场处置", 24),
            ("nursing", BANK1, "运河街道", "居家护理员基础培训", "nursing", -50, "区卫生健康局 孙丽", "运河街道社区卫生服务中心", "翻身、换药、压疮预防和康复训练", 14),
            ("safety", BANK1, "泥沟镇", "志愿服务安全与防范培训", "safety", -30, "泥沟镇派出所 周强", "泥沟镇文化站", "入户服务的安全、防诈骗和意外处置", 14),
            ("general", BANK2, "驻春路社区", "“爱心时间银行”志愿者岗前培训", "general", -80, "市老干部局 何晓东", "驻春路社区党群服务中心", "时间银行规则、服务礼仪和记录方法", 16),
        )  # fmt: skip
        for key, bank, org, title, kind, held, trainer, place, topic, size in sessions:
            grants = kind if kind in ("first_aid", "nursing") else ""
            self.add(
                self.training(
                    when(held - 14, 10), key, org, title, kind, topic, place, trainer, held, grants, self.admin(bank)
                )
            )
            everyone = volunteers1 if bank == BANK1 else volunteers2
            pool = (
                everyone
                if org == ASSOCIATION
                else [p for p in everyone if self.branch_of(p.org) == self.branch_of(org)]
            )
            if not pool:
                continue
            attendees = rng.sample(pool, min(size, len(pool)))
            if key == "first_aid" and self.volunteer not in attendees:
                attendees[0] = self.volunteer
            rows: list[AttendanceInput] = []
            for m in unique_people(attendees):
                attended = m is self.volunteer or rng.random() < 0.88
                if not attended:
                    rows.append(AttendanceInput(Ref.member(m.index), False))
                elif not grants:
                    rows.append(AttendanceInput(Ref.member(m.index), True))
                elif m is self.volunteer or rng.random() < 0.82:
                    score = Decimal(f"{rng.randrange(140, 198) / 2:.1f}")
                    rows.append(AttendanceInput(Ref.member(m.index), True, True, score))
                    held_by = self.cert_from.setdefault(m.index, {})
                    held_by[grants] = min(held_by.get(grants, held + 1), held + 1)
                else:
                    rows.append(
                        AttendanceInput(Ref.member(m.index), True, False, Decimal(f"{rng.randrange(84, 120) / 2:.1f}"))
                    )
            training = Ref.kept(f"training:{key}")
            self.add(do(when(held + 1, 10), do_record_attendance, Ref.login(self.admin(bank)), training, rows))
        # one still to come: no attendance yet
        self.add(
            self.training(
                when(-5, 15),
                "upcoming",
                BANK1,
                "老年人心理关怀培训",
                "general",
                "倾听技巧、孤独和抑郁的早期识别",
                "区养老服务中心三楼培训室",
                "区心理健康协会 王敏",
                10,
                "",
                "ho_admin",
            )
        )

    def incidents(self) -> None:
        """One accident with an injury, decided, claimed and closed; one open report without injury."""
        rng = self.rng
        candidates = [
            (key, check_in, v, r)
            for key, check_in, v, r in self.done_orders
            if check_in < when(-30, 0) and self.insured_on(v, day_of(check_in))
        ]
        if candidates:
            key, check_in, v, r = rng.choice(candidates)
            number = self.insured_on(v, day_of(check_in))
            actor = self.manager(r.org)
            reported = daytime(check_in + DAY)
            self.add(
                self.incident(
                    reported, "injury", key, v, r, check_in + 40, "擦窗户时从凳子上滑下来，扭伤了右脚踝。",
                    "右脚踝扭伤，区人民医院拍片未见骨折，需休息两周。", actor,
                )
            )  # fmt: skip
            claim = f"LP{rng.randrange(10**9, 10**10)}"
            by, injury = Ref.login(actor), Ref.kept("incident:injury")
            follow = (
                do(daytime(reported + 2 * DAY), do_add_incident_follow_up, by, injury, "工作人员陪同就医，已垫付医药费 320 元"),
                do(daytime(reported + 4 * DAY), do_decide_responsibility, by, injury, responsibility="none", note="意外滑倒，双方均无过错"),
                do(daytime(reported + 5 * DAY), do_update_claim, by, injury, claim_status="filed", policy=Ref.policy(v.index, number), claim_number=claim, note="已向保险公司报案"),
                do(daytime(reported + 20 * DAY), do_update_claim, by, injury, claim_status="paid", policy=None, claim_number=None, note="保险公司已赔付医药费"),
                do(daytime(reported + 21 * DAY), do_close_incident, by, injury, "志愿者已康复"),
            )  # fmt: skip
            for act in follow:
                if act.at < 0:
                    self.add(act)
        recent = [(k, c, v, r) for k, c, v, r in self.done_orders if c > when(-14, 0)]
        if recent:
            _key, _check_in, v, r = rng.choice(recent)
            self.add(
                self.incident(
                    when(-4, 17), "gas", None, v, r, when(-4, 16),
                    "上门服务时发现燃气灶没有关，已协助关闭阀门、开窗通风并通知家属。", "", self.manager(r.org),
                )
            )  # fmt: skip
            by, gas = Ref.login(self.manager(r.org)), Ref.kept("incident:gas")
            self.add(do(when(-3, 10), do_add_incident_follow_up, by, gas, "已联系燃气公司上门安装燃气报警器"))

    def incident(
        self,
        at: int,
        key: str,
        order: int | None,
        volunteer: PersonSpec,
        recipient: PersonSpec,
        occurred: int,
        what: str,
        injury: str,
        actor: str,
    ) -> Do:
        """An incident at the recipient's home, reported by `actor`; `injury` "" when nobody was hurt. Kept for its
        follow-ups as `incident:<key>`."""
        return do(
            at,
            do_report_incident,
            Ref.login(actor),
            order=Ref.order(order),
            volunteer=Ref.member(volunteer.index),
            recipient=Ref.member(recipient.index),
            occurred_at=Ref.moment(occurred),
            what_happened=what,
            place=f"{recipient.name}家中",
            injury=bool(injury),
            injury_description=injury,
            keep=f"incident:{key}",
        )

    def training(
        self,
        at: int,
        key: str,
        org: str,
        title: str,
        kind: str,
        topic: str,
        place: str,
        trainer: str,
        held: int,
        grants: str,
        actor: str,
    ) -> Do:
        """A training session `org` holds on day `held`, kept for its attendance as `training:<key>`."""
        return do(
            at,
            do_create_training,
            Ref.login(actor),
            org=Ref.org(org),
            title=title,
            held_on=Ref.day(held),
            kind=kind,
            topic=topic,
            place=place,
            trainer=trainer,
            grants_certificate=grants or None,
            keep=f"training:{key}",
        )

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
