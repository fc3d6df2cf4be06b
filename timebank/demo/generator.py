"""A seeded generator of demo data for the two banks of the seed documents.

Bank 1 is 台儿庄区时间银行 (a district: head office → six towns/streets → villages and communities → service
points). Bank 2 is 南充市爱心时间银行 (a city: head office → 顺庆区 → 和平路街道 → 驻春路社区), where 103
retired cadres brought in 630 residents; the generator mimics that with `referred_by` links.

It works in two steps:

1. `build_plan` draws everything from `random.Random(seed)` into plain data (no database): the people, then a
   timeline of the hundred days since the platform went live. Opening balances from the paper ledger,
   services and group activities, orders in every state, needs and census rows, hotline calls, return visits
   and welfare checks, insurance, certificates and training, goods and redemptions, money in and out, and one
   settlement. Times are kept relative to "today" and birth dates to the current year, so the same seed gives
   the same plan on any day. The plan simulates the balances step by step, so no step overdraws.
2. `generate` applies the plan through the action functions only, inside one database transaction. While it
   runs, `timezone.now()` follows the timeline (a clock that never goes back), so ledger and audit timestamps,
   the settlement's cut-off, check-in and check-out times and "overdue" all look as they would have.
   Notifications for the order transitions are queued by the notify hooks inside each transition; their
   delivery is handed to the task queue when the transaction commits.

Only the demo logins get passwords (hashing is slow); other members have no login.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import itertools
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal
from unittest import mock

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

from timebank.approvals.actions import do_approve
from timebank.approvals.models import Approval
from timebank.catalogue.actions import do_create_service_item, do_set_menu_entry
from timebank.catalogue.models import ServiceItem
from timebank.evaluation.demo import seed_evaluation
from timebank.funds.actions import EntryInput, StockInput, do_buy_market_service, do_record_entry, do_record_in_kind
from timebank.funds.models import FundEntry
from timebank.goods.actions import do_create_goods, do_hand_over, do_redeem, do_restock, do_stock_count
from timebank.goods.models import Goods, Redemption
from timebank.hotline.actions import NeedSpec, do_log_call, do_record_return_visit, do_record_welfare_check
from timebank.hotline.models import CallLog
from timebank.ledger.actions import do_adjustment, do_deposit, do_transfer, do_withdrawal
from timebank.ledger.models import Transaction, TransactionKind
from timebank.ledger.settlement import do_settle
from timebank.lib import idnumber
from timebank.members.actions import MemberInput, do_approve_member, do_link_relative, do_register_member
from timebank.members.models import InsurancePolicy, Member, MemberStatus
from timebank.needs.actions import (
    do_add_follow_up,
    do_close_need,
    do_confirm_census_import,
    do_create_census_import,
    do_create_need,
    do_link_order,
)
from timebank.needs.census import check_table, read_table
from timebank.needs.models import Need
from timebank.notices.demo import seed_notices
from timebank.notify.actions import do_set_duty
from timebank.orders import actions as order_actions
from timebank.orders.models import Order, ServiceRecord
from timebank.orgs.actions import do_create_org, do_create_staff
from timebank.orgs.models import Org, OrgKind, Role, User
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
from timebank.safety.models import IncidentReport, TrainingSession
from timebank.teams.demo import seed_teams

DEMO_PASSWORD = "demo12345"  # noqa: S105 - a published demo password, never used outside the demo
OPENING_REASON = "纸质台账迁移"
MIN_MEMBERS = 12
# The head office's default multipliers and settlement share (the generator creates the banks with default rules).
MULTIPLIERS = {"ordinary": 1, "technical": 2, "professional": 3}
TIER_NAMES = {"ordinary": "普通服务", "technical": "技术服务", "professional": "专业服务"}
GOODS_SHARE_PERCENT = 50

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


@dataclass(frozen=True)
class LinkSpec:
    member: int  # the care recipient
    relative: int
    relation: str  # what the relative is to the member


# --------------------------------------------------------------------------------------------------------------
# The service catalogue (制单) and the words the timeline uses


@dataclass(frozen=True)
class Service:
    name: str
    tier: str
    category: str
    skill: str | None = None  # a volunteer offering it usually has this skill
    certificate: str = ""  # the certificate the head office requires for it
    description: str = ""


# Services ordered to a recipient's home: the second seed's list, then the first seed's categories.
HOME_SERVICES = (
    Service("餐饮配送", "ordinary", "mutual_care", description="为行动不便的老人配送午餐、晚餐"),
    Service("家庭保洁", "ordinary", "mutual_care", description="打扫卫生、整理房间、清洗衣物被褥"),
    Service("物品代购", "ordinary", "mutual_care", description="代买米面粮油、药品和日用品"),
    Service("日间照料", "ordinary", "mutual_care", description="白天上门照看，协助起居、用餐和服药"),
    Service("紧急救援", "ordinary", "mutual_care", description="老人摔倒或突发不适时就近赶到，协助联系家属和 120"),
    Service("聊天陪伴", "ordinary", "mutual_care", description="上门聊天、散步，缓解孤独"),
    Service("陪同就医", "ordinary", "health_care", description="陪同去医院挂号、就诊、取药"),
    Service("读书读报", "ordinary", "community_education", "读书读报", description="为视力不好的老人读书读报"),
    Service("理发", "ordinary", "mutual_care", "理发", description="上门理发、修面"),
    Service("测量血压", "ordinary", "health_care", "测量血压", description="上门测量血压、血糖并做记录"),
    Service("义务家教", "ordinary", "tutoring", "义务家教", description="为留守儿童辅导功课"),
    Service("管道疏通", "technical", "mutual_care", "管道疏通", description="疏通下水道、马桶和厨房管道"),
    Service("家电维修", "technical", "mutual_care", "家电维修", description="维修电视、冰箱、洗衣机等家电"),
    Service(
        "居住设施维护", "technical", "mutual_care", "水电维修", description="门窗、水龙头、灯具等居住设施的小修小补"
    ),
    Service("电路检修", "technical", "mutual_care", "电路检修", "electrician", "检查和更换老化电线、插座和开关"),
    Service("医疗护理", "professional", "health_care", "医疗护理", "nursing", "换药、护理、康复指导（需护理资质）"),
    Service(
        "心理咨询", "professional", "health_care", "心理咨询", "counselling", "心理疏导和情绪支持（需心理咨询资质）"
    ),
    Service(
        "法律咨询", "professional", "legal_aid", "法律咨询", "legal", "赡养、继承、防诈骗等法律咨询（需法律职业资格）"
    ),
)
# Group activities, posted by the sub-branch as service records.
GROUP_SERVICES = (
    Service("健康讲座", "ordinary", "health_talks", "健康咨询", description="邀请医生讲解慢病防治和合理用药"),
    Service("社区环保清洁", "ordinary", "environment", description="清理楼道、绿地和河道垃圾"),
    Service("社区治安巡逻", "ordinary", "public_safety", "治安巡逻", description="夜间和节假日的治安巡逻"),
    Service("文艺演出", "ordinary", "culture_sports", description="敬老文艺演出"),
    Service("困难家庭走访", "ordinary", "hardship_help", description="走访困难家庭，了解需求、送去慰问"),
    Service("政策宣讲", "ordinary", "community_education", "政策宣讲", description="宣讲养老、医保和防诈骗政策"),
)
SERVICE_BY_NAME = {s.name: s for s in (*HOME_SERVICES, *GROUP_SERVICES)}
# 南充's smaller catalogue (a single community).
BANK2_SERVICES = (
    "餐饮配送", "家庭保洁", "物品代购", "聊天陪伴", "陪同就医", "义务家教", "心理咨询", "法律咨询",
    "健康讲座", "社区环保清洁", "政策宣讲",
)  # fmt: skip
# Every community publishes these; the others are drawn per community.
CORE_MENU = ("餐饮配送", "家庭保洁", "物品代购", "聊天陪伴", "陪同就医", "紧急救援")
MENU_TIMES = (
    "周一至周五 8:00-17:00",
    "每周一、三、五上午",
    "每周二、四下午",
    "周末全天，请提前一天预约",
    "工作日 9:00-11:30",
)
MENU_TIMES_BY_ITEM = {"紧急救援": "全天 24 小时，拨打 12349", "餐饮配送": "每天 11:00-12:00、17:00-18:00"}
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

ORDER_NOTES = {
    "餐饮配送": ("老人牙口不好，饭菜要软烂一些", "中午 11 点半前送到", "少盐少油，老人有高血压"),
    "家庭保洁": ("重点打扫厨房和卫生间", "换季了，帮忙把棉被拆洗一下", "老人腿脚不便，帮忙擦擦窗户"),
    "物品代购": ("帮忙买一袋大米、一桶油", "去药店买降压药（药盒在门口鞋柜上）", "买些鸡蛋和青菜"),
    "日间照料": ("白天子女上班，需要有人照看", "提醒老人按时吃药", "老人有轻度认知障碍，请多留意"),
    "紧急救援": ("老人在家中摔倒，起不来", "老人胸闷气短，家属不在身边", "邻居听到老人呼救"),
    "聊天陪伴": ("老伴去世后不爱说话，多陪陪他", "喜欢听柳琴戏", "想找人下象棋"),
    "陪同就医": ("去区人民医院复查血压", "去中医院拿药，需要有人陪同挂号", "去镇卫生院做体检"),
    "读书读报": ("老人喜欢听时事新闻", "读读孙子寄来的信", ""),
    "理发": ("老人卧床，需要上门理发", "剪短一些就行", ""),
    "测量血压": ("每周量一次血压并记录", "最近头晕，想量量血压血糖", ""),
    "义务家教": ("孙子上四年级，数学跟不上", "留守儿童，父母在外打工", ""),
    "管道疏通": ("厨房下水道堵了", "卫生间马桶不通", ""),
    "家电维修": ("电视没有信号", "洗衣机不转了", "冰箱不制冷"),
    "居住设施维护": ("卫生间水龙头漏水", "屋里的灯不亮了", "门锁坏了关不上"),
    "电路检修": ("插座冒火花，不敢用了", "老房子电线老化，想检查一下", ""),
    "医疗护理": ("腿上伤口需要换药", "术后康复，需要指导锻炼", "长期卧床，需要翻身护理"),
    "心理咨询": ("老伴去世后情绪低落，整夜睡不着", "子女不在身边，常常觉得孤单", ""),
    "法律咨询": ("想咨询遗嘱怎么写才有效", "子女不履行赡养义务", "接到可疑电话，怕被骗"),
}
REVIEWS = {
    5: (
        "服务很细心，屋里收拾得干干净净，还陪我说了会儿话。",
        "志愿者准时上门，态度特别好，谢谢时间银行！",
        "服务周到，有问必答，下次还找她。",
        "像自家孩子一样，老人很满意。",
        "",
    ),
    4: ("挺好的，就是来得晚了一点。", "服务不错，下次还找他。", "总体满意，希望能多来几次。", ""),
    3: ("还行，有些地方没打扫到。", "态度可以，时间有点短。"),
    2: ("来晚了一个小时，也没提前打电话。", "活干得比较马虎。"),
    1: ("志愿者态度不好，老人很不高兴。",),
}
CANCEL_REASONS = (
    "老人住院了，暂时不需要服务",
    "家属已经自己安排好了",
    "老人改了时间，重新下单",
    "重复下单",
    "老人去子女家小住，不在家",
)
NO_VOLUNTEER = "暂无合适的志愿者，已电话告知老人改约"
DECLINE_REASONS = ("这几天要去外地看孙子，接不了", "身体不太舒服，怕耽误老人的事", "时间冲突，那天上午要去医院复查")
NO_SHOW_NOTES = ("志愿者临时有事没有上门，也没有提前说", "志愿者记错了日期，老人等了一上午")
DISPUTE_REASONS = (
    "老人女儿反映：志愿者只干了半个多小时就走了，签退时间却是两个小时",
    "老人说没有打扫卫生间，和约定的不一样",
    "家属反映志愿者提前离开",
)
DISPUTE_CANCEL = "经核实服务没有完成，取消订单，另行安排"
NEED_NOTES = {
    "essential": ("长期卧床，需要定期上门护理", "失能老人，独自在家无人照料", "特困供养老人，吃饭成问题"),
    "special": ("独居高龄，需要有人定期上门看看", "行动不便，买菜买药困难", "视力不好，需要有人陪同就医"),
    "general": ("希望有人陪着聊聊天", "家里电器老旧，需要检修", "想学用智能手机和子女视频"),
}
NEED_ITEMS = {
    "disabled": ("医疗护理", "日间照料"),
    "partly_disabled": ("陪同就医", "家庭保洁"),
    "living_alone": ("聊天陪伴", "餐饮配送"),
    "empty_nest": ("聊天陪伴", "物品代购"),
    "advanced_age": ("陪同就医", "测量血压"),
    "extreme_poverty": ("物品代购", "家庭保洁"),
    "subsistence_allowance": ("物品代购",),
    "severe_disability": ("医疗护理", "日间照料"),
    "left_behind": ("聊天陪伴", "义务家教"),
    "registered_poor": ("物品代购",),
}
FOLLOW_UPS = (
    "电话回访，老人情况稳定",
    "社区网格员上门查看，已登记具体需求",
    "已联系家属，约定每周上门一次",
    "已报街道，申请临时救助",
    "志愿者队伍已排班",
)
MET_NOTES = ("已安排志愿者定期上门，需求已满足", "订单服务完成，老人满意", "已纳入助餐点配送名单")
CLOSE_REASONS = ("老人已随子女迁居外地", "老人入住养老院", "老人表示暂时不需要")
CALL_SUMMARIES = {
    "legal_advice": ("咨询子女不履行赡养义务怎么办，已转法律咨询志愿者", "咨询遗嘱公证流程", "咨询房屋过户纠纷"),
    "psychological_advice": ("老伴去世后情绪低落，坐席安抚并预约心理咨询", "长期失眠、焦虑，建议到医院就诊并安排回访"),
    "other": ("咨询怎样加入时间银行当志愿者", "询问积分怎么兑换物品", "询问服务站开放时间"),
    "complaint": ("投诉志愿者迟到", "反映服务时长和实际不符"),
}
WELFARE_OK = ("老人身体状况良好", "老人精神不错，家中一切正常", "血压平稳，饮食正常", "子女刚来看过，情况良好")
WELFARE_CONCERN = (
    "老人近几天腿疼，行走困难",
    "老人说最近吃饭没胃口",
    "家中暖气不热，老人怕冷",
    "老人记性变差，常忘记吃药",
)

# Goods for redemption (name, price in minutes).
GOODS = (
    ("大米（5公斤）", 90),
    ("食用油（5升）", 120),
    ("洗衣液（2公斤）", 60),
    ("毛巾", 20),
    ("香皂", 10),
    ("牙膏", 15),
    ("挂面（2公斤）", 30),
    ("鸡蛋（30枚）", 60),
    ("抽纸（10包）", 40),
    ("老花镜", 60),
)

INSURERS = {
    "group": "中国人寿财产保险股份有限公司枣庄市中心支公司",
    "village": "中国人民财产保险股份有限公司台儿庄支公司",
    "single": "中国平安财产保险股份有限公司枣庄中心支公司",
    "bank2": "中国太平洋财产保险股份有限公司南充中心支公司",
}
CERTIFICATES = {
    "护士": ("nursing", "山东省卫生健康委员会"),
    "退休护士": ("nursing", "山东省卫生健康委员会"),
    "医生": ("medical", "枣庄市卫生健康委员会"),
    "退休医生": ("medical", "枣庄市卫生健康委员会"),
    "心理咨询师": ("counselling", "人力资源和社会保障部职业技能鉴定中心"),
    "律师": ("legal", "山东省司法厅"),
    "电工": ("electrician", "枣庄市应急管理局"),
}
BANK2_ISSUERS = {
    "nursing": "四川省卫生健康委员会",
    "medical": "南充市卫生健康委员会",
    "counselling": "人力资源和社会保障部职业技能鉴定中心",
    "legal": "四川省司法厅",
    "electrician": "南充市应急管理局",
}
COMPANIES = {
    BANK1: ("台儿庄区福康商贸有限公司", "枣庄市运河人家餐饮有限公司", "台儿庄区惠民超市有限公司"),
    BANK2: ("南充市顺庆区和美家政服务有限公司", "南充市嘉陵江粮油有限公司"),
}
MARKET_PROVIDER = "台儿庄区康宁居家护理服务有限公司"

# --------------------------------------------------------------------------------------------------------------
# The timeline: moments, and the steps that happen at them

DAY = 24 * 60
LAUNCH = -100  # the platform went live this many days ago: paper records moved in, members registered
SETTLED = -28  # the settlement's period end (run early the next morning)
# `at` values from RECENT on are the last few hours before the demo is made (RECENT_SPAN minutes at most).
RECENT = 10**7
RECENT_SPAN = 180


def when(day: int, hour: int, minute: int = 0) -> int:
    """A moment as minutes from today's midnight: `day` days from today (negative: before), at hour:minute."""
    return day * DAY + hour * 60 + minute


