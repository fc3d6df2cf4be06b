"""The needs' part of the demo timeline: the needs register (需求登记) with follow-ups, met and closed needs, the
census import (人口普查导入), and the needs the orders meet."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from timebank.catalogue.demo import BANK2_SERVICES
from timebank.lib.demo_plan import DAY, LAUNCH, Do, Ref, daytime, do, when
from timebank.members.demo import CATEGORY_WORDS, PersonSpec, weighted
from timebank.members.demo_timeline import TimelineBase
from timebank.needs.actions import do_add_follow_up, do_close_need, do_create_need, do_link_order
from timebank.needs.demo import CLOSE_REASONS, FOLLOW_UPS, MET_NOTES, NEED_ITEMS, NEED_NOTES, import_census
from timebank.orgs.demo import BANK1, BANK2


class NeedsTimeline(TimelineBase):
    """Needs and the census import; draws `open_need`, `needs_of` and `link_need` for `OrderStories`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.need_keys = itertools.count(1)
        self.needs: dict[int, tuple[int, int, int]] = {}  # key → (recipient, created at, ended at or +inf)
        self.census_at = when(-60, 10)

    def level_for(self, categories: Sequence[str]) -> str:
        cats = set(categories)
        if cats & {"disabled", "severe_disability", "extreme_poverty"}:
            return "essential"
        if cats & {"partly_disabled", "living_alone", "advanced_age"}:
            return "special"
        return "general"

    def items_for(self, person: PersonSpec) -> tuple[str, ...]:
        names = [n for c in person.recipient_categories for n in NEED_ITEMS.get(c, ())]
        if person.bank == BANK2:
            names = [n for n in names if n in BANK2_SERVICES]
        return tuple(sorted(set(self.rng.sample(names, min(len(names), self.rng.randint(1, 3))))))

    def need(
        self, person: PersonSpec, created: int, actor: str, *, found_by: str | None = None, ending: bool = True
    ) -> None:
        rng = self.rng
        key = next(self.need_keys)
        level = self.level_for(person.recipient_categories)
        found_by = found_by or weighted(rng, {"home_visit": 40, "phone_call": 30, "video_call": 10, "survey": 20})
        self.add(
            do(
                created,
                do_create_need,
                Ref.login(actor),
                recipient=Ref.member(person.index),
                level=level,
                found_by=found_by,
                item_ids=Ref.item_ids(person.index, self.items_for(person)),
                notes=rng.choice(NEED_NOTES[level]),
                keep=f"need:{key}",
            )
        )
        roll = rng.random() if ending else 1.0
        end = 10**9
        if roll < 0.3:
            end = daytime(created + rng.randint(10, 40) * DAY)
            if end < 0:
                self.add(
                    do(end, do_add_follow_up, Ref.login(actor), Ref.need(key), note=rng.choice(MET_NOTES), status="met")
                )
            else:
                end = 10**9
        elif roll < 0.4:
            end = daytime(created + rng.randint(5, 30) * DAY)
            if end < 0:
                self.add(do(end, do_close_need, Ref.login(actor), Ref.need(key), reason=rng.choice(CLOSE_REASONS)))
            else:
                end = 10**9
        for _ in range(rng.randint(0, 2)):
            at = daytime(created + rng.randint(2, 20) * DAY)
            if at < min(end - 60, 0):
                self.add(do(at, do_add_follow_up, Ref.login(actor), Ref.need(key), note=rng.choice(FOLLOW_UPS)))
        self.needs[key] = (person.index, created, end)

    def needs_register(self, bank: str, share: float, cap: int) -> None:
        rng = self.rng
        recipients = self.active(bank, "recipient")
        for person in rng.sample(recipients, min(cap, round(len(recipients) * share))):
            self.need(person, self.daytime_at(LAUNCH + 5, -3), self.manager(person.org))
        if bank == BANK1:
            self.need(self.recipient, when(-40, 15), "staff", found_by="home_visit", ending=False)

    def census_import(self) -> None:
        rng = self.rng
        people = [p for p in self.people if p.census]
        if not people:
            return
        rows: list[tuple[str, ...]] = []
        needs = ("需要助餐服务，子女在外地", "行动不便，希望有人定期上门打扫", "独居，希望有人常来看看", "")
        for p in people:
            categories = "、".join(CATEGORY_WORDS[c] for c in p.recipient_categories)
            rows.append(
                (
                    p.name,
                    p.id_number,
                    "男" if p.gender == "male" else "女",
                    p.birth_date.isoformat(),
                    p.phone,
                    p.address,
                    p.org,
                    categories,
                    rng.choice(needs),
                )
            )
        known = self.local("recipient", "顺河社区", 1, self.recipient)[0]
        rows.append(
            (
                known.name,
                known.id_number,
                "男" if known.gender == "male" else "女",
                known.birth_date.isoformat(),
                known.phone,
                known.address,
                known.org,
                "空巢",
                "",
            )
        )
        typo = people[0].id_number[:17] + ("0" if people[0].id_number[17] != "0" else "1")
        rows.append(("孙桂兰", typo, "女", "", "", "", "华兴社区", "独居、高龄", "腿脚不便"))
        self.add(
            do(
                self.census_at,
                import_census,
                Ref.login("branch_admin"),
                Ref.org("运河街道"),
                "运河街道2020人口普查老年人名单.csv",
                tuple(rows),
                keep=tuple(Ref.member(p.index) for p in people),  # the first rows are written as these people
            )
        )

    def needs_of(self, person: PersonSpec) -> list[int]:
        return [k for k, (who, _c, _e) in self.needs.items() if who == person.index]

    def open_need(self, recipient: PersonSpec, at: int) -> int | None:
        for key, (who, created, ended) in self.needs.items():
            if who == recipient.index and created < at < ended - 60:
                return key
        return None

    def link_need(self, at: int, actor: str, need: int, order: int) -> Do:
        return do(at, do_link_order, Ref.login(actor), Ref.need(need), Ref.order(order))
