"""The demo world's people: names, occupations, skills and places, drawn into `PersonSpec`s by the `Planner`."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from timebank.lib import idnumber
from timebank.members.actions import MemberInput, do_register_member
from timebank.members.models import Member
from timebank.orgs.demo import BANK1, BANK2, DEMO_PASSWORD, TEZ_STREETS, OrgSpec, Place, org_specs
from timebank.orgs.models import Org, User

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
    census: bool = False  # registered by the census import, not at the desk

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


def register_person(person: PersonSpec, registrar: User | None, home_org: Org, referred_by: Member | None) -> Member:
    """Register a planned person (the demo logins with the demo password); None registrar: they signed up."""
    return do_register_member(
        registrar,
        home_org=home_org,
        data=person.member_input(referred_by.pk if referred_by is not None else None),
        login=(person.login, DEMO_PASSWORD) if person.login else None,
        approved=person.approved,
    )


@dataclass(frozen=True)
class LinkSpec:
    member: int  # the care recipient
    relative: int
    relation: str  # what the relative is to the member


# --------------------------------------------------------------------------------------------------------------
# Building the plan (pure: no database)


def weighted(rng: random.Random, table: dict[str, int]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def unique_people(people: Sequence[PersonSpec]) -> list[PersonSpec]:
    seen: dict[int, PersonSpec] = {}
    for person in people:
        seen.setdefault(person.index, person)
    return list(seen.values())


class Planner:
    def __init__(self, seed: int, year: int) -> None:
        self.rng = random.Random(seed)
        self.year = year
        self.orgs = org_specs()
        self.by_name = {o.name: o for o in self.orgs}
        self.people: list[PersonSpec] = []
        self.links: list[LinkSpec] = []
        self.id_numbers: set[str] = set()
        self.phones: set[str] = set()

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
        region = weighted(self.rng, ID_REGIONS[bank])
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
                occupation = weighted(rng, RECIPIENT_OCCUPATIONS[place])
            elif age < 55:
                occupation = weighted(rng, WORKING_OCCUPATIONS[place])
            elif volunteer:
                occupation = weighted(rng, VOLUNTEER_OCCUPATIONS[place])
            else:
                occupation = weighted(rng, RECIPIENT_OCCUPATIONS[place])
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
        relation = weighted(rng, RELATIONS)
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

    def pending(self, bank: str, count: int, approve: int, *, first_at: str | None = None) -> None:
        """Self-registered volunteers; the first one at `first_at`, so its staff have someone to approve."""
        for i in range(count):
            person = self.person(bank, "volunteer", org=self.by_name[first_at] if first_at and i == 0 else None)
            person.approved = False
            person.approve_later = 0 < i <= approve

    def census(self, bank: str, count: int, orgs: Sequence[str]) -> None:
        """Recipients found in the census data, written by the census import."""
        for _ in range(count):
            person = self.person(bank, "recipient", org=self.by_name[self.rng.choice(orgs)])
            person.census = True

    # -- ledger history


# Recipient categories: the poor (whom the donation pool pays for), those checked on, and their words.
POOR = frozenset({"extreme_poverty", "subsistence_allowance", "registered_poor", "severe_disability"})
WELFARE_CATEGORIES = frozenset({"living_alone", "empty_nest", "disabled"})  # the rules' default
CATEGORY_WORDS = {
    "empty_nest": "空巢",
    "left_behind": "留守",
    "disabled": "失能",
    "partly_disabled": "半失能",
    "severe_disability": "重残",
    "extreme_poverty": "特困",
    "subsistence_allowance": "低保",
    "registered_poor": "建档立卡贫困户",
    "advanced_age": "高龄",
    "living_alone": "独居",
}