def ago(minutes: int) -> int:
    """`minutes` before the demo is made (at most RECENT_SPAN)."""
    return RECENT + RECENT_SPAN - minutes


def day_of(at: int) -> int:
    return at // DAY


def daytime(at: int) -> int:
    """Move a moment in the night to 08:00 the next morning: volunteers and staff work by day. It also keeps
    the night after the settlement's period end free of postings."""
    if at >= RECENT:
        return at
    minute = at % DAY
    if minute < 8 * 60:
        return at - minute + 8 * 60
    if minute > 21 * 60:
        return at - minute + DAY + 8 * 60
    return at


@dataclass(frozen=True)
class Step:
    at: int  # when it happens: see `when` and `ago`


OpAction = Literal["adjustment", "deposit", "transfer", "donation", "withdrawal"]


@dataclass(frozen=True)
class LedgerOp(Step):
    action: OpAction
    member: int  # the volunteer, the payer of a transfer, or the member adjusted / withdrawing
    minutes: int
    memo: str
    bucket: str = ""
    payer: str = ""  # deposits: recipient | pool
    other: int | None = None  # the recipient paying, or the receiver of a transfer


@dataclass(frozen=True)
class RecordService(Step):
    """A service outside an order (a group activity, or a home service arranged by the sub-branch)."""

    volunteer: int
    item: str
    minutes: int
    served_at: int
    memo: str
    actor: str
    recipient: int | None = None


@dataclass(frozen=True)
class Register(Step):
    person: int  # a self-registration waiting for approval


@dataclass(frozen=True)
class Approve(Step):
    person: int
    actor: str


@dataclass(frozen=True)
class Duty(Step):
    login: str


@dataclass(frozen=True)
class Insure(Step):
    members: tuple[int, ...]
    insurer: str
    number: str
    starts: int  # days from today
    ends: int
    group: bool
    actor: str


@dataclass(frozen=True)
class Certify(Step):
    member: int
    kind: str
    issuer: str
    valid_from: int  # days from today
    valid_until: int
    actor: str


@dataclass(frozen=True)
class Train(Step):
    key: str
    org: str
    title: str
    kind: str
    topic: str
    place: str
    trainer: str
    held_on: int  # days from today
    grants: str
    actor: str


@dataclass(frozen=True)
class Attend(Step):
    training: str
    rows: tuple[tuple[int, bool, bool | None, str | None], ...]  # member, attended, passed, score
    actor: str


@dataclass(frozen=True)
class Incident(Step):
    key: str
    order: int | None
    volunteer: int | None
    recipient: int | None
    occurred: int
    place: str
    what: str
    injury: str  # the injury, or "" when nobody was hurt
    actor: str


@dataclass(frozen=True)
class IncidentAct(Step):
    key: str
    action: Literal["follow_up", "decide", "claim", "close"]
    note: str
    actor: str
    responsibility: str = ""
    claim_status: str = ""
    claim_number: str = ""
    policy: str = ""  # the policy number the claim is filed under


@dataclass(frozen=True)
class NewOrder(Step):
    key: int
    recipient: int
    item: str
    scheduled: int
    planned: int
    payer: str
    channel: str
    urgent: bool
    notes: str
    actor: str


@dataclass(frozen=True)
class OrderAct(Step):
    key: int
    action: str  # dispatch, take, accept, decline, no-show, check-in, check-out, confirm, review, cancel, dispute
    actor: str
    volunteer: int | None = None
    note: str = ""
    minutes: int | None = None  # confirm: the actual minutes
    rating: int | None = None
    by: str = ""  # who confirms or cancels: staff | volunteer | party
    lat: str = ""
    lon: str = ""


@dataclass(frozen=True)
class BuyService(Step):
    order: int
    fund_org: str
    provider: str
    amount: str
    note: str
    actor: str


@dataclass(frozen=True)
class NewNeed(Step):
    key: int
    recipient: int
    level: str
    found_by: str
    items: tuple[str, ...]
    notes: str
    actor: str


@dataclass(frozen=True)
class NeedAct(Step):
    key: int
    action: Literal["follow_up", "met", "close", "link"]
    note: str
    actor: str
    order: int | None = None


@dataclass(frozen=True)
class CensusImport(Step):
    org: str
    filename: str
    people: tuple[int, ...]  # the first rows: written as new recipients
    rows: tuple[tuple[str, ...], ...]  # the file's rows; the last ones are rejected by the dry run
    actor: str


@dataclass(frozen=True)
class Call(Step):
    kind: str
    org: str
    member: int | None
    phone: str
    summary: str
    minutes: int
    actor: str
    order: int | None = None
    need: int | None = None


@dataclass(frozen=True)
class ReturnVisit(Step):
    order: int
    outcome: str
    satisfaction: int | None
    note: str
    actor: str


@dataclass(frozen=True)
class WelfareCheck(Step):
    member: int
    method: str
    found_ok: bool
    health_changed: bool
    note: str
    actor: str
    need_level: str = ""  # opens a need at once
    need_items: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewGoods(Step):
    key: str
    outlet: str
    name: str
    price: int
    stock: int
    actor: str


@dataclass(frozen=True)
class Redeem(Step):
    key: int
    member: int
    goods: str
    quantity: int
    actor: str


@dataclass(frozen=True)
class HandOver(Step):
    redemption: int
    actor: str


@dataclass(frozen=True)
class Restock(Step):
    goods: str
    quantity: int
    note: str
    actor: str


@dataclass(frozen=True)
class StockCount(Step):
    goods: str
    shortfall: int
    note: str
    actor: str
    counted: int = -1  # filled in by the plan's simulation


