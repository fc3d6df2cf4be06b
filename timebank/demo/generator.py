"""A seeded generator of demo data for the two banks of the seed documents.

Bank 1 is 台儿庄区时间银行 (a district: head office → six towns/streets → villages and communities → service
points). Bank 2 is 南充市爱心时间银行 (a city: head office → 顺庆区 → 和平路街道 → 驻春路社区), where 103
retired cadres brought in 630 residents; the generator mimics that with `referred_by` links.

It works in two steps:

1. `build_plan` draws everything from `random.Random(seed)` into plain data (no database), so the same seed
   gives the same plan. Birth dates are drawn against the current calendar year, so ages stay realistic and
   the plan is identical all year.
2. `generate` applies the plan through the action functions only (orgs, staff, members, relatives, ledger),
   inside one database transaction: either the whole demo is there, or nothing is.

Only the demo logins get passwords (hashing is slow); other members have no login.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from django.db import transaction
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

from timebank.ledger.actions import do_adjustment, do_deposit, do_transfer, do_withdrawal
from timebank.ledger.models import Transaction, TransactionKind
from timebank.lib import idnumber
from timebank.members.actions import MemberInput, do_approve_member, do_link_relative, do_register_member
from timebank.members.models import Member
from timebank.orgs.actions import do_create_org, do_create_staff
from timebank.orgs.models import Org, OrgKind, Role, User

DEMO_PASSWORD = "demo12345"  # noqa: S105 - a published demo password, never used outside the demo
OPENING_REASON = "纸质台账迁移"
MIN_MEMBERS = 12
# The head office's default multipliers (the generator creates the banks with default rules).
MULTIPLIERS = {"ordinary": 1, "technical": 2, "professional": 3}
TIER_NAMES = {"ordinary": "普通服务", "technical": "技术服务", "professional": "专业服务"}

BANK1 = "台儿庄区时间银行"
BANK2 = "南充市爱心时间银行"


class DemoDataExists(Exception):
    """The demo logins are already in this database."""


# --------------------------------------------------------------------------------------------------------------
# Logins


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    role: str  # a staff role, "superuser", or a member role
    role_zh: str
    role_en: str
    org: str
    name: str


SUPERUSER_LOGIN = DemoLogin("root", DEMO_PASSWORD, "superuser", "超级管理员", "superuser", "全部 (all banks)", "root")

STAFF_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("ho_admin", DEMO_PASSWORD, Role.HEAD_OFFICE_ADMIN, "总行管理员", "head office admin", BANK1, "张红梅"),
    DemoLogin("branch_admin", DEMO_PASSWORD, Role.BRANCH_ADMIN, "分行管理员", "branch admin", "运河街道", "王志刚"),
    DemoLogin("staff", DEMO_PASSWORD, Role.STAFF, "支行工作人员", "sub-branch staff", "顺河社区", "李娜"),
    DemoLogin("operator", DEMO_PASSWORD, Role.OPERATOR, "12349 热线坐席", "hotline operator", BANK1, "赵静"),
    DemoLogin("assessor", DEMO_PASSWORD, Role.ASSESSOR, "第三方评估", "third-party assessor", BANK1, "陈立新"),
    DemoLogin("nc_admin", DEMO_PASSWORD, Role.HEAD_OFFICE_ADMIN, "总行管理员", "head office admin", BANK2, "何文华"),
)

MEMBER_LOGINS: tuple[DemoLogin, ...] = (
    DemoLogin("volunteer", DEMO_PASSWORD, "volunteer", "志愿者", "volunteer", "顺河社区", "王秀英"),
    DemoLogin("recipient", DEMO_PASSWORD, "recipient", "服务对象", "care recipient", "顺河社区", "李保山"),
    DemoLogin("relative", DEMO_PASSWORD, "relative", "亲属", "relative of recipient", "古城社区", "李军"),
)

DEMO_LOGINS: tuple[DemoLogin, ...] = (SUPERUSER_LOGIN, *STAFF_LOGINS, *MEMBER_LOGINS)


# --------------------------------------------------------------------------------------------------------------
# The org trees

Place = Literal["office", "community", "village", "association"]


@dataclass(frozen=True)
class OrgSpec:
    name: str  # unique within the demo, so it doubles as the key
    kind: str
    parent: str | None
    bank: str
    lat: float = 0.0
    lon: float = 0.0
    place: Place = "office"
    address: str = ""  # prefix of the members' addresses
    weight: int = 0  # share of the members homed here (sub-branches only)
    region: str = ""  # resident ID region code of most people born here


TEZ = "山东省枣庄市台儿庄区"
# town/street → (centre, [(village or community, place, outlet name or None)])
TEZ_BRANCHES: tuple[tuple[str, tuple[float, float], tuple[tuple[str, Place, str | None], ...]], ...] = (
    (
        "运河街道",
        (34.5620, 117.7340),
        (
            ("顺河社区", "community", "顺河社区服务站"),
            ("古城社区", "community", "古城社区服务站"),
            ("华兴社区", "community", None),
        ),
    ),
    ("邳庄镇", (34.6280, 117.6770), (("邳庄村", "village", None), ("官庄村", "village", None))),
    ("张山子镇", (34.6050, 117.5580), (("张山子村", "village", "张山子村助老服务站"), ("侯孟村", "village", None))),
    (
        "泥沟镇",
        (34.6480, 117.8020),
        (("泥沟村", "village", "泥沟村助老服务站"), ("东巷村", "village", None), ("胡庄村", "village", None)),
    ),
    ("涧头集镇", (34.5230, 117.6300), (("涧头村", "village", "涧头村助老服务站"), ("后楼村", "village", None))),
    ("马兰屯镇", (34.4960, 117.8030), (("马兰屯村", "village", None),)),
)
ASSOCIATION = "台儿庄区助老服务志愿者协会"
TEZ_STREETS = ("华兴路", "文化路", "长安路", "箭道街", "兴中路", "金光路")


def org_specs() -> list[OrgSpec]:
    """Both trees, parents before children."""
    out = [OrgSpec(BANK1, OrgKind.HEAD_OFFICE, None, BANK1, 34.5620, 117.7340)]
    out.append(
        OrgSpec(
            ASSOCIATION,
            OrgKind.SUB_BRANCH,
            BANK1,
            BANK1,
            34.5605,
            117.7365,
            "association",
            f"{TEZ}运河街道",
            2,
            "370405",
        )
    )
    for branch, (lat, lon), subs in TEZ_BRANCHES:
        out.append(OrgSpec(branch, OrgKind.BRANCH, BANK1, BANK1, lat, lon))
        for i, (sub, place, outlet) in enumerate(subs):
            s_lat, s_lon = lat + 0.006 * (i - 1), lon + 0.005 * ((i * 7) % 3 - 1)
            weight = 4 if sub == "顺河社区" else 3 if place == "community" else 2
            out.append(
                OrgSpec(
                    sub, OrgKind.SUB_BRANCH, branch, BANK1, s_lat, s_lon, place, f"{TEZ}{branch}{sub}", weight, "370405"
                )
            )
            if outlet:
                out.append(OrgSpec(outlet, OrgKind.OUTLET, sub, BANK1, s_lat + 0.001, s_lon + 0.001))
    nc = "四川省南充市顺庆区和平路街道驻春路社区"
    out += [
        OrgSpec(BANK2, OrgKind.HEAD_OFFICE, None, BANK2, 30.7950, 106.0830),
        OrgSpec("顺庆区", OrgKind.BRANCH, BANK2, BANK2, 30.7960, 106.0820),
        OrgSpec("和平路街道", OrgKind.BRANCH, "顺庆区", BANK2, 30.8010, 106.0790),
        OrgSpec("驻春路社区", OrgKind.SUB_BRANCH, "和平路街道", BANK2, 30.8030, 106.0760, "community", nc, 1, "511302"),
        OrgSpec("驻春路社区服务站", OrgKind.OUTLET, "驻春路社区", BANK2, 30.8035, 106.0765),
    ]
    return out


def manager_of(org: str, specs: dict[str, OrgSpec]) -> str:
    """The demo staff login that manages members homed at `org` (the closest one up the tree)."""
    chain = []
    key: str | None = org
    while key is not None:
        chain.append(key)
        key = specs[key].parent
    if "顺河社区" in chain:
        return "staff"
    if "运河街道" in chain:
        return "branch_admin"
    return "ho_admin" if specs[org].bank == BANK1 else "nc_admin"


# --------------------------------------------------------------------------------------------------------------
# People

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
    "余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
)
SURNAME_WEIGHTS = [1 / (rank + 3) for rank in range(len(SURNAMES))]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIVEN_OLD = {
    "male": _words(
        "建国 建华 国庆 国强 志强 志刚 德明 德胜 永福 永祥 玉山 长林 长顺 学文 宝华 庆丰 保国 文斌 广才 振海 春生 金山 "
        "明亮 树林 福林 家祥 守信 立新 连生 振华 光明 兆林 洪亮 继光 传德 克勤 保山 西良 庆云 登科"
    ),
    "female": _words(
        "秀英 桂英 秀兰 玉兰 桂兰 凤英 淑珍 玉梅 秀珍 兰英 翠花 春梅 素芬 丽华 美华 凤兰 玉珍 桂芳 淑英 秀梅 金凤 玉芬 "
        "桂香 秀芳 淑兰 月英 素珍 玉凤 爱华 红英 冬梅 彩霞 秋菊 荷花 淑华 慧敏 巧云 凤琴"
    ),
}
GIVEN_YOUNG = {
    "male": _words(
        "伟 磊 军 勇 涛 斌 超 强 鹏 浩 建军 海涛 晓明 志勇 建伟 俊杰 永刚 海波 红军 卫东 小龙 文博 宇 凯 杰"
    ),
    "female": _words("静 丽 敏 燕 娟 艳 芳 霞 红 丽娜 海燕 晓燕 丽萍 春燕 雪梅 红梅 小红 婷婷 晓丽 琳 颖 倩 莉"),
}

# occupation → skills it brings
OCCUPATION_SKILLS: dict[str, tuple[str, ...]] = {
    "退休教师": ("义务家教", "读书读报", "书法"),
    "退休干部": ("政策宣讲", "调解纠纷", "读书读报"),
    "退休工人": ("水电维修", "家庭保洁"),
    "退休工程师": ("家电维修", "电路检修"),
    "退休医生": ("测量血压", "健康咨询", "医疗护理"),
    "退休护士": ("医疗护理", "测量血压"),
    "教师": ("义务家教",),
    "公司职员": ("代买代办",),
    "工人": ("水电维修",),
    "医生": ("测量血压", "健康咨询", "医疗护理"),
    "护士": ("医疗护理", "测量血压", "康复护理"),
    "电工": ("家电维修", "电路检修"),
    "水暖工": ("管道疏通", "水电维修"),
    "律师": ("法律咨询",),
    "心理咨询师": ("心理咨询",),
    "厨师": ("做饭送餐",),
    "理发师": ("理发",),
    "家政服务员": ("家庭保洁", "照料起居"),
    "农民": ("种菜", "家庭保洁"),
    "退役军人": ("治安巡逻", "应急救援"),
    "社区工作者": ("代买代办", "政策宣讲"),
    "个体户": ("代买代办",),
}
# volunteers of 55 and over: mostly retired
VOLUNTEER_OCCUPATIONS = {
    "community": {
        "退休教师": 10, "退休干部": 10, "退休工人": 16, "退休工程师": 3, "退休医生": 3, "退休护士": 3,
        "电工": 3, "水暖工": 3, "心理咨询师": 1, "厨师": 2, "理发师": 2, "家政服务员": 3,
        "退役军人": 5, "社区工作者": 2, "个体户": 4,
    },
    "village": {
        "农民": 40, "退休教师": 5, "退休干部": 3, "退役军人": 4, "电工": 3, "水暖工": 2, "退休医生": 2,
        "理发师": 2, "厨师": 2, "个体户": 4, "家政服务员": 2,
    },
}  # fmt: skip
# younger volunteers and relatives: still working
WORKING_OCCUPATIONS = {
    "community": {
        "医生": 3, "护士": 3, "电工": 4, "水暖工": 3, "律师": 1, "心理咨询师": 1, "厨师": 2, "理发师": 2,
        "家政服务员": 3, "社区工作者": 5, "个体户": 5, "教师": 4, "公司职员": 6, "工人": 5,
    },
    "village": {
        "农民": 20, "电工": 3, "水暖工": 2, "个体户": 4, "家政服务员": 2, "厨师": 2, "理发师": 2, "工人": 6,
        "教师": 2, "医生": 1,
    },
}  # fmt: skip
RECIPIENT_OCCUPATIONS = {
    "community": {"退休工人": 10, "退休教师": 3, "退休干部": 2, "个体户": 2, "": 4},
    "village": {"农民": 12, "退休工人": 1, "": 2},
}
# The "five elders" (老干部、老战士、老专家、老教师、老模范): the people who bring others in.
FIVE_ELDERS = frozenset({"退休干部", "退役军人", "退休工程师", "退休教师", "退休医生"})
GENERIC_SKILLS = ("聊天陪伴", "陪同就医", "代买代办", "家庭保洁", "广场舞", "太极拳", "剪纸")
LOCAL_SKILLS = {BANK1: ("柳琴戏",), BANK2: ("川剧",)}
SKILL_CATEGORIES = {
    "义务家教": "tutoring",
    "读书读报": "community_education",
    "书法": "culture_sports",
    "政策宣讲": "community_education",
    "调解纠纷": "public_safety",
    "测量血压": "health_care",
    "健康咨询": "health_talks",
    "医疗护理": "health_care",
    "康复护理": "health_care",
    "法律咨询": "legal_aid",
    "治安巡逻": "public_safety",
    "应急救援": "public_safety",
    "广场舞": "culture_sports",
    "太极拳": "culture_sports",
    "剪纸": "culture_sports",
    "柳琴戏": "culture_sports",
    "川剧": "culture_sports",
    "种菜": "environment",
    "代买代办": "hardship_help",
}
RELATIONS = {"子女": 60, "儿媳": 12, "女婿": 8, "孙子女": 12, "侄子女": 8}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SLOTS = ("morning", "afternoon", "evening")
ID_REGIONS = {
    BANK1: {"370405": 85, "370404": 5, "370402": 4, "370481": 3, "320382": 3},
    BANK2: {"511302": 75, "511303": 8, "511304": 7, "511321": 5, "511381": 5},
}
# common mobile prefixes (1[3-9]x)
MOBILE_PREFIXES = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 170 173 175 176 177 "
    "180 181 182 183 184 185 186 187 188 189 191 198 199"
)
LANDLINE = {BANK1: "0632-66", BANK2: "0817-22"}


@dataclass
class PersonSpec:
    index: int
    bank: str
    org: str
    name: str
    gender: str
    birth_date: dt.date
    id_number: str
    phone: str
    address: str
    lat: Decimal
    lon: Decimal
    roles: list[str]
    recipient_categories: list[str] = field(default_factory=list)
    skills: list[str] = field(default_factory=list)
    occupation: str = ""
    willing_services: list[str] = field(default_factory=list)
    availability: dict[str, list[str]] = field(default_factory=dict)
    referrer: int | None = None
    approved: bool = True  # False: self-registered, pending
    approve_later: bool = False  # pending, then approved by staff
    login: str | None = None

    def member_input(self, referred_by_id: int | None) -> MemberInput:
        return MemberInput(
            name=self.name,
            phone=self.phone,
            birth_date=self.birth_date,
            gender=self.gender,
            id_number=self.id_number,
            address=self.address,
            latitude=self.lat,
            longitude=self.lon,
            roles=list(self.roles),
            recipient_categories=list(self.recipient_categories),
            skills=list(self.skills),
            occupation=self.occupation,
            willing_services=list(self.willing_services),
            availability={d: list(s) for d, s in self.availability.items()},
            referred_by_id=referred_by_id,
        )


@dataclass(frozen=True)
class LinkSpec:
    member: int  # the care recipient
    relative: int
    relation: str  # what the relative is to the member


# --------------------------------------------------------------------------------------------------------------
# Services and ledger history


@dataclass(frozen=True)
class Service:
    name: str
    tier: str
    category: str
    skill: str | None = None  # needed to offer it


HOME_SERVICES = (
    Service("家庭保洁", "ordinary", "mutual_care"),
    Service("物品代购", "ordinary", "mutual_care"),
    Service("餐饮配送", "ordinary", "mutual_care"),
    Service("聊天陪伴", "ordinary", "mutual_care"),
    Service("日间照料", "ordinary", "mutual_care"),
    Service("陪同就医", "ordinary", "health_care"),
    Service("读书读报", "ordinary", "community_education", "读书读报"),
    Service("理发", "ordinary", "mutual_care", "理发"),
    Service("测量血压", "ordinary", "health_care", "测量血压"),
    Service("管道疏通", "technical", "mutual_care", "管道疏通"),
    Service("家电维修", "technical", "mutual_care", "家电维修"),
    Service("居住设施维护", "technical", "mutual_care", "水电维修"),
    Service("电路检修", "technical", "mutual_care", "电路检修"),
    Service("医疗护理", "professional", "health_care", "医疗护理"),
    Service("心理咨询", "professional", "mutual_care", "心理咨询"),
    Service("法律咨询", "professional", "legal_aid", "法律咨询"),
)
GROUP_ACTIVITIES = (
    Service("健康讲座", "ordinary", "health_talks"),
    Service("社区环境清洁日", "ordinary", "environment"),
    Service("治安巡逻", "ordinary", "public_safety"),
    Service("文艺演出", "ordinary", "culture_sports"),
    Service("困难家庭走访", "ordinary", "hardship_help"),
    Service("义务家教", "ordinary", "tutoring", "义务家教"),
    Service("政策宣讲", "ordinary", "community_education", "政策宣讲"),
)
SERVICE_BY_NAME = {s.name: s for s in (*HOME_SERVICES, *GROUP_ACTIVITIES)}
POOR = frozenset({"extreme_poverty", "subsistence_allowance", "registered_poor", "severe_disability"})

OpAction = Literal["adjustment", "deposit", "service_record", "transfer", "donation", "withdrawal"]


@dataclass(frozen=True)
class LedgerOp:
    action: OpAction
    member: int  # the volunteer, the payer of a transfer, or the member adjusted / withdrawing
    minutes: int
    memo: str
    bucket: str = ""
    payer: str = ""  # deposits: subsidy | recipient | pool
    other: int | None = None  # the recipient paying, or the receiver of a transfer


@dataclass
class Plan:
    seed: int
    orgs: list[OrgSpec]
    people: list[PersonSpec]
    links: list[LinkSpec]
    ops: list[LedgerOp]


# --------------------------------------------------------------------------------------------------------------
# Building the plan (pure: no database)


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


class _Planner:
    def __init__(self, seed: int, year: int) -> None:
        self.rng = random.Random(seed)
        self.year = year
        self.orgs = org_specs()
        self.by_name = {o.name: o for o in self.orgs}
        self.people: list[PersonSpec] = []
        self.links: list[LinkSpec] = []
        self.ops: list[LedgerOp] = []
        self.id_numbers: set[str] = set()
        self.phones: set[str] = set()
        # simulated balances: earned, goods, reserve per person; the donation pool per bank
        self.balance: dict[int, list[int]] = {}
        self.pool: dict[str, int] = {BANK1: 0, BANK2: 0}

    # -- drawing single attributes

    def home_orgs(self, bank: str) -> list[OrgSpec]:
        return [o for o in self.orgs if o.bank == bank and o.weight > 0]

    def pick_org(self, bank: str) -> OrgSpec:
        homes = self.home_orgs(bank)
        return self.rng.choices(homes, weights=[o.weight for o in homes])[0]

    def born(self, age: int) -> dt.date:
        return dt.date(self.year - age, self.rng.randint(1, 12), self.rng.randint(1, 28))

    def name(self, gender: str, born: dt.date, surname: str | None = None) -> str:
        rng = self.rng
        surname = surname or rng.choices(SURNAMES, weights=SURNAME_WEIGHTS)[0]
        given = GIVEN_OLD if born.year < 1965 else GIVEN_YOUNG
        return surname + rng.choice(given[gender])

    def id_number(self, bank: str, born: dt.date, gender: str) -> str:
        region = _weighted(self.rng, ID_REGIONS[bank])
        while True:
            number = idnumber.make(region, born, self.rng, male=gender == "male")
            if number not in self.id_numbers:
                self.id_numbers.add(number)
                return number

    def phone(self, bank: str, *, landline_share: float = 0.0, none_share: float = 0.0) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < none_share:
            return ""
        while True:
            if roll < none_share + landline_share:
                number = f"{LANDLINE[bank]}{rng.randrange(0, 100000):05d}"
            else:
                number = f"{rng.choice(MOBILE_PREFIXES)}{rng.randrange(0, 10**8):08d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def address(self, org: OrgSpec) -> str:
        rng = self.rng
        if org.place == "village":
            return f"{org.address}{rng.randint(1, 320)}号"
        if org.place == "association":
            return f"{org.address}{rng.choice(TEZ_STREETS)}{rng.randint(1, 200)}号"
        if org.bank == BANK2:
            return f"{org.address}驻春路{rng.randint(1, 160)}号{rng.randint(1, 12)}栋{rng.randint(1, 3)}单元{rng.randint(1, 7)}0{rng.randint(1, 4)}室"
        return f"{org.address}{rng.randint(1, 30)}号楼{rng.randint(1, 4)}单元{rng.randint(1, 6)}0{rng.randint(1, 4)}室"

    def coords(self, org: OrgSpec) -> tuple[Decimal, Decimal]:
        rng = self.rng
        spread = 0.008 if org.place == "village" else 0.004
        lat = org.lat + rng.uniform(-spread, spread)
        lon = org.lon + rng.uniform(-spread, spread)
        return Decimal(f"{lat:.6f}"), Decimal(f"{lon:.6f}")

    def availability(self) -> dict[str, list[str]]:
        rng = self.rng
        days = sorted(rng.sample(DAYS, rng.randint(2, 6)), key=DAYS.index)
        return {d: sorted(rng.sample(SLOTS, rng.choice((1, 1, 2, 2, 3))), key=SLOTS.index) for d in days}

    def skills(self, bank: str, occupation: str) -> tuple[list[str], list[str]]:
        rng = self.rng
        skills = set(OCCUPATION_SKILLS.get(occupation, ()))
        skills.update(rng.sample(GENERIC_SKILLS, rng.randint(1, 3)))
        if rng.random() < 0.08:
            skills.update(LOCAL_SKILLS[bank])
        willing = {"mutual_care"} if rng.random() < 0.9 else set()
        willing.update(SKILL_CATEGORIES[s] for s in skills if s in SKILL_CATEGORIES)
        if not willing:
            willing.add("community_education")
        return sorted(skills), sorted(willing)

    def categories(self, age: int, place: Place) -> list[str]:
        rng = self.rng
        cats: set[str] = set()
        if age >= 80 or (age >= 70 and rng.random() < 0.5):
            cats.add("advanced_age")
        for code, share in (
            ("empty_nest", 0.4),
            ("living_alone", 0.25),
            ("left_behind", 0.3 if place == "village" else 0.05),
            ("subsistence_allowance", 0.15),
            ("extreme_poverty", 0.05),
            ("registered_poor", 0.1 if place == "village" else 0.0),
            ("severe_disability", 0.04),
        ):
            if rng.random() < share:
                cats.add(code)
        roll = rng.random()
        if roll < 0.08:
            cats.add("disabled")
        elif roll < 0.25:
            cats.add("partly_disabled")
        if not cats:
            cats.add("empty_nest")
        return sorted(cats)

    # -- people

    def add(self, person: PersonSpec) -> PersonSpec:
        self.people.append(person)
        self.balance[person.index] = [0, 0, 0]
        return person

    def person(
        self,
        bank: str,
        kind: str,
        *,
        org: OrgSpec | None = None,
        age: int | None = None,
        gender: str | None = None,
        surname: str | None = None,
        occupation: str | None = None,
    ) -> PersonSpec:
        """kind: volunteer | recipient | both | relative | relative_volunteer | cadre."""
        rng = self.rng
        org = org or self.pick_org(bank)
        place: Place = "village" if org.place == "village" else "community"
        gender = gender or rng.choice(("male", "female"))
        if age is None:
            if kind == "recipient":
                age = int(rng.triangular(70, 96, 80))
            elif kind == "both":
                age = rng.randint(66, 75)
            elif kind == "cadre":
                age = rng.randint(58, 78)
            else:
                roll = rng.random()
                age = rng.randint(55, 70) if roll < 0.8 else rng.randint(35, 54) if roll < 0.92 else rng.randint(71, 75)
        born = self.born(age)
        volunteer = kind in ("volunteer", "both", "relative_volunteer", "cadre")
        recipient = kind in ("recipient", "both")
        if occupation is None:
            if kind == "cadre":
                occupation = "退休干部"
            elif recipient:
                occupation = _weighted(rng, RECIPIENT_OCCUPATIONS[place])
            elif age < 55:
                occupation = _weighted(rng, WORKING_OCCUPATIONS[place])
            elif volunteer:
                occupation = _weighted(rng, VOLUNTEER_OCCUPATIONS[place])
            else:
                occupation = _weighted(rng, RECIPIENT_OCCUPATIONS[place])
        person = PersonSpec(
            index=len(self.people),
            bank=bank,
            org=org.name,
            name=self.name(gender, born, surname),
            gender=gender,
            birth_date=born,
            id_number=self.id_number(bank, born, gender),
            phone=self.phone(bank, landline_share=0.2, none_share=0.1) if kind == "recipient" else self.phone(bank),
            address=self.address(org),
            lat=Decimal(0),
            lon=Decimal(0),
            roles=[r for r, on in (("volunteer", volunteer), ("recipient", recipient)) if on],
            occupation=occupation,
        )
        person.lat, person.lon = self.coords(org)
        if volunteer:
            person.skills, person.willing_services = self.skills(bank, occupation)
            person.availability = self.availability()
        if recipient:
            person.recipient_categories = self.categories(age, place)
        return self.add(person)

    def personas(self) -> tuple[PersonSpec, PersonSpec, PersonSpec]:
        shunhe, gucheng = self.by_name["顺河社区"], self.by_name["古城社区"]
        volunteer = self.person(BANK1, "volunteer", org=shunhe, age=64, gender="female", occupation="退休教师")
        volunteer.name, volunteer.login = "王秀英", "volunteer"
        volunteer.skills = ["义务家教", "书法", "聊天陪伴", "读书读报", "陪同就医"]
        volunteer.willing_services = ["community_education", "mutual_care", "tutoring"]
        volunteer.availability = {"mon": ["morning"], "wed": ["morning", "afternoon"], "fri": ["afternoon"]}
        recipient = self.person(BANK1, "recipient", org=shunhe, age=85, gender="male", occupation="退休工人")
        recipient.name, recipient.login = "李保山", "recipient"
        recipient.phone = self.phone(BANK1)  # the app needs a mobile; his son set it up
        recipient.recipient_categories = ["advanced_age", "empty_nest", "living_alone", "partly_disabled"]
        relative = self.person(BANK1, "relative_volunteer", org=gucheng, age=52, gender="male", occupation="电工")
        relative.name, relative.login = "李军", "relative"
        relative.availability = {"sat": ["morning", "afternoon"], "sun": ["morning"]}
        self.links.append(LinkSpec(recipient.index, relative.index, "子女"))
        return volunteer, recipient, relative

    def relative_of(self, recipient: PersonSpec, bank: str) -> PersonSpec:
        rng = self.rng
        relation = _weighted(rng, RELATIONS)
        gap = rng.randint(45, 60) if relation == "孙子女" else rng.randint(22, 35)
        age = max(20, self.year - recipient.birth_date.year - gap)
        gender = rng.choice(("male", "female"))
        if relation == "儿媳":
            gender = "female"
        elif relation == "女婿":
            gender = "male"
        same_name = relation in ("孙子女", "侄子女") or (
            relation == "子女" and (recipient.gender == "male" or rng.random() < 0.3)
        )
        org = self.by_name[recipient.org] if rng.random() < 0.5 else self.pick_org(bank)
        kind = "relative_volunteer" if rng.random() < 0.6 else "relative"
        person = self.person(
            bank, kind, org=org, age=age, gender=gender, surname=recipient.name[0] if same_name else None
        )
        self.links.append(LinkSpec(recipient.index, person.index, relation))
        return person

    def bank_members(self, bank: str, count: int, *, cadres: int = 0) -> None:
        """`count` active members of `bank`; in bank 2 the first `cadres` bring in all the others."""
        rng = self.rng
        start = len(self.people)
        leaders = [self.person(bank, "cadre") for _ in range(cadres)]
        rest = count - cadres
        n_rec = max(1, round(rest * 0.37))
        n_rel = round(rest * 0.10)
        n_both = round(rest * 0.03)
        n_vol = max(0, rest - n_rec - n_rel - n_both)
        kinds = ["volunteer"] * n_vol + ["recipient"] * n_rec + ["both"] * n_both
        rng.shuffle(kinds)
        elders = [p.index for p in self.people[start:] if p.occupation in FIVE_ELDERS]
        for kind in kinds:
            person = self.person(bank, kind)
            if leaders:
                person.referrer = rng.choice(leaders).index
            elif "volunteer" in person.roles and elders and rng.random() < 0.3:
                person.referrer = rng.choice(elders)
            if person.occupation in FIVE_ELDERS and "volunteer" in person.roles:
                elders.append(person.index)
        recipients = [p for p in self.people[start:] if "recipient" in p.roles]
        for _ in range(n_rel):
            person = self.relative_of(rng.choice(recipients), bank)
            if leaders:
                person.referrer = rng.choice(leaders).index

    def pending(self, bank: str, count: int, approve: int) -> None:
        for i in range(count):
            person = self.person(bank, "volunteer")
            person.approved = False
            person.approve_later = i < approve

    # -- ledger history

    def spendable(self, index: int) -> int:
        b = self.balance[index]
        return b[0] + b[2]

    def op(self, op: LedgerOp) -> None:
        """Record `op` and move the simulated balances the way the actions will."""
        b = self.balance[op.member]
        bank = self.people[op.member].bank
        if op.action == "adjustment":
            b[("earned", "goods", "reserve").index(op.bucket)] += op.minutes
        elif op.action in ("deposit", "service_record"):
            b[0] += op.minutes
            if op.payer == "recipient":
                assert op.other is not None
                self._pay(op.other, op.minutes)
            elif op.payer == "pool":
                assert self.pool[bank] >= op.minutes
                self.pool[bank] -= op.minutes
        elif op.action in ("transfer", "donation", "withdrawal"):
            self._pay(op.member, op.minutes)
            if op.other is not None:
                self.balance[op.other][2] += op.minutes
            elif op.action == "donation":
                self.pool[bank] += op.minutes
        self.ops.append(op)

    def _pay(self, index: int, minutes: int) -> None:
        b = self.balance[index]
        assert b[0] + b[2] >= minutes, "the plan would overdraw"
        from_reserve = min(minutes, max(b[2], 0))
        b[2] -= from_reserve
        b[0] -= minutes - from_reserve

    def opening_balances(self, person: PersonSpec, *, scale: float) -> None:
        """Balances brought over from the paper ledger: settled (reserve, goods) and the current period."""
        rng = self.rng
        hours = max(1, min(400, round(rng.lognormvariate(3.0, 0.8) * scale)))
        settled = round(hours * rng.uniform(0.4, 0.9)) if scale >= 1 else 0
        reserve = settled * 30  # half of the settled hours, in minutes
        goods = round(settled * 30 * rng.choice((0, 0.25, 0.5, 1)) / 30) * 30  # some already spent on goods
        earned = (hours - settled) * 60
        for bucket, minutes in (("reserve", reserve), ("goods", goods), ("earned", earned)):
            if minutes > 0:
                self.op(LedgerOp("adjustment", person.index, minutes, OPENING_REASON, bucket=bucket))

    def duration(self) -> int:
        return self.rng.choices((30, 45, 60, 90, 120, 150, 180), weights=(8, 4, 20, 14, 12, 3, 3))[0]

    def service_for(self, volunteer: PersonSpec) -> Service:
        rng = self.rng
        skilled = [s for s in HOME_SERVICES if s.skill and s.skill in volunteer.skills]
        if skilled and rng.random() < 0.6:
            return rng.choice(skilled)
        return rng.choice([s for s in HOME_SERVICES if s.skill is None])

    def deposit(self, volunteer: PersonSpec, recipient: PersonSpec, service: Service, base: int, payer: str) -> None:
        mult = MULTIPLIERS[service.tier]
        memo = f"为{recipient.name}提供{service.name} {base} 分钟（{TIER_NAMES[service.tier]} ×{mult}）"
        other = recipient.index if payer == "recipient" else None
        self.op(LedgerOp("deposit", volunteer.index, base * mult, memo, payer=payer, other=other))

    def service(
        self, volunteer: PersonSpec, recipients: Sequence[PersonSpec], by_org: dict[str, list[PersonSpec]]
    ) -> None:
        rng = self.rng
        near = by_org.get(volunteer.org)
        recipient = rng.choice(near if near and rng.random() < 0.7 else recipients)
        if recipient.index == volunteer.index:
            return  # someone who both volunteers and receives care does not serve themselves
        service = self.service_for(volunteer)
        base = self.duration()
        minutes = base * MULTIPLIERS[service.tier]
        payer = "subsidy"
        roll = rng.random()
        if roll < 0.25 and self.spendable(recipient.index) >= minutes:
            payer = "recipient"
        elif roll < 0.6 and POOR & set(recipient.recipient_categories) and self.pool[volunteer.bank] >= minutes:
            payer = "pool"
        self.deposit(volunteer, recipient, service, base, payer)

    def group_activity(self, volunteer: PersonSpec) -> None:
        rng = self.rng
        options = [s for s in GROUP_ACTIVITIES if s.skill is None or s.skill in volunteer.skills]
        activity = rng.choice(options)
        base = rng.choice((60, 90, 120, 180))
        memo = f"{activity.name}（{self.by_name[volunteer.org].name}集体活动）{base} 分钟"
        self.op(LedgerOp("service_record", volunteer.index, base, memo, payer="subsidy"))

    def history(self, bank: str, *, services_per_volunteer: float, opening_share: float, opening_scale: float) -> None:
        rng = self.rng
        active = [p for p in self.people if p.bank == bank and p.approved and p.login is None]
        volunteers = [p for p in active if "volunteer" in p.roles]
        recipients = [p for p in self.people if p.bank == bank and p.approved and "recipient" in p.roles]
        for person in active:
            if "volunteer" in person.roles and rng.random() < opening_share:
                self.opening_balances(person, scale=opening_scale)
            elif "recipient" in person.roles and rng.random() < 0.35 * opening_share:
                # older people who volunteered in earlier years and kept their stored time
                self.op(LedgerOp("adjustment", person.index, rng.randint(2, 40) * 30, OPENING_REASON, bucket="reserve"))
        if not volunteers or not recipients:
            return
        by_org: dict[str, list[PersonSpec]] = {}
        for recipient in recipients:
            by_org.setdefault(recipient.org, []).append(recipient)
        # a few very active volunteers do most of the work, as in every volunteer team
        cumulative = list(itertools.accumulate(rng.paretovariate(1.6) for _ in volunteers))
        events: list[str] = ["service"] * round(len(volunteers) * services_per_volunteer)
        events += ["group"] * round(len(volunteers) * 0.3)
        events += ["donation"] * max(1, len(volunteers) // 15)
        events += ["withdrawal"] * (len(recipients) // 10)
        linked = [
            (link, self.people[link.relative])
            for link in self.links
            if self.people[link.member].bank == bank and self.people[link.relative].login is None
        ]
        events += ["transfer"] * round(len(linked) * 0.6)
        rng.shuffle(events)
        for event in events:
            if event == "service":
                self.service(rng.choices(volunteers, cum_weights=cumulative)[0], recipients, by_org)
            elif event == "group":
                self.group_activity(rng.choices(volunteers, cum_weights=cumulative)[0])
            elif event == "donation":
                donor = rng.choices(volunteers, cum_weights=cumulative)[0]
                minutes = min(self.spendable(donor.index), rng.choice((60, 120, 180, 300)))
                if minutes > 0:
                    self.op(LedgerOp("donation", donor.index, minutes, "自愿捐赠到捐赠池，帮助困难老人"))
            elif event == "withdrawal":
                candidates = [r for r in recipients if self.spendable(r.index) >= 60 and r.login is None]
                if candidates:
                    recipient = rng.choice(candidates)
                    service = rng.choice(HOME_SERVICES[:6])
                    minutes = min(self.spendable(recipient.index) // 30 * 30, rng.choice((60, 90, 120)))
                    self.op(
                        LedgerOp("withdrawal", recipient.index, minutes, f"兑换服务：{service.name} {minutes} 分钟")
                    )
            elif event == "transfer" and linked:
                link, giver = rng.choice(linked)
                minutes = min(self.spendable(giver.index) // 30 * 30, rng.choice((60, 120, 240)))
                if minutes > 0:
                    receiver = self.people[link.member]
                    memo = f"转赠亲属{receiver.name}（{link.relation}孝心转赠）"
                    self.op(LedgerOp("transfer", giver.index, minutes, memo, other=receiver.index))

    def persona_history(self, volunteer: PersonSpec, recipient: PersonSpec, relative: PersonSpec) -> None:
        """A small, readable story for the three member logins."""
        cleaning, talking, repair = (SERVICE_BY_NAME[n] for n in ("家庭保洁", "聊天陪伴", "家电维修"))
        for bucket, minutes in (("reserve", 1800), ("goods", 600), ("earned", 240)):
            self.op(LedgerOp("adjustment", volunteer.index, minutes, OPENING_REASON, bucket=bucket))
        self.op(LedgerOp("adjustment", recipient.index, 600, OPENING_REASON, bucket="reserve"))
        self.deposit(volunteer, recipient, cleaning, 120, "subsidy")
        self.deposit(volunteer, recipient, talking, 90, "recipient")
        self.deposit(relative, recipient, repair, 60, "subsidy")
        self.group_activity(volunteer)
        self.op(
            LedgerOp(
                "transfer", relative.index, 120, f"转赠亲属{recipient.name}（子女孝心转赠）", other=recipient.index
            )
        )
        self.group_activity(relative)
        self.op(LedgerOp("donation", volunteer.index, 60, "自愿捐赠到捐赠池，帮助困难老人"))
        self.op(LedgerOp("withdrawal", recipient.index, 60, "兑换服务：家庭保洁 60 分钟"))


def build_plan(*, members: int = 300, seed: int = 2019, year: int | None = None) -> Plan:
    """Everything the demo will hold, drawn from `random.Random(seed)`; no database access."""
    if members < MIN_MEMBERS:
        raise ValueError(f"members must be at least {MIN_MEMBERS}")
    p = _Planner(seed, year or timezone.localdate().year)
    volunteer, recipient, relative = p.personas()
    pending = max(3, round(members * 0.03))
    approve_later = pending // 3
    pending2 = max(1, pending // 4)
    pending1 = pending - pending2
    bank2 = max(6, round(members * 0.22))
    bank1 = members - bank2 - 3  # the three member logins are in bank 1
    active2 = bank2 - pending2
    # 103 retired cadres brought in 630 residents: about one in seven.
    cadres = max(1, round(active2 * 103 / 733))
    p.bank_members(BANK1, bank1 - pending1)
    p.bank_members(BANK2, active2, cadres=cadres)
    p.pending(BANK1, pending1, approve_later - approve_later // 3)
    p.pending(BANK2, pending2, approve_later // 3)
    p.persona_history(volunteer, recipient, relative)
    # Bank 1 has run since 2019 on paper; bank 2 since October 2021 (110 services, 203 hours in its report).
    p.history(BANK1, services_per_volunteer=2.5, opening_share=0.65, opening_scale=1.0)
    p.history(BANK2, services_per_volunteer=1.0, opening_share=0.3, opening_scale=0.15)
    return Plan(seed=seed, orgs=p.orgs, people=p.people, links=p.links, ops=p.ops)


# --------------------------------------------------------------------------------------------------------------
# Applying the plan through the actions


@dataclass
class DemoResult:
    banks: list[Org]
    logins: list[DemoLogin]
    members: int
    pending: int
    transactions: int
    seconds: float = 0.0


def _progress(enabled: bool) -> Progress:
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


def generate(*, members: int = 300, seed: int = 2019, progress: bool = False, actor: User | None = None) -> DemoResult:
    """Build both demo banks with `members` members. `actor` (e.g. the superuser) creates the orgs and admins.

    Raises DemoDataExists when the demo logins are already there, ValueError for a size below MIN_MEMBERS.
    """
    started = time.perf_counter()
    clash = existing_demo_usernames()
    if clash:
        raise DemoDataExists(f"demo logins already exist: {', '.join(clash)}")
    plan = build_plan(members=members, seed=seed)
    with transaction.atomic(), _progress(progress) as bar:
        result = _apply(plan, actor, bar)
    result.seconds = time.perf_counter() - started
    return result


def _apply(plan: Plan, actor: User | None, bar: Progress) -> DemoResult:
    specs = {o.name: o for o in plan.orgs}
    orgs: dict[str, Org] = {}
    users: dict[str, User] = {}

    step = bar.add_task("机构与登录 orgs & logins", total=len(plan.orgs) + len(STAFF_LOGINS))
    for spec in plan.orgs:
        creator = users.get("ho_admin" if spec.bank == BANK1 else "nc_admin", actor)
        parent = orgs[spec.parent] if spec.parent else None
        orgs[spec.name] = do_create_org(creator, name=spec.name, kind=spec.kind, parent=parent)
        if spec.kind == OrgKind.HEAD_OFFICE:
            # the head office admin comes first, and creates the rest of the tree and the other staff
            admin = next(s for s in STAFF_LOGINS if s.org == spec.name and s.role == Role.HEAD_OFFICE_ADMIN)
            users[admin.username] = _staff(actor, admin, orgs)
            bar.advance(step)
        bar.advance(step)
    for login in STAFF_LOGINS:
        if login.username not in users:
            users[login.username] = _staff(users["ho_admin"], login, orgs)
            bar.advance(step)

    step = bar.add_task("会员 members", total=len(plan.people))
    created: dict[int, Member] = {}
    for person in plan.people:
        registrar = users[manager_of(person.org, specs)] if person.approved else None
        referred_by = created[person.referrer].pk if person.referrer is not None else None
        created[person.index] = do_register_member(
            registrar,
            home_org=orgs[person.org],
            data=person.member_input(referred_by),
            login=(person.login, DEMO_PASSWORD) if person.login else None,
            approved=person.approved,
        )
        if person.login:
            user = created[person.index].user
            assert user is not None
            users[person.login] = user
        bar.advance(step)

    step = bar.add_task("亲属与审核 relatives & approvals", total=len(plan.links) + len(plan.people))
    for link in plan.links:
        registrar = users[manager_of(plan.people[link.member].org, specs)]
        do_link_relative(registrar, created[link.member], created[link.relative], link.relation)
        bar.advance(step)
    for person in plan.people:
        if person.approve_later:
            do_approve_member(users[manager_of(person.org, specs)], created[person.index])
        bar.advance(step)

    step = bar.add_task("账务历史 ledger history", total=len(plan.ops))
    logins = {p.index: p.login for p in plan.people if p.login}
    for n, op in enumerate(plan.ops, start=1):
        _post(op, n, created, users, users[manager_of(plan.people[op.member].org, specs)], logins)
        bar.advance(step)

    banks = [orgs[BANK1], orgs[BANK2]]
    return DemoResult(
        banks=banks,
        logins=[*STAFF_LOGINS, *MEMBER_LOGINS],
        members=len(plan.people),
        pending=sum(1 for p in plan.people if not p.approved and not p.approve_later),
        transactions=Transaction.objects.filter(bank__in=banks).count(),
    )


def _staff(actor: User | None, login: DemoLogin, orgs: dict[str, Org]) -> User:
    return do_create_staff(
        actor, org=orgs[login.org], username=login.username, password=login.password, name=login.name, role=login.role
    )


def _post(
    op: LedgerOp, n: int, members: dict[int, Member], users: dict[str, User], staff: User, logins: dict[int, str]
) -> None:
    key = f"demo-{n}"
    member = members[op.member]
    if op.action == "adjustment":
        do_adjustment(staff, member=member, minutes=op.minutes, bucket=op.bucket, reason=op.memo, idempotency_key=key)
    elif op.action in ("deposit", "service_record"):
        do_deposit(
            staff,
            volunteer=member,
            minutes=op.minutes,
            payer=op.payer,
            payer_member=members[op.other] if op.other is not None else None,
            kind=TransactionKind.DEPOSIT if op.action == "deposit" else TransactionKind.SERVICE_RECORD,
            memo=op.memo,
            idempotency_key=key,
        )
    elif op.action == "withdrawal":
        do_withdrawal(staff, member=member, minutes=op.minutes, memo=op.memo, idempotency_key=key)
    else:
        # transfers and donations are the member's own acts: by their login if they have one
        login = logins.get(op.member)
        do_transfer(
            users[login] if login else None,
            from_member=member,
            to_member=members[op.other] if op.other is not None else None,
            minutes=op.minutes,
            kind="relative" if op.action == "transfer" else "donation",
            memo=op.memo,
            idempotency_key=key,
        )


__all__ = [
    "DEMO_LOGINS",
    "DEMO_PASSWORD",
    "DemoDataExists",
    "DemoLogin",
    "DemoResult",
    "Plan",
    "build_plan",
    "generate",
]
