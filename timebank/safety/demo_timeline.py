"""The safety part of the demo timeline: insurance (团体意外险), certificates, training and assessment
(培训/考核), and incidents with their follow-ups, responsibility and claim."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from timebank.lib.demo_plan import DAY, LAUNCH, Do, Ref, day_of, daytime, do, when
from timebank.members.demo import PersonSpec, unique_people
from timebank.orders.demo_timeline import OrderStories
from timebank.orgs.demo import ASSOCIATION, BANK1, BANK2
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


class SafetyTimeline(OrderStories):
    """Built on the orders: an incident happens during a service that was done."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.insured_count: dict[str, int] = {}

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