@dataclass(frozen=True)
class Money(Step):
    org: str
    direction: str
    amount: str
    occurred_on: int  # days from today
    description: str
    actor: str
    source: str = ""
    kind: str = ""
    fund: str = "general"
    donor: str = ""
    provider: str = ""


@dataclass(frozen=True)
class InKind(Step):
    org: str
    source: str
    value: str
    item: str
    donor: str
    description: str
    goods: str
    quantity: int
    actor: str


@dataclass(frozen=True)
class Settle(Step):
    bank: str
    period_end: int  # days from today
    actor: str


# Drafts: what the plan means to do; the simulation turns them into steps once the balances are known.


@dataclass(frozen=True)
class ServiceDraft(Step):
    volunteer: int
    recipient: int
    item: str
    base: int
    actor: str


@dataclass(frozen=True)
class DonationDraft(Step):
    donor: int
    wish: int


@dataclass(frozen=True)
class WithdrawalDraft(Step):
    bank: str
    item: str
    wish: int


@dataclass(frozen=True)
class TransferDraft(Step):
    giver: int
    receiver: int
    relation: str
    wish: int


@dataclass(frozen=True)
class MenuSpec:
    org: str
    item: str
    times: str
    place: str


@dataclass
class Plan:
    seed: int
    orgs: list[OrgSpec]
    people: list[PersonSpec]
    links: list[LinkSpec]
    menus: list[MenuSpec]
    steps: list[Step]


@dataclass
class _OrderInfo:
    """What the simulation needs to know about an order."""

    bank: str
    recipient: int
    multiplier: int
    hold: int  # the most it may cost the payer
    pays_at: int | None  # when it is confirmed (or bought), if it is
    fixed_payer: bool = False  # a story that needs this payer: the plan must allow it
    payer: str = ""


# --------------------------------------------------------------------------------------------------------------
# Building the plan (pure: no database)


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _unique(people: Sequence[PersonSpec]) -> list[PersonSpec]:
    seen: dict[int, PersonSpec] = {}
    for person in people:
        seen.setdefault(person.index, person)
    return list(seen.values())


class _Planner:
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
class _Story:
    """An order being drafted: its key, and the time of its latest step."""

    key: int
    recipient: PersonSpec
    item: Service
    t: int
    open: bool = True  # False once a step would fall after now: the rest has not happened yet


