"""The demo world's banks: their names, the demo logins, and the org trees (机构), which `seed_orgs` creates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from timebank.orgs.actions import do_create_org, do_create_staff
from timebank.orgs.models import Org, OrgKind, Role, User

DEMO_PASSWORD = "demo12345"  # noqa: S105 - a published demo password, never used outside the demo

BANK1 = "台儿庄区时间银行"
BANK2 = "南充市爱心时间银行"


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
    DemoLogin("supervisor", DEMO_PASSWORD, Role.SUPERVISOR, "监督单位（只读）", "supervisor (read only)", "运河街道", "孙建国"),
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


def seed_orgs(
    root: User | None, specs: Sequence[OrgSpec], tick: Callable[[], None] = lambda: None
) -> tuple[dict[str, Org], dict[str, User]]:
    """Launch day: both org trees (parents first) and the staff logins, by the demo's names. Each head office's
    admin is made first (by `root`, e.g. the superuser) and creates the rest of the tree; the head office admin
    of bank 1 creates the other staff. `tick` is called per org and per login (a progress bar)."""
    orgs: dict[str, Org] = {}
    users: dict[str, User] = {}
    for spec in specs:
        creator = users.get("ho_admin" if spec.bank == BANK1 else "nc_admin", root)
        parent = orgs[spec.parent] if spec.parent else None
        orgs[spec.name] = do_create_org(creator, name=spec.name, kind=spec.kind, parent=parent)
        if spec.kind == OrgKind.HEAD_OFFICE:
            admin = next(s for s in STAFF_LOGINS if s.org == spec.name and s.role == Role.HEAD_OFFICE_ADMIN)
            users[admin.username] = _create_staff(root, admin, orgs)
            tick()
        tick()
    for login in STAFF_LOGINS:
        if login.username not in users:
            users[login.username] = _create_staff(users["ho_admin"], login, orgs)
            tick()
    return orgs, users


def _create_staff(actor: User | None, login: DemoLogin, orgs: dict[str, Org]) -> User:
    return do_create_staff(
        actor, org=orgs[login.org], username=login.username, password=login.password, name=login.name, role=login.role
    )
