"""The demo world's service catalogue (制单) and the communities' menus, which `seed_catalogue` and `seed_menus`
create on launch day."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from timebank.catalogue.actions import do_create_service_item, do_set_menu_entry
from timebank.catalogue.models import ServiceItem
from timebank.orgs.demo import BANK1, BANK2, OrgSpec, manager_of
from timebank.orgs.models import Org, User


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


@dataclass(frozen=True)
class MenuSpec:
    """A service a community publishes on its menu, with its times and place."""

    org: str
    item: str
    times: str
    place: str


def seed_catalogue(users: Mapping[str, User], orgs: Mapping[str, Org]) -> dict[tuple[str, str], ServiceItem]:
    """Each head office's catalogue, made by its admin: bank 1 has every service, bank 2 its smaller list.
    Answers the items by (bank, name)."""
    items: dict[tuple[str, str], ServiceItem] = {}
    for bank, names in ((BANK1, [s.name for s in (*HOME_SERVICES, *GROUP_SERVICES)]), (BANK2, BANK2_SERVICES)):
        owner = users["ho_admin" if bank == BANK1 else "nc_admin"]
        for name in names:
            s = SERVICE_BY_NAME[name]
            items[(bank, name)] = do_create_service_item(
                owner,
                head_office=orgs[bank],
                name=s.name,
                category=s.category,
                tier=s.tier,
                requires_certificate=s.certificate or None,
                description=s.description,
            )
    return items


def seed_menus(
    menus: Sequence[MenuSpec],
    specs: Mapping[str, OrgSpec],
    users: Mapping[str, User],
    orgs: Mapping[str, Org],
    items: Mapping[tuple[str, str], ServiceItem],
) -> None:
    """The communities' menus, each set by the staff login that manages the community."""
    for menu in menus:
        do_set_menu_entry(
            users[manager_of(menu.org, dict(specs))],
            org=orgs[menu.org],
            item=items[(specs[menu.org].bank, menu.item)],
            times=menu.times,
            place=menu.place,
        )