class _Timeline:
    """Draws the steps of the hundred days since launch, then simulates them in time order (`resolve`)."""

    def __init__(self, planner: _Planner, volunteer: PersonSpec, recipient: PersonSpec, relative: PersonSpec) -> None:
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
        self.orders: dict[int, _OrderInfo] = {}
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
                self.add(LedgerOp(at, "adjustment", person.index, minutes, OPENING_REASON, bucket=bucket))

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
            for v in _unique(team):
                self.add(RecordService(posted, v.index, item.name, base, when(day, start), memo, self.manager(v.org)))
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
                self.add(LedgerOp(at, "adjustment", person.index, minutes, OPENING_REASON, bucket="reserve"))
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
            self.add(LedgerOp(at, "adjustment", v.index, minutes, OPENING_REASON, bucket=bucket))
        self.add(LedgerOp(at + 5, "adjustment", r.index, 600, OPENING_REASON, bucket="reserve"))
        self.add(
            RecordService(
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
            LedgerOp(
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
            RecordService(
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
            RecordService(
                when(-55, 17), v.index, "义务家教", 120, when(-55, 14), "义务家教（顺河社区集体活动）", "staff"
            )
        )
        self.add(
            LedgerOp(when(-45, 20), "transfer", rel.index, 120, f"转赠亲属{r.name}（子女孝心转赠）", other=r.index)
        )
        self.add(
            RecordService(
                when(-41, 12),
                rel.index,
                "社区环保清洁",
                180,
                when(-41, 8),
                "社区环保清洁（古城社区集体活动）",
                "branch_admin",
            )
        )
        self.add(LedgerOp(when(-35, 10), "donation", v.index, 60, "自愿捐赠到捐赠池，帮助困难老人"))
        self.add(LedgerOp(when(-33, 15), "withdrawal", r.index, 60, "兑换服务：家庭保洁 60 分钟"))

    # -- safety: insurance, certificates, training, incidents

    def policy_number(self, prefix: str) -> str:
        return f"{prefix}{self.rng.randrange(10**11, 10**12)}"

    def insure(
        self, at: int, members: list[PersonSpec], insurer: str, number: str, starts: int, ends: int, actor: str
    ) -> None:
        for start in range(0, len(members), 500):
            chunk = members[start : start + 500]
            self.add(Insure(at, tuple(m.index for m in chunk), insurer, number, starts, ends, True, actor))
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
                Insure(
                    when(LAUNCH + 3, 9),
                    (v.index,),
                    INSURERS["single"],
                    number,
                    ends - 364,
                    ends,
                    False,
                    self.manager(v.org),
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
            self.add(Certify(at, v.index, kind, issuer, valid_from, valid_until, self.manager(v.org)))
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
                Train(when(held - 14, 10), key, org, title, kind, topic, place, trainer, held, grants, self.admin(bank))
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
            rows: list[tuple[int, bool, bool | None, str | None]] = []
            for m in _unique(attendees):
                attended = m is self.volunteer or rng.random() < 0.88
                if not attended:
                    rows.append((m.index, False, None, None))
                elif not grants:
                    rows.append((m.index, True, None, None))
                elif m is self.volunteer or rng.random() < 0.82:
                    rows.append((m.index, True, True, f"{rng.randrange(140, 198) / 2:.1f}"))
                    held_by = self.cert_from.setdefault(m.index, {})
                    held_by[grants] = min(held_by.get(grants, held + 1), held + 1)
                else:
                    rows.append((m.index, True, False, f"{rng.randrange(84, 120) / 2:.1f}"))
            self.add(Attend(when(held + 1, 10), key, tuple(rows), self.admin(bank)))
        # one still to come: no attendance yet
        self.add(
            Train(
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
                Incident(
                    reported, "injury", key, v.index, r.index, check_in + 40, f"{r.name}家中",
                    "擦窗户时从凳子上滑下来，扭伤了右脚踝。", "右脚踝扭伤，区人民医院拍片未见骨折，需休息两周。", actor,
                )
            )  # fmt: skip
            claim = f"LP{rng.randrange(10**9, 10**10)}"
            follow = (
                IncidentAct(daytime(reported + 2 * DAY), "injury", "follow_up", "工作人员陪同就医，已垫付医药费 320 元", actor),
                IncidentAct(daytime(reported + 4 * DAY), "injury", "decide", "意外滑倒，双方均无过错", actor, responsibility="none"),
                IncidentAct(daytime(reported + 5 * DAY), "injury", "claim", "已向保险公司报案", actor, claim_status="filed", claim_number=claim, policy=number),
                IncidentAct(daytime(reported + 20 * DAY), "injury", "claim", "保险公司已赔付医药费", actor, claim_status="paid"),
                IncidentAct(daytime(reported + 21 * DAY), "injury", "close", "志愿者已康复", actor),
            )  # fmt: skip
            for act in follow:
                if act.at < 0:
                    self.add(act)
        recent = [(k, c, v, r) for k, c, v, r in self.done_orders if c > when(-14, 0)]
        if recent:
            _key, _check_in, v, r = rng.choice(recent)
            self.add(
                Incident(
                    when(-4, 17), "gas", None, v.index, r.index, when(-4, 16), f"{r.name}家中",
                    "上门服务时发现燃气灶没有关，已协助关闭阀门、开窗通风并通知家属。", "", self.manager(r.org),
                )
            )  # fmt: skip
            self.add(
                IncidentAct(when(-3, 10), "gas", "follow_up", "已联系燃气公司上门安装燃气报警器", self.manager(r.org))
            )

    # -- orders (点单 → 派单 → 接单 → service → confirmation → 评单)

    def new_order(
        self,
        recipient: PersonSpec,
        item: Service,
        at: int,
        *,
        channel: str,
        actor: str,
        scheduled: int,
        planned: int,
        payer: str = "subsidy",
        urgent: bool = False,
        notes: str | None = None,
        fixed_payer: bool = False,
    ) -> _Story:
        key = next(self.order_keys)
        mult = MULTIPLIERS[item.tier]
        self.orders[key] = _OrderInfo(recipient.bank, recipient.index, mult, planned * mult, None, fixed_payer)
        if notes is None:
            notes = self.rng.choice(ORDER_NOTES.get(item.name, ("",)))
        self.add(
            NewOrder(at, key, recipient.index, item.name, scheduled, planned, payer, channel, urgent, notes, actor)
        )
        return _Story(key, recipient, item, at)

    def next_at(self, story: _Story, at: int) -> int | None:
        """The story's next moment: after its last step, by day; None once it would be after now."""
        if not story.open:
            return None
        at = max(at, story.t + 1)
        if at < RECENT:
            at = daytime(at)
            if at >= 0:
                story.open = False
                return None
        story.t = at
        return at

    def act(
        self,
        story: _Story,
        at: int,
        action: str,
        actor: str,
        *,
        volunteer: int | None = None,
        note: str = "",
        minutes: int | None = None,
        rating: int | None = None,
        by: str = "",
        lat: str = "",
        lon: str = "",
    ) -> bool:
        """The order's next transition, if it has happened by now."""
        moment = self.next_at(story, at)
        if moment is None:
            return False
        if action == "confirm":
            assert minutes is not None
            info = self.orders[story.key]
            info.pays_at = moment
            info.hold = max(info.hold, minutes * info.multiplier)
        self.add(OrderAct(moment, story.key, action, actor, volunteer, note, minutes, rating, by, lat, lon))
        return True

    def call(self, story: _Story, at: int, kind: str, summary: str, actor: str, need: int | None = None) -> bool:
        moment = self.next_at(story, at)
        if moment is None:
            return False
        r = story.recipient
        self.add(Call(moment, kind, r.org, r.index, "", summary, self.rng.randint(2, 9), actor, story.key, need))
        return True

    def serve(self, s: _Story, v: PersonSpec, scheduled: int, actual: int) -> int | None:
        """Check in at the scheduled time and out `actual` minutes later; the check-in moment, or None."""
        lat, lon = self.coords(s.recipient)
        if not self.act(s, scheduled + self.rng.randint(-10, 10), "check-in", self.acts_for(v), lat=lat, lon=lon):
            return None
        check_in = s.t
        lat, lon = self.coords(s.recipient)
        if not self.act(s, check_in + actual, "check-out", self.acts_for(v), lat=lat, lon=lon):
            return None
        return check_in

    def open_need(self, recipient: PersonSpec, at: int) -> int | None:
        for key, (who, created, ended) in self.needs.items():
            if who == recipient.index and created < at < ended - 60:
                return key
        return None

    def random_orders(self, bank: str, count: int) -> None:
        rng = self.rng
        recipients = self.active(bank, "recipient")
        volunteers = self.active(bank, "volunteer")
        if not recipients or not volunteers:
            return
        for _ in range(count):
            r = rng.choice(recipients)
            menu = [SERVICE_BY_NAME[n] for n in self.menu_of.get(r.org, CORE_MENU)]
            menu = [
                i for i in menu if not i.certificate or any(self.certified(v, i.certificate, -40) for v in volunteers)
            ]
            item = rng.choice(menu)
            created = self.daytime_at(-40, -2, 8, 17)
            channel = rng.choices(("hotline", "visit", "staff"), weights=(45, 25, 30))[0]
            desk = self.operator(bank) if channel == "hotline" else self.manager(r.org)
            urgent = item.name == "紧急救援" or rng.random() < 0.05
            roll = rng.random()
            payer = (
                "recipient"
                if roll < 0.35
                else "pool"
                if roll < 0.6 and POOR & set(r.recipient_categories)
                else "subsidy"
            )
            planned = 60 if urgent else rng.choice((60, 60, 90, 120, 120, 150))
            if urgent:
                scheduled = created + 60
            else:
                scheduled = when(
                    day_of(created) + rng.randint(1, 3), rng.choice((8, 9, 10, 14, 15)), rng.choice((0, 30))
                )
            s = self.new_order(
                r,
                item,
                created,
                channel=channel,
                actor=desk,
                scheduled=scheduled,
                planned=planned,
                payer=payer,
                urgent=urgent,
            )
            need = self.open_need(r, created)
            if channel == "hotline":
                self.call(
                    s, created + 2, "order", f"来电预约{item.name}", desk, need if need and rng.random() < 0.7 else None
                )
            elif need is not None and rng.random() < 0.5:
                self.add(NeedAct(created + 1, need, "link", "", self.manager(r.org), s.key))
            self.order_outcome(s, _weighted(rng, OUTCOMES), desk, scheduled, planned, urgent)

    def order_outcome(self, s: _Story, outcome: str, desk: str, scheduled: int, planned: int, urgent: bool) -> None:
        rng = self.rng
        r, item = s.recipient, s.item
        staff = self.manager(r.org)
        if outcome == "cancelled":
            self.act(s, s.t + rng.randint(30, 600), "cancel", staff, note=rng.choice(CANCEL_REASONS), by="staff")
            return
        v = self.pick_volunteer(r, item, day_of(s.t) + 1, set())
        if outcome == "unfilled" or v is None:
            self.act(s, s.t + rng.randint(2, 4) * DAY, "cancel", staff, note=NO_VOLUNTEER, by="staff")
            return
        if not self.act(
            s, s.t + (rng.randint(5, 20) if urgent else rng.randint(20, 300)), "dispatch", desk, volunteer=v.index
        ):
            return
        if outcome == "declined":
            if not self.act(
                s, s.t + rng.randint(30, 180), "decline", self.acts_for(v), note=rng.choice(DECLINE_REASONS)
            ):
                return
            v2 = self.pick_volunteer(r, item, day_of(s.t) + 1, {v.index})
            if v2 is None:
                self.act(s, s.t + DAY, "cancel", staff, note=NO_VOLUNTEER, by="staff")
                return
            v = v2
            if not self.act(s, s.t + rng.randint(30, 120), "dispatch", desk, volunteer=v.index):
                return
        if not self.act(s, s.t + rng.randint(10, 240), "accept", self.acts_for(v)):
            return
        if outcome == "cancelled_dispatched":
            self.act(s, s.t + rng.randint(60, 900), "cancel", staff, note=rng.choice(CANCEL_REASONS), by="staff")
            return
        if outcome == "no_show":
            if not self.act(s, scheduled + 90, "no-show", staff, note=rng.choice(NO_SHOW_NOTES)):
                return
            v2 = self.pick_volunteer(r, item, day_of(s.t) + 1, {v.index})
            if v2 is None:
                self.act(s, s.t + 60, "cancel", staff, note=NO_VOLUNTEER, by="staff")
                return
            v = v2
            if not self.act(s, s.t + 30, "dispatch", desk, volunteer=v.index):
                return
            if not self.act(s, s.t + rng.randint(10, 120), "accept", self.acts_for(v)):
                return
            scheduled += DAY
        actual = max(20, planned + rng.choice((-15, -10, -5, 0, 0, 0, 5, 10, 15, 20)))
        check_in = self.serve(s, v, max(scheduled, s.t + 30), actual)
        if check_in is None or not s.open:
            return
        if outcome == "disputed":
            complaint = rng.choice(DISPUTE_REASONS)
            if not self.call(s, s.t + rng.randint(60, 1440), "complaint", complaint, self.operator(r.bank)):
                return
            if not self.act(s, s.t + 3, "dispute", self.operator(r.bank), note=complaint):
                return
            if rng.random() < 0.7:
                self.act(
                    s,
                    s.t + rng.randint(1, 3) * DAY,
                    "confirm",
                    staff,
                    minutes=max(15, actual - 30),
                    by="staff",
                )
            else:
                self.act(s, s.t + rng.randint(1, 3) * DAY, "cancel", staff, note=DISPUTE_CANCEL, by="staff")
            return
        if not self.act(s, s.t + rng.randint(10, 900), "confirm", staff, minutes=actual, by="staff"):
            return
        self.done_orders.append((s.key, check_in, v, r))
        confirmed = s.t
        rating = int(_weighted(rng, {str(k): w for k, w in RATINGS.items()}))
        reviewed = rng.random() < 0.65
        if rng.random() < 0.65:
            operator = self.operator(r.bank)
            moment = self.next_at(s, confirmed + rng.randint(3, 6) * DAY)
            if moment is None:
                return
            roll = rng.random()
            if roll < 0.15:
                self.add(ReturnVisit(moment, s.key, "not_reached", None, "电话无人接听，改天再打", operator))
                moment = self.next_at(s, moment + rng.randint(1, 2) * DAY)
                if moment is None:
                    return
            elif roll < 0.22:
                self.add(ReturnVisit(moment, s.key, "refused", None, "老人表示不用回访", operator))
                return
            self.add(
                ReturnVisit(
                    moment, s.key, "reached", rating, "老人对服务满意" if rating >= 4 else "老人提出改进意见", operator
                )
            )
            if reviewed:
                self.act(s, moment + 2, "review", operator, rating=rating, note=rng.choice(REVIEWS[rating]))
        elif reviewed:
            self.act(
                s,
                confirmed + rng.randint(60, 2 * DAY),
                "review",
                staff,
                rating=rating,
                note=rng.choice(REVIEWS[rating]),
            )

    def family(self, *people: PersonSpec) -> set[int]:
        """The people and their linked relatives: none of them serves the others (conflicts of interest; the
        demo's banks keep the rule `serve_relatives` off)."""
        ids = {p.index for p in people}
        return (
            ids
            | {link.relative for link in self.links if link.member in ids}
            | {link.member for link in self.links if link.relative in ids}
        )

    def pick_volunteer(self, recipient: PersonSpec, item: Service, day: int, exclude: set[int]) -> PersonSpec | None:
        rng = self.rng
        family = self.family(recipient)
        pool = [v for v in self.active(recipient.bank, "volunteer") if v.index not in family and v.index not in exclude]
        if item.certificate:
            pool = [v for v in pool if self.certified(v, item.certificate, day)]
        if not pool:
            return None
        skilled = [v for v in pool if item.skill and item.skill in v.skills]
        if skilled and rng.random() < 0.8:
            pool = skilled
        near = [v for v in pool if v.org == recipient.org]
        area = [v for v in pool if self.branch_of(v.org) == self.branch_of(recipient.org)]
        roll = rng.random()
        if near and roll < 0.6:
            return rng.choice(near)
        if area and roll < 0.9:
            return rng.choice(area)
        return rng.choice(pool)

    def persona_orders(self) -> None:
        """Orders that give each demo login something to look at and something to do."""
        V, R, L = self.volunteer, self.recipient, self.relative
        item = SERVICE_BY_NAME
        shunhe = self.local("recipient", "顺河社区", 3, R, strict=True)  # the staff login's community
        helpers = self.local("volunteer", "顺河社区", 2, V, avoid=self.family(R, *shunhe))
        gucheng = self.local("recipient", "古城社区", 1, R, avoid=self.family(L))[0]
        own_need = next(iter(self.needs_of(R)), None)

        # reviewed: the recipient ordered on his phone, the volunteer served, he confirmed and reviewed
        s = self.new_order(
            R,
            item["家庭保洁"],
            when(-20, 10),
            channel="app",
            actor="recipient",
            scheduled=when(-19, 9),
            planned=120,
            payer="recipient",
            fixed_payer=True,
            notes="换季了，帮忙把棉被拆洗一下",
        )
        if own_need is not None:
            self.add(NeedAct(when(-20, 10, 5), own_need, "link", "", "staff", s.key))
        self.act(s, when(-20, 14), "dispatch", "staff", volunteer=V.index)
        self.act(s, when(-20, 15, 10), "accept", "volunteer")
        self.serve(s, V, when(-19, 9, 2), 120)
        self.act(s, when(-19, 11, 30), "confirm", "recipient", minutes=120, by="party")
        self.act(
            s,
            when(-19, 12),
            "review",
            "recipient",
            rating=5,
            note="王老师干活细致，屋里收拾得干干净净，还陪我说了会儿话。",
        )
        # confirmed with the code: the son ordered, the volunteer took it from the pool
        s = self.new_order(
            R,
            item["陪同就医"],
            when(-13, 20),
            channel="app",
            actor="relative",
            scheduled=when(-11, 8),
            planned=150,
            notes="父亲去区人民医院复查血压，需要有人陪同挂号取药",
        )
        self.act(s, when(-12, 8, 30), "take", "volunteer", volunteer=V.index)
        self.serve(s, V, when(-11, 8), 150)
        self.act(s, when(-11, 10, 40), "confirm", "volunteer", minutes=150, by="volunteer")
        for at, outcome, satisfaction, note in (
            (when(-8, 16), "not_reached", None, "电话无人接听，明天再打"),
            (when(-7, 10), "reached", 5, "老人说王老师很耐心，全程陪着"),
        ):
            moment = self.next_at(s, at)
            if moment is not None:
                self.add(ReturnVisit(moment, s.key, outcome, satisfaction, note, "operator"))
        # paid from the donation pool, which the volunteer gave to just before
        self.add(LedgerOp(when(-16, 9, 1), "donation", V.index, 120, "自愿捐赠到捐赠池，帮助困难老人"))
        poor = next((p for p in shunhe if POOR & set(p.recipient_categories)), shunhe[1])
        s = self.new_order(
            poor,
            item["餐饮配送"],
            when(-16, 9, 2),
            channel="staff",
            actor="staff",
            scheduled=when(-15, 11),
            planned=60,
            payer="pool",
            fixed_payer=True,
            notes="困难老人，由捐赠池支付",
        )
        self.act(s, when(-16, 10), "dispatch", "staff", volunteer=helpers[1].index)
        self.act(s, when(-16, 13), "accept", self.acts_for(helpers[1]))
        self.serve(s, helpers[1], when(-15, 11), 60)
        self.act(s, when(-15, 14), "confirm", "staff", minutes=60, by="staff")
        self.act(s, when(-14, 10), "review", "staff", rating=5, note="饭菜热乎，送得准时。")
        # bought by the emergency fund: no certified nurse could come (专项基金兜底)
        s = self.new_order(
            R,
            item["医疗护理"],
            when(-9, 9),
            channel="app",
            actor="relative",
            scheduled=when(-8, 9),
            planned=60,
            payer="recipient",
            fixed_payer=True,
            notes="父亲腿上伤口需要每天换药",
        )
        bought = self.next_at(s, when(-7, 10, 30))
        if bought is not None:
            self.orders[s.key].pays_at = bought
            self.add(
                BuyService(
                    bought,
                    s.key,
                    BANK1,
                    MARKET_PROVIDER,
                    "150.00",
                    "持证护理志愿者近期都排不开，由专项基金向护理公司购买服务",
                    "ho_admin",
                )
            )
        # cancelled by the son: his father is staying with him
        s = self.new_order(
            R,
            item["理发"],
            when(-10, 19),
            channel="app",
            actor="relative",
            scheduled=when(-8, 15),
            planned=30,
            notes="老人卧床，需要上门理发",
        )
        self.act(s, when(-9, 8, 20), "cancel", "relative", note="父亲这几天住到我家了，不在家", by="party")
        # completed: the recipient has to confirm it
        s = self.new_order(
            R,
            item["聊天陪伴"],
            when(-3, 18),
            channel="app",
            actor="recipient",
            scheduled=when(-1, 15),
            planned=90,
            payer="recipient",
            fixed_payer=True,
            notes="想找人下象棋",
        )
        self.act(s, when(-2, 9), "dispatch", "staff", volunteer=helpers[0].index)
        self.act(s, when(-2, 10), "accept", self.acts_for(helpers[0]))
        self.serve(s, helpers[0], when(-1, 15), 90)
        # requested: just ordered on the phone
        self.new_order(
            R,
            item["物品代购"],
            when(-1, 19, 30),
            channel="app",
            actor="recipient",
            scheduled=when(1, 10),
            planned=60,
            payer="recipient",
            fixed_payer=True,
            notes="帮忙买一袋大米和几斤鸡蛋",
        )
        # dispatched to the volunteer: she has to accept it
        s = self.new_order(
            shunhe[0],
            item["读书读报"],
            when(-1, 16),
            channel="hotline",
            actor="operator",
            scheduled=when(1, 9, 30),
            planned=60,
            notes="老人喜欢听时事新闻",
        )
        self.call(s, when(-1, 16, 3), "order", "老人来电，想请人读读报纸", "operator")
        self.act(s, when(-1, 17, 30), "dispatch", "operator", volunteer=V.index)
        # accepted by the volunteer: she has to check in when she gets there
        s = self.new_order(
            shunhe[1], item["聊天陪伴"], when(-2, 10), channel="visit", actor="staff", scheduled=when(1, 15), planned=90
        )
        self.act(s, when(-2, 11), "dispatch", "staff", volunteer=V.index)
        self.act(s, when(-2, 19), "accept", "volunteer")
        # accepted by the relative, who volunteers as an electrician
        s = self.new_order(
            gucheng,
            item["家电维修"],
            when(-3, 10),
            channel="staff",
            actor=self.manager(gucheng.org),
            scheduled=when(2, 9),
            planned=60,
            notes="洗衣机不转了",
        )
        if gucheng.index not in self.family(L):  # a tiny demo's only recipient is the relative's father
            self.act(s, when(-3, 11), "dispatch", self.manager(gucheng.org), volunteer=L.index)
            self.act(s, when(-3, 20), "accept", "relative")
        # overdue: nobody dispatched within the rules' 24 hours
        s = self.new_order(
            shunhe[2],
            item["管道疏通"],
            when(-3, 9, 40),
            channel="hotline",
            actor="operator",
            scheduled=when(-1, 9),
            planned=60,
            notes="厨房下水道堵了",
        )
        self.call(s, when(-3, 9, 45), "order", "老人来电，厨房下水道堵了", "operator")
        self.new_order(
            shunhe[0],
            item["心理咨询"],
            when(-2, 16),
            channel="staff",
            actor="staff",
            scheduled=when(1, 14),
            planned=60,
            notes="老伴去世后情绪低落，家属希望有心理咨询师上门",
        )
        # disputed: the family says the volunteer left early
        s = self.new_order(
            shunhe[1], item["家庭保洁"], when(-6, 9), channel="staff", actor="staff", scheduled=when(-4, 9), planned=120
        )
        self.act(s, when(-6, 10), "dispatch", "staff", volunteer=helpers[1].index)
        self.act(s, when(-6, 14), "accept", self.acts_for(helpers[1]))
        self.serve(s, helpers[1], when(-4, 9), 120)
        self.call(s, when(-3, 10), "complaint", DISPUTE_REASONS[0], "operator")
        self.act(s, when(-3, 10, 5), "dispute", "operator", note=DISPUTE_REASONS[0])
        # urgent, minutes ago: a neighbour called the hotline
        s = self.new_order(
            shunhe[2],
            item["紧急救援"],
            ago(50),
            channel="hotline",
            actor="operator",
            scheduled=ago(45),
            planned=60,
            urgent=True,
            notes="老人在家中摔倒，起不来，邻居打来电话",
        )
        self.call(s, ago(48), "order", "邻居来电：老人在家中摔倒，起不来", "operator")
        # in service: the volunteer checked in a little while ago
        s = self.new_order(
            shunhe[0],
            item["日间照料"],
            when(-1, 15),
            channel="visit",
            actor="staff",
            scheduled=ago(45),
            planned=180,
            notes="白天子女上班，需要有人照看",
        )
        self.act(s, when(-1, 16), "dispatch", "staff", volunteer=helpers[0].index)
        self.act(s, when(-1, 18), "accept", self.acts_for(helpers[0]))
        lat, lon = self.coords(shunhe[0])
        self.act(s, ago(40), "check-in", self.acts_for(helpers[0]), lat=lat, lon=lon)

    # -- needs, census, calls, welfare checks

    def needs_of(self, person: PersonSpec) -> list[int]:
        return [k for k, (who, _c, _e) in self.needs.items() if who == person.index]

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
        found_by = found_by or _weighted(rng, {"home_visit": 40, "phone_call": 30, "video_call": 10, "survey": 20})
        self.add(
            NewNeed(
                created,
                key,
                person.index,
                level,
                found_by,
                self.items_for(person),
                rng.choice(NEED_NOTES[level]),
                actor,
            )
        )
        roll = rng.random() if ending else 1.0
        end = 10**9
        if roll < 0.3:
            end = daytime(created + rng.randint(10, 40) * DAY)
            if end < 0:
                self.add(NeedAct(end, key, "met", rng.choice(MET_NOTES), actor))
            else:
                end = 10**9
        elif roll < 0.4:
            end = daytime(created + rng.randint(5, 30) * DAY)
            if end < 0:
                self.add(NeedAct(end, key, "close", rng.choice(CLOSE_REASONS), actor))
            else:
                end = 10**9
        for _ in range(rng.randint(0, 2)):
            at = daytime(created + rng.randint(2, 20) * DAY)
            if at < min(end - 60, 0):
                self.add(NeedAct(at, key, "follow_up", rng.choice(FOLLOW_UPS), actor))
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
            CensusImport(
                self.census_at,
                "运河街道",
                "运河街道2020人口普查老年人名单.csv",
                tuple(p.index for p in people),
                tuple(rows),
                "branch_admin",
            )
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
                self.add(Call(at, kind, bank, None, phone, summary, rng.randint(1, 6), operator))  # an unknown caller
            else:
                m = rng.choice(members)
                self.add(Call(at, kind, m.org, m.index, "", summary, rng.randint(3, 20), operator))

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
                self.add(
                    WelfareCheck(
                        at,
                        self.recipient.index,
                        method,
                        True,
                        False,
                        note,
                        "operator" if method == "phone" else "staff",
                    )
                )
        for person in chosen:
            roll = rng.random()
            if roll < 0.15:
                continue  # never checked: first on the list
            last = rng.randint(-6, -1) if roll < 0.7 else rng.randint(-27, -8)
            days = [last] + ([last - rng.randint(7, 10)] if last - 10 > -29 and rng.random() < 0.6 else [])
            for day in sorted(days):
                method = _weighted(rng, {"phone": 50, "visit": 35, "video": 15})
                actor = self.operator(bank) if method != "visit" else self.manager(person.org)
                at = when(day, rng.randint(9, 17), rng.randrange(0, 60, 5))
                if rng.random() < 0.12:
                    note = rng.choice(WELFARE_CONCERN)
                    self.add(
                        WelfareCheck(
                            at,
                            person.index,
                            method,
                            False,
                            True,
                            note,
                            actor,
                            self.level_for(person.recipient_categories),
                            self.items_for(person),
                        )
                    )
                else:
                    self.add(WelfareCheck(at, person.index, method, True, False, rng.choice(WELFARE_OK), actor))

    # -- goods, redemptions and money

    def goods(self) -> None:
        rng = self.rng
        for spec in self.specs.values():
            if spec.kind != OrgKind.OUTLET:
                continue
            chosen = [g for g in GOODS if g[0].startswith(("大米", "毛巾", "洗衣液")) or rng.random() < 0.5]
            keys = []
            for name, price in chosen:
                key = f"{spec.name}:{name}"
                assert spec.parent is not None
                self.add(
                    NewGoods(
                        when(LAUNCH + 3, 9),
                        key,
                        spec.name,
                        name,
                        price,
                        rng.randint(2, 8) * 10,
                        self.manager(spec.parent),
                    )
                )
                keys.append(key)
            self.outlet_goods[spec.name] = keys

    def redemptions(self, count: int) -> None:
        rng = self.rng
        outlets = sorted(self.outlet_goods)
        shunhe = "顺河社区服务站"
        for at, goods, quantity, handed in (
            (when(-20, 10), "毛巾", 2, True),
            (when(-2, 16), "大米（5公斤）", 1, False),
        ):
            key = next(self.redemption_keys)
            self.add(Redeem(at, key, self.volunteer.index, f"{shunhe}:{goods}", quantity, "staff"))
            if handed:
                self.add(HandOver(at + 5, key, "staff"))
        for _ in range(count):
            outlet = rng.choice(outlets)
            home = self.specs[outlet].parent
            assert home is not None
            near = [
                v
                for v in self.active(self.specs[outlet].bank, "volunteer")
                if self.branch_of(v.org) == self.branch_of(home)
            ]
            if not near:
                continue
            member = rng.choice(near)
            key = next(self.redemption_keys)
            at = self.daytime_at(SETTLED + 2, -1, 9, 17)
            actor = self.manager(home)
            self.add(
                Redeem(at, key, member.index, rng.choice(self.outlet_goods[outlet]), rng.choice((1, 1, 1, 2)), actor)
            )
            if at < when(-2, 0) or rng.random() < 0.5:
                self.add(HandOver(at + rng.randint(5, 60), key, actor))
        self.add(Restock(when(-10, 9), f"{shunhe}:大米（5公斤）", 30, "街道采购补货", "staff"))
        self.add(StockCount(when(-5, 17), f"{shunhe}:毛巾", 1, "月末盘点，毛巾少 1 条，已登记说明", "staff"))

    def money(self) -> None:
        c1, c2 = COMPANIES[BANK1], COMPANIES[BANK2]
        entries = [
            Money(when(LAUNCH + 1, 9), BANK1, "income", "60000.00", LAUNCH - 10, "区民政局拨付时间银行年度运营经费", "ho_admin", source="government"),
            Money(when(LAUNCH + 5, 9), BANK1, "income", "20000.00", LAUNCH + 5, "区民政局拨付专项基金（服务兜底）", "ho_admin", source="government", fund="emergency"),
            Money(when(-70, 10), BANK1, "income", "15000.00", -70, "区慈善总会“助老时间银行”项目资助", "ho_admin", source="society", donor="台儿庄区慈善总会"),
            Money(when(-88, 15), BANK1, "income", "8000.00", -88, "爱心企业捐赠", "ho_admin", source="enterprise", donor=c1[0]),
            Money(when(-52, 11), BANK1, "income", "5000.00", -52, "重阳节爱心企业捐赠", "ho_admin", source="enterprise", donor=c1[1]),
            Money(when(-50, 16), "顺河社区", "income", "1260.50", -50, "居民爱心捐款（重阳节募捐）", "staff", source="residents"),
            Money(when(-40, 10), "泥沟村", "income", "860.00", -41, "村民自愿捐款", "ho_admin", source="residents"),
            Money(when(LAUNCH + 2, 14), BANK1, "expense", "8600.00", LAUNCH + 2, "采购兑换物品：大米、食用油、毛巾等", "ho_admin", kind="goods_purchase"),
            Money(when(LAUNCH + 3, 15), BANK1, "expense", f"{self.insured_count[BANK1] * 30 or 30}.00", LAUNCH + 2, f"志愿者团体意外险保费（{self.insured_count[BANK1]} 人 × 30 元）", "ho_admin", kind="insurance"),
            Money(when(-74, 10), BANK1, "expense", "1200.00", -75, "急救技能培训讲师费和教材", "ho_admin", kind="training"),
            Money(when(-35, 15), BANK1, "expense", "1500.00", -35, "“最美志愿者”表彰奖品", "ho_admin", kind="awards"),
            Money(when(-60, 11), BANK1, "expense", "800.00", -60, "宣传折页和服务站标识制作", "ho_admin", kind="operations"),
            Money(when(-25, 10), "运河街道", "expense", "600.00", -25, "为失能老人家庭购买深度保洁服务", "branch_admin", kind="market_services", provider="台儿庄区洁康家政服务有限公司"),
            Money(when(LAUNCH + 1, 10), BANK2, "income", "20000.00", LAUNCH - 5, "市民政局拨付“爱心时间银行”试点经费", "nc_admin", source="government"),
            Money(when(-85, 10), BANK2, "income", "3000.00", -85, "市志愿服务联合会资助", "nc_admin", source="society", donor="南充市志愿服务联合会"),
            Money(when(-60, 14), BANK2, "income", "5000.00", -60, "爱心企业捐赠", "nc_admin", source="enterprise", donor=c2[0]),
            Money(when(-45, 19), "驻春路社区", "income", "1830.00", -45, "“坝坝会”居民自愿募捐", "nc_admin", source="residents"),
            Money(when(LAUNCH + 4, 15), BANK2, "expense", f"{self.insured_count[BANK2] * 30 or 30}.00", LAUNCH + 4, f"志愿者团体意外险保费（{self.insured_count[BANK2]} 人 × 30 元）", "nc_admin", kind="insurance"),
            Money(when(-70, 10), BANK2, "expense", "1200.00", -70, "宣传展板和“云端会”直播", "nc_admin", kind="operations"),
            Money(when(-30, 10), BANK2, "expense", "2000.00", -30, "采购兑换物品：粮油", "nc_admin", kind="goods_purchase"),
        ]  # fmt: skip
        for entry in entries:
            self.add(entry)
        self.add(
            InKind(
                when(-15, 10),
                "顺河社区",
                "enterprise",
                "1250.00",
                "洗衣液 50 瓶",
                c1[2],
                "爱心企业捐赠物品，入顺河社区服务站",
                "顺河社区服务站:洗衣液（2公斤）",
                50,
                "staff",
            )
        )
        if "驻春路社区服务站" in self.outlet_goods:
            self.add(
                InKind(
                    when(-20, 10),
                    "驻春路社区",
                    "enterprise",
                    "900.00",
                    "大米 20 袋",
                    c2[1],
                    "爱心企业捐赠物品",
                    "驻春路社区服务站:大米（5公斤）",
                    20,
                    "nc_admin",
                )
            )

    # -- members who registered lately, the settlement, staff on duty

    def registrations(self) -> None:
        rng = self.rng
        for person in self.people:
            if person.approved:
                continue
            day = -rng.randint(4, 12) if person.approve_later else -rng.randint(1, 10)
            at = when(day, rng.randint(8, 21), rng.randrange(0, 60, 5))
            self.add(Register(at, person.index))
            if person.approve_later:
                self.add(Approve(daytime(at + rng.randint(1, 2) * DAY + 60), person.index, self.manager(person.org)))

    def settlement_and_duty(self) -> None:
        self.add(Settle(when(SETTLED + 1, 7, 30), BANK1, SETTLED, "ho_admin"))
        self.add(Settle(when(SETTLED + 1, 7, 40), BANK2, SETTLED, "nc_admin"))
        for login in ("staff", "operator", "nc_admin"):
            self.add(Duty(when(LAUNCH, 17, 30), login))

    # -- the simulation: balances, holds, stock, in time order

    def resolve(self) -> list[Step]:
        return _Simulation(self).run()


class _Simulation:
    """Walks the drafts in time order with the balances the actions will see, and decides what each draft
    becomes: nobody overdraws, every order's payer can pay, no redemption exceeds its bucket or the stock.

    Money an open order may still cost is held back (`held`), so later spending cannot take it. An order paid
    from the recipient's time never spans the settlement, which turns part of `earned` into `goods`.
    """

    def __init__(self, timeline: _Timeline) -> None:
        self.tl = timeline
        self.rng = timeline.rng
        self.balance = {p.index: [0, 0, 0] for p in timeline.people}  # earned, goods, reserve
        self.held = {p.index: 0 for p in timeline.people}
        self.pool = {BANK1: 0, BANK2: 0}
        self.pool_held = {BANK1: 0, BANK2: 0}
        self.stock: dict[str, int] = {}
        self.price: dict[str, int] = {}
        self.dropped: set[int] = set()
        self.serving: dict[int, int] = {}  # order → its volunteer now
        self.settle_at = when(SETTLED + 1, 7, 30)

    def free(self, index: int) -> int:
        b = self.balance[index]
        return b[0] + b[2] - self.held[index]

    def pool_free(self, bank: str) -> int:
        return self.pool[bank] - self.pool_held[bank]

    def pay(self, index: int, minutes: int) -> None:
        """Reserve first, then earned, as the ledger's actions do."""
        b = self.balance[index]
        assert b[0] + b[2] >= minutes, "the plan would overdraw"
        from_reserve = min(minutes, max(b[2], 0))
        b[2] -= from_reserve
        b[0] -= minutes - from_reserve

    def run(self) -> list[Step]:
        steps: list[Step] = []
        for _at, _seq, draft in sorted(self.tl.drafts, key=lambda d: (d[0], d[1])):
            steps += self.decide(draft)
        return steps

    def decide(self, step: Step) -> list[Step]:
        match step:
            case LedgerOp():
                self.ledger(step)
            case RecordService():
                self.balance[step.volunteer][0] += step.minutes * MULTIPLIERS[SERVICE_BY_NAME[step.item].tier]
            case ServiceDraft():
                return [self.service(step)]
            case DonationDraft():
                minutes = min(self.free(step.donor), step.wish)
                if minutes <= 0:
                    return []
                return self.decide(LedgerOp(step.at, "donation", step.donor, minutes, "自愿捐赠到捐赠池，帮助困难老人"))
            case WithdrawalDraft():
                candidates = [r for r in self.tl.active(step.bank, "recipient") if self.free(r.index) >= 60]
                if not candidates:
                    return []
                r = self.rng.choice(candidates)
                minutes = min(self.free(r.index) // 30 * 30, step.wish)
                memo = f"兑换服务：{step.item} {minutes} 分钟"
                return self.decide(LedgerOp(step.at, "withdrawal", r.index, minutes, memo))
            case TransferDraft():
                minutes = min(self.free(step.giver) // 30 * 30, step.wish)
                if minutes <= 0:
                    return []
                memo = f"转赠亲属{self.tl.people[step.receiver].name}（{step.relation}孝心转赠）"
                return self.decide(LedgerOp(step.at, "transfer", step.giver, minutes, memo, other=step.receiver))
            case NewOrder():
                return [self.new_order(step)]
            case OrderAct():
                self.order_act(step)
            case BuyService():
                info = self.tl.orders[step.order]
                assert info.payer == "recipient"
                self.held[info.recipient] -= info.hold
                self.pay(info.recipient, info.hold)
            case Settle():
                for person in self.tl.people:
                    b = self.balance[person.index]
                    if person.bank == step.bank and b[0] > 0:
                        goods = b[0] * GOODS_SHARE_PERCENT // 100
                        b[1], b[2], b[0] = b[1] + goods, b[2] + b[0] - goods, 0
            case NewGoods():
                self.stock[step.key], self.price[step.key] = step.stock, step.price
            case Restock():
                self.stock[step.goods] += step.quantity
            case InKind():
                self.stock[step.goods] += step.quantity
            case StockCount():
                counted = max(0, self.stock[step.goods] - step.shortfall)
                self.stock[step.goods] = counted
                return [dataclasses.replace(step, counted=counted)]
            case Redeem():
                b = self.balance[step.member]
                quantity = step.quantity
                while quantity and (b[1] < self.price[step.goods] * quantity or self.stock[step.goods] < quantity):
                    quantity -= 1
                if not quantity:
                    self.dropped.add(step.key)
                    return []
                b[1] -= self.price[step.goods] * quantity
                self.stock[step.goods] -= quantity
                return [dataclasses.replace(step, quantity=quantity)]
            case HandOver():
                if step.redemption in self.dropped:
                    return []
        return [step]

    def ledger(self, op: LedgerOp) -> None:
        b = self.balance[op.member]
        bank = self.tl.people[op.member].bank
        if op.action == "adjustment":
            b[("earned", "goods", "reserve").index(op.bucket)] += op.minutes
        elif op.action == "deposit":
            b[0] += op.minutes
            if op.payer == "recipient":
                assert op.other is not None and self.free(op.other) >= op.minutes
                self.pay(op.other, op.minutes)
            else:
                assert self.pool_free(bank) >= op.minutes
                self.pool[bank] -= op.minutes
        else:
            assert self.free(op.member) >= op.minutes, "the plan would overdraw"
            self.pay(op.member, op.minutes)
            if op.other is not None:
                self.balance[op.other][2] += op.minutes
            elif op.action == "donation":
                self.pool[bank] += op.minutes

    def service(self, draft: ServiceDraft) -> Step:
        """A service arranged by the sub-branch: paid from the recipient's time, the pool, or a subsidy."""
        tl = self.tl
        volunteer, recipient = tl.people[draft.volunteer], tl.people[draft.recipient]
        item = SERVICE_BY_NAME[draft.item]
        mult = MULTIPLIERS[item.tier]
        minutes = draft.base * mult
        memo = f"为{recipient.name}提供{item.name} {draft.base} 分钟（{TIER_NAMES[item.tier]} ×{mult}）"
        roll = self.rng.random()
        payer = ""
        if roll < 0.25 and self.free(recipient.index) >= minutes:
            payer = "recipient"
        elif roll < 0.6 and POOR & set(recipient.recipient_categories) and self.pool_free(volunteer.bank) >= minutes:
            payer = "pool"
        if payer:
            op = LedgerOp(draft.at, "deposit", volunteer.index, minutes, memo, payer=payer, other=recipient.index)
            self.ledger(op)
            return op
        served = draft.at - draft.base - 30
        record = RecordService(
            draft.at, volunteer.index, item.name, draft.base, served, memo, draft.actor, recipient.index
        )
        self.balance[volunteer.index][0] += minutes
        return record

    def new_order(self, step: NewOrder) -> Step:
        info = self.tl.orders[step.key]
        payer = step.payer
        spans_settlement = step.at < self.settle_at and (info.pays_at is None or info.pays_at > self.settle_at)
        if payer == "recipient":
            if self.free(info.recipient) >= info.hold and not spans_settlement:
                self.held[info.recipient] += info.hold
            else:
                assert not info.fixed_payer, "a story's payer cannot pay"
                payer = "subsidy"
        if payer == "pool":
            if self.pool_free(info.bank) >= info.hold:
                self.pool_held[info.bank] += info.hold
            else:
                assert not info.fixed_payer, "a story's payer cannot pay"
                payer = "subsidy"
        info.payer = payer
        return step if payer == step.payer else dataclasses.replace(step, payer=payer)

    def release(self, info: _OrderInfo) -> None:
        if info.payer == "recipient":
            self.held[info.recipient] -= info.hold
        elif info.payer == "pool":
            self.pool_held[info.bank] -= info.hold

    def order_act(self, step: OrderAct) -> None:
        info = self.tl.orders[step.key]
        if step.action in ("dispatch", "take"):
            assert step.volunteer is not None
            self.serving[step.key] = step.volunteer
        elif step.action == "cancel":
            self.release(info)
        elif step.action == "confirm":
            assert step.minutes is not None
            credited = step.minutes * info.multiplier
            self.release(info)
            if info.payer == "recipient":
                self.pay(info.recipient, credited)
            elif info.payer == "pool":
                self.pool[info.bank] -= credited
            self.balance[self.serving[step.key]][0] += credited


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
    census = max(2, round(members * 0.015))
    bank2 = max(6, round(members * 0.22))
    bank1 = members - bank2 - 3  # the three member logins are in bank 1
    active2 = bank2 - pending2
    # 103 retired cadres brought in 630 residents: about one in seven.
    cadres = max(1, round(active2 * 103 / 733))
    p.bank_members(BANK1, bank1 - pending1 - census)
    p.bank_members(BANK2, active2, cadres=cadres)
    p.pending(BANK1, pending1, approve_later - approve_later // 3, first_at="顺河社区")
    p.pending(BANK2, pending2, approve_later // 3)
    p.census(BANK1, census, ("顺河社区", "古城社区", "华兴社区"))

    t = _Timeline(p, volunteer, recipient, relative)
    t.catalogue()
    t.persona_history()
    # Bank 1 has run since 2019 on paper; bank 2 since October 2021 (110 services, 203 hours in its report).
    t.history(BANK1, services_per_volunteer=2.5, opening_share=0.65, opening_scale=1.0)
    t.history(BANK2, services_per_volunteer=1.0, opening_share=0.3, opening_scale=0.15)
    t.safety()
    t.goods()
    t.needs_register(BANK1, 0.35, 60)
    t.needs_register(BANK2, 0.3, 15)
    t.census_import()
    # a few dozen orders, in proportion to the bank, and the stories of the demo logins
    t.random_orders(BANK1, min(60, max(6, round(members * 0.12))))
    t.random_orders(BANK2, min(12, max(2, round(members * 0.02))))
    t.persona_orders()
    t.incidents()
    t.calls(BANK1, min(20, 4 + members // 40))
    t.calls(BANK2, min(6, 1 + members // 150))
    t.welfare_checks(BANK1, 40)
    t.welfare_checks(BANK2, 10)
    t.redemptions(min(30, max(3, members // 15)))
    t.money()
    t.registrations()
    t.settlement_and_duty()
    return Plan(seed=seed, orgs=p.orgs, people=p.people, links=p.links, menus=t.menus, steps=t.resolve())


# --------------------------------------------------------------------------------------------------------------
# Applying the plan through the actions


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
    now = timezone.now()
    plan = build_plan(members=members, seed=seed)
    with transaction.atomic(), _progress(progress) as bar:
        result = _Applier(plan, actor, bar, now).run()
    result.seconds = time.perf_counter() - started
    return result


class Clock:
    """The demo's time while the plan is applied: `timezone.now()` answers it. It never goes back, so ledger
    and audit timestamps stay in the order of their chains."""

    def __init__(self, start: dt.datetime) -> None:
        self.current = start

    def now(self) -> dt.datetime:
        return self.current

    def set(self, moment: dt.datetime) -> None:
        self.current = max(self.current, moment)


@contextmanager
def _following(clock: Clock) -> Iterator[None]:
    with mock.patch("django.utils.timezone.now", clock.now):
        yield


class _Applier:
    def __init__(self, plan: Plan, root: User | None, bar: Progress, now: dt.datetime) -> None:
        self.plan = plan
        self.root = root
        self.bar = bar
        self.real_now = now
        self.today = timezone.localdate(now)
        self.midnight = timezone.make_aware(dt.datetime.combine(self.today, dt.time.min))
        self.clock = Clock(self.moment(when(LAUNCH, 7)))
        self.specs = {o.name: o for o in plan.orgs}
        self.orgs: dict[str, Org] = {}
        self.users: dict[str, User] = {}
        self.members: dict[int, Member] = {}
        self.items: dict[tuple[str, str], ServiceItem] = {}
        self.orders: dict[int, Order] = {}
        self.needs: dict[int, Need] = {}
        self.trainings: dict[str, TrainingSession] = {}
        self.incidents: dict[str, IncidentReport] = {}
        self.goods: dict[str, Goods] = {}
        self.redemptions: dict[int, Redemption] = {}
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

    def second_person(self, maker: str, made: object) -> None:
        """A credit above the approval threshold waits: the second person approves it at once."""
        if isinstance(made, Approval):
            second = self.second_of(maker)
            assert second is not None
            do_approve(second, made)

    def waiting_credit(self) -> None:
        """The community's staff bring over a paper ledger page: above the threshold, so it waits for the
        branch admin (or any second person of the subtree) on the 待审核 page."""
        volunteer = Member.objects.filter(user__username="volunteer").first()
        staff = self.users.get("staff")
        if volunteer is None or staff is None:
            return
        do_adjustment(
            staff,
            member=volunteer,
            minutes=720,
            bucket="earned",
            reason="纸质台账补录：去年社区助老服务 12 小时",
            idempotency_key=self.key(),
        )

    def member(self, index: int | None) -> Member | None:
        return self.members[index] if index is not None else None

    def item(self, index: int, name: str) -> ServiceItem:
        return self.items[(self.plan.people[index].bank, name)]

    def key(self) -> str:
        return f"demo-{next(self.keys)}"

    # -- the run

    def run(self) -> DemoResult:
        with _following(self.clock):
            self.prologue()
            seed_notices(self.orgs, self.users)  # launch-day notices: one pinned, one later expired, staff-only
            step_task = self.bar.add_task("时间线 timeline", total=len(self.plan.steps))
            for step in self.plan.steps:
                self.at(step.at)
                self.apply(step)
                self.bar.advance(step_task)
            seed_teams(self.orgs, self.users)  # teams and group activities, at the end: the clock is about now
            seed_evaluation(self.orgs, self.users)  # indicators, assessments, a complaint, penalties, awards
            self.waiting_credit()  # one large credit left for a second person to approve (待审核)
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
        for spec in plan.orgs:
            creator = self.users.get("ho_admin" if spec.bank == BANK1 else "nc_admin", self.root)
            parent = self.orgs[spec.parent] if spec.parent else None
            self.orgs[spec.name] = do_create_org(creator, name=spec.name, kind=spec.kind, parent=parent)
            if spec.kind == OrgKind.HEAD_OFFICE:
                # the head office admin comes first, and creates the rest of the tree and the other staff
                admin = next(s for s in STAFF_LOGINS if s.org == spec.name and s.role == Role.HEAD_OFFICE_ADMIN)
                self.users[admin.username] = _staff(self.root, admin, self.orgs)
                bar.advance(step)
            bar.advance(step)
        for login in STAFF_LOGINS:
            if login.username not in self.users:
                self.users[login.username] = _staff(self.users["ho_admin"], login, self.orgs)
                bar.advance(step)

        self.at(when(LAUNCH, 8, 30))
        for bank, names in ((BANK1, [s.name for s in (*HOME_SERVICES, *GROUP_SERVICES)]), (BANK2, BANK2_SERVICES)):
            owner = self.users["ho_admin" if bank == BANK1 else "nc_admin"]
            for name in names:
                s = SERVICE_BY_NAME[name]
                self.items[(bank, name)] = do_create_service_item(
                    owner,
                    head_office=self.orgs[bank],
                    name=s.name,
                    category=s.category,
                    tier=s.tier,
                    requires_certificate=s.certificate or None,
                    description=s.description,
                )
        self.at(when(LAUNCH, 9))
        for menu in plan.menus:
            bank = self.specs[menu.org].bank
            do_set_menu_entry(
                self.users[manager_of(menu.org, self.specs)],
                org=self.orgs[menu.org],
                item=self.items[(bank, menu.item)],
                times=menu.times,
                place=menu.place,
            )

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
        referred_by = self.members[person.referrer].pk if person.referrer is not None else None
        member = do_register_member(
            registrar,
            home_org=self.orgs[person.org],
            data=person.member_input(referred_by),
            login=(person.login, DEMO_PASSWORD) if person.login else None,
            approved=person.approved,
        )
        self.members[person.index] = member
        if person.login:
            assert member.user is not None
            self.users[person.login] = member.user

    def apply(self, step: Step) -> None:
        match step:
            case LedgerOp():
                self.ledger(step)
            case RecordService():
                volunteer = self.members[step.volunteer]
                rec, _replayed = order_actions.do_service_record(
                    self.maker(step.actor),
                    volunteer=volunteer,
                    service_item=self.item(step.volunteer, step.item),
                    minutes=step.minutes,
                    served_at=self.moment(step.served_at),
                    recipient=self.member(step.recipient),
                    memo=step.memo,
                    idempotency_key=self.key(),
                )
                self.second_person(step.actor, rec)
            case Register():
                self.register(self.plan.people[step.person], None)
            case Approve():
                self.members[step.person] = do_approve_member(self.user(step.actor), self.members[step.person])
            case Duty():
                user = self.user(step.login)
                assert user is not None
                do_set_duty(user, on_duty=True)
            case Insure() | Certify() | Train() | Attend() | Incident() | IncidentAct():
                self.safety(step)
            case NewOrder() | OrderAct() | BuyService():
                self.order(step)
            case NewNeed() | NeedAct() | CensusImport():
                self.need(step)
            case Call() | ReturnVisit() | WelfareCheck():
                self.hotline(step)
            case NewGoods() | Redeem() | HandOver() | Restock() | StockCount():
                self.shop(step)
            case Money() | InKind():
                self.money(step)
            case Settle():
                do_settle(self.user(step.actor), self.orgs[step.bank], self.day(step.period_end))
            case _:
                raise AssertionError(f"unknown step {step!r}")

    def ledger(self, op: LedgerOp) -> None:
        member = self.members[op.member]
        person = self.plan.people[op.member]
        manager = manager_of(person.org, self.specs)
        staff = self.users[manager]
        key = self.key()
        if op.action == "adjustment":
            made, _replayed = do_adjustment(
                self.maker(manager),
                member=member,
                minutes=op.minutes,
                bucket=op.bucket,
                reason=op.memo,
                idempotency_key=key,
            )
            self.second_person(manager, made)
        elif op.action == "deposit":
            do_deposit(
                staff,
                volunteer=member,
                minutes=op.minutes,
                payer=op.payer,
                payer_member=self.member(op.other),
                kind=TransactionKind.SERVICE_REDEMPTION if op.payer == "recipient" else TransactionKind.DEPOSIT,
                memo=op.memo,
                idempotency_key=key,
            )
        elif op.action == "withdrawal":
            do_withdrawal(staff, member=member, minutes=op.minutes, memo=op.memo, idempotency_key=key)
        else:
            # transfers and donations are the member's own acts: by their login if they have one
            do_transfer(
                self.users.get(person.login) if person.login else None,
                from_member=member,
                to_member=self.member(op.other),
                minutes=op.minutes,
                kind="relative" if op.action == "transfer" else "donation",
                memo=op.memo,
                idempotency_key=key,
            )

    def safety(self, step: Step) -> None:
        match step:
            case Insure():
                members = [self.members[i] for i in step.members]
                dates = {"starts_on": self.day(step.starts), "ends_on": self.day(step.ends)}
                if step.group:
                    do_add_group_policy(
                        self.user(step.actor), members, insurer=step.insurer, policy_number=step.number, **dates
                    )
                else:
                    do_add_insurance_policy(
                        self.user(step.actor), members[0], insurer=step.insurer, policy_number=step.number, **dates
                    )
            case Certify():
                do_add_certificate(
                    self.user(step.actor),
                    self.members[step.member],
                    kind=step.kind,
                    issuer=step.issuer,
                    valid_from=self.day(step.valid_from),
                    valid_until=self.day(step.valid_until),
                )
            case Train():
                self.trainings[step.key] = do_create_training(
                    self.user(step.actor),
                    org=self.orgs[step.org],
                    title=step.title,
                    held_on=self.day(step.held_on),
                    kind=step.kind,
                    topic=step.topic,
                    place=step.place,
                    trainer=step.trainer,
                    grants_certificate=step.grants or None,
                )
            case Attend():
                rows = [
                    AttendanceInput(self.members[m], attended, passed, Decimal(score) if score else None)
                    for m, attended, passed, score in step.rows
                ]
                do_record_attendance(self.user(step.actor), self.trainings[step.training], rows)
            case Incident():
                self.incidents[step.key] = do_report_incident(
                    self.user(step.actor),
                    order=self.orders[step.order] if step.order is not None else None,
                    volunteer=self.member(step.volunteer),
                    recipient=self.member(step.recipient),
                    occurred_at=self.moment(step.occurred),
                    what_happened=step.what,
                    place=step.place,
                    injury=bool(step.injury),
                    injury_description=step.injury,
                )
            case IncidentAct():
                actor, incident = self.user(step.actor), self.incidents[step.key]
                if step.action == "follow_up":
                    do_add_incident_follow_up(actor, incident, step.note)
                elif step.action == "decide":
                    do_decide_responsibility(actor, incident, responsibility=step.responsibility, note=step.note)
                elif step.action == "claim":
                    policy = None
                    if step.policy:
                        assert incident.volunteer_id is not None
                        policy = InsurancePolicy.objects.get(member_id=incident.volunteer_id, policy_number=step.policy)
                    do_update_claim(
                        actor,
                        incident,
                        claim_status=step.claim_status,
                        policy=policy,
                        claim_number=step.claim_number or None,
                        note=step.note,
                    )
                else:
                    do_close_incident(actor, incident, step.note)

    def order(self, step: Step) -> None:
        match step:
            case NewOrder():
                self.orders[step.key] = order_actions.do_create_order(
                    self.user(step.actor),
                    recipient=self.members[step.recipient],
                    service_item=self.item(step.recipient, step.item),
                    scheduled_start=self.moment(step.scheduled),
                    planned_minutes=step.planned,
                    payer=step.payer,
                    channel=step.channel,
                    notes=step.notes,
                    urgent=step.urgent,
                )
            case OrderAct():
                self.orders[step.key] = self.order_act(step)
            case BuyService():
                self.orders[step.order], _entry = do_buy_market_service(
                    self.user(step.actor),
                    self.orders[step.order],
                    fund_org=self.orgs[step.fund_org],
                    provider=step.provider,
                    amount=step.amount,
                    note=step.note,
                    unfillable=True,
                )

    def order_act(self, step: OrderAct) -> Order:
        actor, order = self.user(step.actor), self.orders[step.key]
        volunteer = self.member(step.volunteer)
        where = (Decimal(step.lat), Decimal(step.lon)) if step.lat else (None, None)
        match step.action:
            case "dispatch":
                assert volunteer is not None
                return order_actions.do_dispatch(actor, order, volunteer)
            case "take":
                assert volunteer is not None
                return order_actions.do_take(actor, order, volunteer)
            case "accept":
                return order_actions.do_accept(actor, order)
            case "decline":
                return order_actions.do_decline(actor, order, step.note)
            case "no-show":
                return order_actions.do_no_show(actor, order, step.note)
            case "check-in":
                return order_actions.do_check_in(actor, order, *where)
            case "check-out":
                return order_actions.do_check_out(actor, order, *where)
            case "confirm":
                return order_actions.do_confirm(
                    actor,
                    order,
                    actual_minutes=step.minutes,
                    code=order.code if step.by == "volunteer" else None,
                    by_staff=step.by == "staff",
                    by_volunteer=step.by == "volunteer",
                )
            case "review":
                assert step.rating is not None
                return order_actions.do_review(actor, order, rating=step.rating, comment=step.note)
            case "cancel":
                return order_actions.do_cancel(actor, order, reason=step.note, by_staff=step.by == "staff")
            case "dispute":
                return order_actions.do_dispute(actor, order, reason=step.note)
        raise AssertionError(f"unknown order action {step.action}")

    def need(self, step: Step) -> None:
        match step:
            case NewNeed():
                self.needs[step.key] = do_create_need(
                    self.user(step.actor),
                    recipient=self.members[step.recipient],
                    level=step.level,
                    found_by=step.found_by,
                    item_ids=[self.item(step.recipient, name).pk for name in step.items],
                    notes=step.notes,
                )
            case NeedAct():
                actor, need = self.user(step.actor), self.needs[step.key]
                if step.action == "follow_up":
                    do_add_follow_up(actor, need, note=step.note)
                elif step.action == "met":
                    do_add_follow_up(actor, need, note=step.note, status="met")
                elif step.action == "close":
                    do_close_need(actor, need, reason=step.note)
                else:
                    assert step.order is not None
                    do_link_order(actor, need, self.orders[step.order])
            case CensusImport():
                self.census(step)

    def census(self, step: CensusImport) -> None:
        """人口普查导入: the file is checked (a dry run with its report), then confirmed."""
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            ("姓名", "身份证号", "性别", "出生日期", "联系电话", "家庭住址", "所属社区", "对象类别", "需求描述")
        )
        writer.writerows(step.rows)
        actor, scope = self.user(step.actor), self.orgs[step.org]
        checked = check_table(scope, read_table(step.filename, buffer.getvalue().encode()))
        imp = do_create_census_import(actor, org=scope, filename=step.filename, checked=checked)
        imp = do_confirm_census_import(actor, imp)
        written = {row["row"]: row for row in imp.report["rows"] if row.get("member_id")}
        for n, person in enumerate(step.people):
            row = written[n + 2]  # the header is row 1
            self.members[person] = Member.objects.get(pk=row["member_id"])

    def hotline(self, step: Step) -> None:
        match step:
            case Call():
                member = self.member(step.member)
                ended = self.moment(step.at)
                do_log_call(
                    self.user(step.actor),
                    org=self.orgs[step.org] if member is None else None,
                    kind=step.kind,
                    summary=step.summary,
                    started_at=ended - dt.timedelta(minutes=step.minutes),
                    ended_at=ended,
                    member=member,
                    phone=step.phone,
                    order=self.orders[step.order] if step.order is not None else None,
                    need=self.needs[step.need] if step.need is not None else None,
                )
            case ReturnVisit():
                do_record_return_visit(
                    self.user(step.actor),
                    order=self.orders[step.order],
                    outcome=step.outcome,
                    satisfaction=step.satisfaction,
                    note=step.note,
                )
            case WelfareCheck():
                need = None
                if step.need_level:
                    items = [self.item(step.member, name).pk for name in step.need_items]
                    need = NeedSpec(level=step.need_level, notes=step.note, item_ids=items)
                do_record_welfare_check(
                    self.user(step.actor),
                    member=self.members[step.member],
                    method=step.method,
                    found_ok=step.found_ok,
                    health_changed=step.health_changed,
                    note=step.note,
                    need=need,
                )

    def shop(self, step: Step) -> None:
        match step:
            case NewGoods():
                self.goods[step.key] = do_create_goods(
                    self.user(step.actor),
                    outlet=self.orgs[step.outlet],
                    name=step.name,
                    price_minutes=step.price,
                    stock=step.stock,
                )
            case Redeem():
                goods = self.goods[step.goods]
                self.redemptions[step.key], _replayed = do_redeem(
                    self.user(step.actor),
                    member=self.members[step.member],
                    goods=goods,
                    quantity=step.quantity,
                    outlet=self.orgs[step.goods.split(":")[0]],
                    idempotency_key=self.key(),
                )
            case HandOver():
                do_hand_over(self.user(step.actor), self.redemptions[step.redemption])
            case Restock():
                self.goods[step.goods] = do_restock(
                    self.user(step.actor), self.goods[step.goods], quantity=step.quantity, note=step.note
                )
            case StockCount():
                self.goods[step.goods] = do_stock_count(
                    self.user(step.actor), self.goods[step.goods], counted=step.counted, note=step.note
                )

    def money(self, step: Step) -> None:
        match step:
            case Money():
                entry = EntryInput(
                    direction=step.direction,
                    amount=step.amount,
                    occurred_on=self.day(step.occurred_on),
                    source=step.source,
                    kind=step.kind,
                    fund=step.fund,
                    description=step.description,
                    donor_name=step.donor,
                    provider=step.provider,
                )
                do_record_entry(self.user(step.actor), self.orgs[step.org], entry, idempotency_key=self.key())
            case InKind():
                goods = self.goods[step.goods]
                do_record_in_kind(
                    self.user(step.actor),
                    self.orgs[step.org],
                    source=step.source,
                    estimated_value=step.value,
                    occurred_on=self.day(day_of(step.at)),
                    item_description=step.item,
                    donor_name=step.donor,
                    description=step.description,
                    stock=StockInput(outlet=self.orgs[step.goods.split(":")[0]], quantity=step.quantity, goods=goods),
                    idempotency_key=self.key(),
                )


def _staff(actor: User | None, login: DemoLogin, orgs: dict[str, Org]) -> User:
    return do_create_staff(
        actor, org=orgs[login.org], username=login.username, password=login.password, name=login.name, role=login.role
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
