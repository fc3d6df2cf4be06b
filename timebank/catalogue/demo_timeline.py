"""The catalogue's part of the demo timeline: each community's menu (制单), and what a volunteer offers."""

from __future__ import annotations

from typing import Any

from timebank.catalogue.demo import (
    BANK2_SERVICES,
    CORE_MENU,
    HOME_SERVICES,
    MENU_TIMES,
    MENU_TIMES_BY_ITEM,
    SERVICE_BY_NAME,
    MenuSpec,
    Service,
)
from timebank.members.demo import PersonSpec
from timebank.members.demo_timeline import TimelineBase
from timebank.orgs.demo import BANK2
from timebank.orgs.models import OrgKind

# The head office's default multipliers (the generator creates the banks with default rules).
MULTIPLIERS = {"ordinary": 1, "technical": 2, "professional": 3}
TIER_NAMES = {"ordinary": "普通服务", "technical": "技术服务", "professional": "专业服务"}


class CatalogueTimeline(TimelineBase):
    """The menus each sub-branch offers (drawn first: the orders pick from them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.menus: list[MenuSpec] = []
        self.menu_of: dict[str, list[str]] = {}

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

    def service_for(self, volunteer: PersonSpec) -> Service:
        rng = self.rng
        offered = [SERVICE_BY_NAME[n] for n in self.menu_of.get(volunteer.org, CORE_MENU)]
        skilled = [s for s in offered if s.skill and s.skill in volunteer.skills and not s.certificate]
        if skilled and rng.random() < 0.6:
            return rng.choice(skilled)
        return rng.choice([s for s in offered if s.skill is None])
