"""Matching: which volunteers to suggest for an order, best first, each with a score and reasons.

The hard rules are the dispatch rules (`check_volunteer_for`): an active volunteer of the order's bank,
not the recipient nor (unless the rules allow it) their linked relative, holding the required certificate,
insured when the rules require it. Everyone listed can be dispatched.

Among them, a bounded pool is read with a fixed number of queries, whatever the bank's size:
the volunteers nearest the recipient (a GiST index on PostgreSQL finds them without scanning the bank),
plus volunteers of the recipient's community without a location (see `_pool`). Ratings, recent hours and clashing orders are then aggregated
for that pool only, and `score_volunteer` (pure, no database) ranks them. The result is a shortlist:
in a big bank, volunteers beyond the nearest few hundred are not scored at all.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import (
    Avg,
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.sql.compiler import SQLCompiler
from django.utils import timezone, translation
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import Category, CertificateKind
from timebank.lib import clock
from timebank.lib.events import publish
from timebank.members.models import Certificate, InsurancePolicy, Member, MemberStatus, RelativeLink
from timebank.orders.actions import age_on
from timebank.orders.events import VolunteersMatched
from timebank.orders.models import Order, OrderEvent, ServiceRecord
from timebank.orgs.models import Org, OrgKind, Rules

# Pool sizes: what one call reads at most, so its cost does not grow with the bank.
NEAR_POOL = 150
AREA_POOL = 50
MAX_CANDIDATES = NEAR_POOL + AREA_POOL
CENTRE_SAMPLE = 200  # members whose locations place a community
RECENT_DAYS = 30
LONGEST_ORDER = dt.timedelta(hours=12)  # orders.actions.MAX_PLANNED_MINUTES: bounds the clash search

# Points per criterion; a perfect match scores 100 (110 for a need that names an occupation).
W_DISTANCE = 25.0
W_AVAILABILITY = 20.0
W_WILLING = 15.0
W_SKILL = 10.0
W_RATING = 15.0
W_FAIRNESS = 10.0
W_INSURANCE = 5.0
# The district's plan matches volunteers "by age, occupation, skills and willingness" (根据志愿者年龄、职业、特长、
# 服务意愿), the relatively young and fit (身体较好、相对年轻) and medical staff (医护人员) first. An older volunteer
# loses up to W_AGE points (none up to AGE_FIT, all from AGE_FRAIL; unknown: none); a volunteer whose occupation
# suits the need gains W_OCCUPATION.
W_AGE = 10.0
AGE_FIT = 60
AGE_FRAIL = 80
W_OCCUPATION = 10.0
PENALTY_DECLINED = 25.0
PENALTY_NO_SHOW = 40.0
PENALTY_BUSY = 20.0
# Without coordinates, org proximity stands in for distance.
SAME_COMMUNITY_POINTS = 12.0
SAME_AREA_POINTS = 6.0
# A few reviews should not outweigh many: ratings are pulled towards 4 stars as if by two reviews.
RATING_PRIOR = 4.0
RATING_PRIOR_WEIGHT = 2
FAIR_HOURS = 4.0  # at this many recent hours, half the fairness points

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_LABELS: dict[str, Promise] = {
    "mon": _("周一"),
    "tue": _("周二"),
    "wed": _("周三"),
    "thu": _("周四"),
    "fri": _("周五"),
    "sat": _("周六"),
    "sun": _("周日"),
}
SLOT_LABELS: dict[str, Promise] = {"morning": _("上午"), "afternoon": _("下午"), "evening": _("晚上")}

R_CERTIFICATE = _("有%(kind)s资质")
R_NEARBY = _("就在附近（不到 100 米）")
R_DISTANCE = _("距离约 %(km)s 公里")
R_SAME_COMMUNITY = _("同一社区")
R_SAME_AREA = _("同一街道或镇")
R_NO_LOCATION = _("距离不详")
R_AVAILABLE = _("%(day)s%(slot)s有空")
R_AVAILABLE_DAY = _("%(day)s有空，但不是%(slot)s")
R_NOT_AVAILABLE = _("%(day)s%(slot)s不一定有空")
R_NO_AVAILABILITY = _("未填写空闲时间")
R_WILLING_ITEM = _("愿意做%(item)s")
R_WILLING_CATEGORY = _("愿意做%(category)s类服务")
R_SKILL = _("有相关技能：%(skill)s")
R_RATING = _("平均评分 %(avg)s（%(count)s 次评价）")
R_NO_RATING = _("还没有评价")
R_NO_RECENT = _("近 30 天还没有服务（优先照顾服务少的）")
R_FEW_RECENT = _("近 30 天服务 %(hours)s 小时（优先照顾服务少的）")
R_RECENT = _("近 30 天服务 %(hours)s 小时")
R_YOUNGER = _("%(age)s 岁以下")  # coarse: the list may be read by staff of another subtree
R_OCCUPATION = _("有医护背景")
R_INSURED = _("意外险有效")
R_NOT_INSURED = _("没有有效的意外险")
R_DECLINED = _("曾拒绝过这个订单")
R_NO_SHOW = _("曾在这个订单中未到场")
R_BUSY = _("该时段已有其他订单")

Reason = tuple[Promise, dict[str, Any]]

# The occupation the plan names: medical staff (医生, 护士, 退休护士, 护工: an occupation with 医 or 护) for a medical
# need, that is a health category, a medical certificate, or an item whose name says so (陪同就医, 康复护理).
MEDICAL_WORDS = ("医", "护")
MEDICAL_NEEDS = frozenset(
    {
        Category.HEALTH_CARE,
        Category.HEALTH_TALKS,
        CertificateKind.NURSING,
        CertificateKind.MEDICAL,
        CertificateKind.FIRST_AID,
    }
)


@dataclass(frozen=True)
class Need:
    """What the order asks for, in plain values."""

    item_name: str
    category: str
    certificate: str  # a CertificateKind code, or ""
    day: str  # "mon".."sun", local time
    slot: str  # "morning" | "afternoon" | "evening"
    latitude: float | None
    longitude: float | None
    community_path: str  # the recipient's home org
    area_path: str  # the branch above it (where nearby volunteers take orders from)
    insurance_required: bool
    serve_relatives: bool = False  # the rule: may a linked relative of the recipient serve?


@dataclass(slots=True)
class Facts:
    """What matching knows about one volunteer."""

    volunteer_id: int
    name: str
    latitude: float | None = None
    longitude: float | None = None
    home_path: str = ""
    skills: Sequence[str] = ()
    willing_services: Sequence[str] = ()
    availability: dict[str, list[str]] = field(default_factory=dict)
    rating_sum: int = 0
    rating_count: int = 0
    recent_minutes: int = 0
    insured: bool = False
    declined: bool = False
    no_show: bool = False
    busy: bool = False
    age: int | None = None
    occupation: str = ""


@dataclass
class Scored:
    volunteer_id: int
    name: str
    score: float
    distance_km: float | None
    reasons: list[Reason]


@dataclass
class Candidate:
    volunteer_id: int
    name: str
    score: float
    distance_km: float | None
    reasons: list[str]


def slot_of(hour: int) -> str:
    if hour < 12:
        return "morning"
    return "afternoon" if hour < 18 else "evening"


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _label(choices: Any, code: str) -> Promise | str:
    """The choice's (lazy) label, or the code itself when it is not one of the choices."""
    try:
        return choices(code).label
    except ValueError:
        return code


@lru_cache(maxsize=64)
def _chinese(choices: Any, code: str) -> str:
    """The Chinese label: what volunteers write in their skills, whatever the caller's language."""
    with translation.override("zh-hans"):
        return str(_label(choices, code))


@dataclass(frozen=True)
class _Terms:
    """What every volunteer is compared with, worked out once per need."""

    category: Promise | str
    certificate: Promise | str
    category_words: frozenset[str]
    skill_targets: tuple[str, ...]
    when: dict[str, Promise]
    occupation_words: tuple[str, ...]  # empty: the need names no occupation


@lru_cache(maxsize=256)
def _terms(need: Need) -> _Terms:
    return _Terms(
        category=_label(Category, need.category),
        certificate=_label(CertificateKind, need.certificate) if need.certificate else "",
        category_words=frozenset({need.category, _chinese(Category, need.category)}),
        skill_targets=(need.item_name, *([_chinese(CertificateKind, need.certificate)] if need.certificate else [])),
        when={"day": DAY_LABELS[need.day], "slot": SLOT_LABELS[need.slot]},
        occupation_words=_occupation_words(need),
    )


def _occupation_words(need: Need) -> tuple[str, ...]:
    medical = {need.category, need.certificate} & MEDICAL_NEEDS or any(w in need.item_name for w in MEDICAL_WORDS)
    return MEDICAL_WORDS if medical else ()


def _matches(words: Iterable[str], *targets: str) -> str | None:
    """The first word naming one of the targets, either way round ("保洁" ~ "家庭保洁")."""
    for word in words:
        for target in targets:
            if word and target and (word in target or target in word):
                return word
    return None


def score_volunteer(need: Need, facts: Facts) -> Scored:
    """Score one volunteer for one need: pure arithmetic, no database. Reasons come back unrendered."""
    terms = _terms(need)
    points = 0.0
    reasons: list[Reason] = []
    if need.certificate:
        reasons.append((R_CERTIFICATE, {"kind": terms.certificate}))

    km = None
    if (
        need.latitude is not None
        and need.longitude is not None
        and facts.latitude is not None
        and facts.longitude is not None
    ):
        km = distance_km(need.latitude, need.longitude, facts.latitude, facts.longitude)
        points += W_DISTANCE / (1 + km / 2)
        reasons.append((R_NEARBY, {}) if km < 0.1 else (R_DISTANCE, {"km": _number(km)}))
    elif need.community_path and facts.home_path.startswith(need.community_path):
        points += SAME_COMMUNITY_POINTS
        reasons.append((R_SAME_COMMUNITY, {}))
    elif need.area_path and facts.home_path.startswith(need.area_path):
        points += SAME_AREA_POINTS
        reasons.append((R_SAME_AREA, {}))
    else:
        reasons.append((R_NO_LOCATION, {}))

    when = terms.when
    if not facts.availability:
        points += W_AVAILABILITY * 0.3  # unknown is better than "not then"
        reasons.append((R_NO_AVAILABILITY, {}))
    elif need.slot in facts.availability.get(need.day, ()):
        points += W_AVAILABILITY
        reasons.append((R_AVAILABLE, when))
    elif facts.availability.get(need.day):
        points += W_AVAILABILITY * 0.4
        reasons.append((R_AVAILABLE_DAY, when))
    else:
        reasons.append((R_NOT_AVAILABLE, when))

    if need.item_name in facts.willing_services:
        points += W_WILLING
        reasons.append((R_WILLING_ITEM, {"item": need.item_name}))
    elif not terms.category_words.isdisjoint(facts.willing_services):
        points += W_WILLING * 2 / 3
        reasons.append((R_WILLING_CATEGORY, {"category": terms.category}))

    skill = _matches(facts.skills, *terms.skill_targets)
    if skill:
        points += W_SKILL
        reasons.append((R_SKILL, {"skill": skill}))

    if facts.occupation and any(word in facts.occupation for word in terms.occupation_words):
        points += W_OCCUPATION
        reasons.append((R_OCCUPATION, {}))

    if facts.age is not None:
        points -= W_AGE * min(max(facts.age - AGE_FIT, 0), AGE_FRAIL - AGE_FIT) / (AGE_FRAIL - AGE_FIT)
        if facts.age < AGE_FIT:
            reasons.append((R_YOUNGER, {"age": AGE_FIT}))

    if facts.rating_count:
        mean = (facts.rating_sum + RATING_PRIOR * RATING_PRIOR_WEIGHT) / (facts.rating_count + RATING_PRIOR_WEIGHT)
        avg = facts.rating_sum / facts.rating_count
        reasons.append((R_RATING, {"avg": _number(avg), "count": facts.rating_count}))
    else:
        mean = RATING_PRIOR
        reasons.append((R_NO_RATING, {}))
    points += W_RATING * (mean - 1) / 4

    hours = facts.recent_minutes / 60
    points += W_FAIRNESS / (1 + hours / FAIR_HOURS)
    if facts.recent_minutes == 0:
        reasons.append((R_NO_RECENT, {}))
    else:
        shown = _number(math.ceil(hours * 10) / 10)
        reasons.append((R_FEW_RECENT if hours <= FAIR_HOURS else R_RECENT, {"hours": shown}))

    if facts.insured:
        points += 0 if need.insurance_required else W_INSURANCE  # required: everyone listed has it
        reasons.append((R_INSURED, {}))
    else:
        reasons.append((R_NOT_INSURED, {}))

    if facts.no_show:
        points -= PENALTY_NO_SHOW
        reasons.append((R_NO_SHOW, {}))
    elif facts.declined:
        points -= PENALTY_DECLINED
        reasons.append((R_DECLINED, {}))
    if facts.busy:
        points -= PENALTY_BUSY
        reasons.append((R_BUSY, {}))

    return Scored(facts.volunteer_id, facts.name, round(max(points, 0.0), 1), km, reasons)


def rank(need: Need, pool: Iterable[Facts]) -> list[Scored]:
    """Best first; ties go to the nearer, then the longer-standing member."""
    scored = [score_volunteer(need, f) for f in pool]
    scored.sort(key=lambda s: (-s.score, math.inf if s.distance_km is None else s.distance_km, s.volunteer_id))
    return scored


def render(page: Iterable[Scored]) -> list[Candidate]:
    """Reasons become text in the active language, only for the page shown; each message is looked up once."""
    texts: dict[int, str] = {}

    def text(message: Promise | str) -> str:
        key = id(message)
        if key not in texts:
            texts[key] = str(message)
        return texts[key]

    def reason(message: Promise, params: dict[str, Any]) -> str:
        if not params:
            return text(message)
        return text(message) % {k: text(v) if isinstance(v, Promise) else v for k, v in params.items()}

    return [
        Candidate(
            volunteer_id=s.volunteer_id,
            name=s.name,
            score=s.score,
            distance_km=None if s.distance_km is None else round(s.distance_km, 2),
            reasons=[reason(message, params) for message, params in s.reasons],
        )
        for s in page
    ]


# ------------------------------------------------------------------------------------------------- database


class NearnessKey(Func):
    """Orders volunteers by closeness to a point. On PostgreSQL it is the `<->` distance on
    `point(longitude, latitude)`, which the GiST index of members migration 0004 answers without a scan;
    elsewhere a planar squared distance. Only for picking the pool: real distances are computed after."""

    output_field = FloatField()

    def __init__(self, latitude: float, longitude: float) -> None:
        super().__init__(F("longitude"), F("latitude"))
        self.point = (float(longitude), float(latitude))

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        lon_sql, lon_params = compiler.compile(self.source_expressions[0])
        lat_sql, lat_params = compiler.compile(self.source_expressions[1])
        lon, lat = self.point
        if connection.vendor == "postgresql":
            # Must stay the index's expression exactly, or PostgreSQL falls back to a full scan.
            sql = f"point(({lon_sql})::float8, ({lat_sql})::float8) <-> point(%s, %s)"
            return sql, [*lon_params, *lat_params, lon, lat]
        sql = f"(({lat_sql}) - %s) * (({lat_sql}) - %s) + (({lon_sql}) - %s) * (({lon_sql}) - %s)"
        return sql, [*lat_params, lat, *lat_params, lat, *lon_params, lon, *lon_params, lon]


def need_for(order: Order, insurance_required: bool, serve_relatives: bool = False) -> Need:
    item = order.service_item
    recipient = order.recipient
    home = recipient.home_org
    local = timezone.localtime(order.scheduled_start)
    area_path = home.path
    if home.kind in (OrgKind.SUB_BRANCH, OrgKind.OUTLET) and home.path.count("/") > 2:
        area_path = home.path[: home.path.rstrip("/").rfind("/") + 1]  # the parent's path
    return Need(
        item_name=item.name,
        category=item.category,
        certificate=item.requires_certificate,
        day=DAYS[local.weekday()],
        slot=slot_of(local.hour),
        latitude=None if recipient.latitude is None else float(recipient.latitude),
        longitude=None if recipient.longitude is None else float(recipient.longitude),
        community_path=home.path,
        area_path=area_path,
        insurance_required=insurance_required,
        serve_relatives=serve_relatives,
    )


class InSet(Func):
    """`field IN (subquery)` for a small, uncorrelated set (the holders of one certificate, the orgs of one
    town). On PostgreSQL it is `field = ANY(ARRAY(subquery))`: the set is computed once and the rows are
    fetched through the field's index, where a join tempts the planner into scanning the bank's members."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, field: str, subquery: QuerySet[Any]) -> None:
        super().__init__(F(field), Subquery(subquery.order_by()))

    def as_sql(  # type: ignore[override]
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        field_sql, field_params = compiler.compile(self.source_expressions[0])
        sub_sql, sub_params = compiler.compile(self.source_expressions[1])
        if not sub_sql.startswith("("):
            sub_sql = f"({sub_sql})"
        template = "{} = ANY(ARRAY{})" if connection.vendor == "postgresql" else "{} IN {}"
        return template.format(field_sql, sub_sql), [*field_params, *sub_params]


def bank_volunteers(order: Order, *, serve_relatives: bool = False) -> QuerySet[Member]:
    """Active volunteers of the order's bank, other than the recipient and (unless the rules allow it) the
    recipient's linked relatives: conflicts of interest (orders.actions.check_no_conflict)."""
    qs = Member.objects.filter(bank_id=order.bank_id, is_volunteer=True, status=MemberStatus.ACTIVE).exclude(
        pk=order.recipient_id
    )
    if not serve_relatives:
        qs = qs.exclude(pk__in=RelativeLink.objects.filter(member_id=order.recipient_id).values("relative_id"))
    return qs


def eligible_volunteers(
    order: Order, *, insurance_required: bool, today: dt.date, few: bool = False, serve_relatives: bool = False
) -> QuerySet[Member]:
    """The dispatch rules as a queryset (keep in step with orders.actions.check_volunteer_for).

    `few`: the query is otherwise narrowed to a few rows (one community), so each is checked for a certificate
    by an index probe; else the certificate's holders are looked up first and fetched by primary key."""
    # Nobody another app's rule bars (a suspension from dispatch: timebank.evaluation).
    qs = bank_volunteers(order, serve_relatives=serve_relatives).filter(*publish(VolunteersMatched(today)))
    kind = order.service_item.requires_certificate
    if kind:
        holders = Certificate.objects.valid_on(today).filter(kind=kind)
        if few:
            qs = qs.filter(Exists(holders.filter(member=OuterRef("pk"))))
        else:
            qs = qs.filter(InSet("pk", holders.values("member_id")))
    if insurance_required:
        # Most volunteers are insured where the rules ask for it: a probe per row is the cheap way.
        qs = qs.filter(Exists(InsurancePolicy.objects.in_force(today).filter(member=OuterRef("pk"))))
    return qs


POOL_FIELDS = (
    "id",
    "name",
    "latitude",
    "longitude",
    "home_org__path",
    "skills",
    "willing_services",
    "availability",
    "birth_date",
    "occupation",
)


def _community_centre(need: Need) -> tuple[float, float] | None:
    """Where the recipient's community is, from its members' locations: stands in for an unlocated recipient."""
    some = Member.objects.filter(
        home_org__path__startswith=need.community_path, latitude__isnull=False, longitude__isnull=False
    ).order_by()[:CENTRE_SAMPLE]
    centre = some.aggregate(latitude=Avg("latitude"), longitude=Avg("longitude"))
    if centre["latitude"] is None or centre["longitude"] is None:
        return None
    return float(centre["latitude"]), float(centre["longitude"])


def _pool(need: Need, eligible: QuerySet[Member], local: QuerySet[Member]) -> list[dict[str, Any]]:
    """At most MAX_CANDIDATES volunteers, in two queries, each bounded by an index and a LIMIT:
    - the nearest volunteers that have a location (nearest the recipient, or their community's centre when
      the recipient has no location: one more query), by the GiST index on PostgreSQL;
    - the volunteers of the recipient's community without a location.
    In a community where nobody has a location: the area's volunteers (the community first), then the rest
    of the bank."""

    def under(path: str) -> InSet:
        return InSet("home_org_id", Org.objects.filter(path__startswith=path).values("pk"))

    located = need.latitude is not None and need.longitude is not None
    centre = (need.latitude or 0.0, need.longitude or 0.0) if located else _community_centre(need)
    if centre is not None:
        near = eligible.filter(latitude__isnull=False, longitude__isnull=False).order_by(NearnessKey(*centre))
        first = list(near.values(*POOL_FIELDS)[:NEAR_POOL])
        unlocated = local.filter(Q(latitude__isnull=True) | Q(longitude__isnull=True), under(need.community_path))
        # Not by "pk" alone: PostgreSQL would walk the primary key through the whole bank to fill the LIMIT.
        second = list(unlocated.order_by("home_org_id", "pk").values(*POOL_FIELDS)[:AREA_POOL])
    else:
        same_community_first = Case(
            When(home_org__path__startswith=need.community_path, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        )
        in_area = eligible.filter(under(need.area_path)).order_by(same_community_first, "pk")
        first = list(in_area.values(*POOL_FIELDS)[:NEAR_POOL])
        rest = eligible.exclude(home_org__path__startswith=need.area_path).order_by("pk")
        second = list(rest.values(*POOL_FIELDS)[:AREA_POOL])
    rows = {r["id"]: r for r in second}
    rows.update((r["id"], r) for r in first)
    return list(rows.values())


def _among(ids: list[int]) -> RawSQL:
    """For `__in`: the ids as one parameter. Hundreds of placeholders cost more to build and parse than the
    query takes to run."""
    if connection.vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(ids),))


FACT_COLUMNS = ("rating_sum", "rating_count", "minutes", "declines", "no_shows", "insured")


def _per_volunteer(qs: QuerySet[Any], key: str, **columns: Any) -> QuerySet[Any]:
    """One row per volunteer with every FACT_COLUMNS column (0 where this source says nothing), so that
    the sources can be sent as one UNION ALL."""
    return (
        qs.order_by()
        .values(key)
        .annotate(**{c: columns.get(c, Value(0, output_field=IntegerField())) for c in FACT_COLUMNS})
    )


def pool_facts(order: Order, need: Need, *, today: dt.date) -> list[Facts]:
    """The pool and what is known about it: a fixed number of queries whatever the bank's size."""
    required, relatives = need.insurance_required, need.serve_relatives
    eligible = eligible_volunteers(order, insurance_required=required, today=today, serve_relatives=relatives)
    local = eligible_volunteers(order, insurance_required=required, today=today, few=True, serve_relatives=relatives)
    rows = _pool(need, eligible, local)
    if not rows:
        return []
    ids = _among([r["id"] for r in rows])
    since = clock.now() - dt.timedelta(days=RECENT_DAYS)
    # One round trip for what is counted per volunteer: ratings (all time) and recent minutes from orders,
    # recent minutes from service records, who declined or missed this very order, and valid insurance.
    parts = [
        _per_volunteer(
            Order.objects.filter(volunteer_id__in=ids),
            "volunteer_id",
            rating_sum=Sum("rating"),
            rating_count=Count("rating"),
            minutes=Sum("actual_minutes", filter=Q(confirmed_at__gte=since)),
        ),
        _per_volunteer(
            ServiceRecord.objects.filter(volunteer_id__in=ids, served_at__gte=since),
            "volunteer_id",
            minutes=Sum("minutes"),
        ),
        _per_volunteer(
            OrderEvent.objects.filter(order=order, action__in=("decline", "no-show"), volunteer_id__isnull=False),
            "volunteer_id",
            declines=Count("pk", filter=Q(action="decline")),
            no_shows=Count("pk", filter=Q(action="no-show")),
        ),
    ]
    if not need.insurance_required:  # else everyone in the pool is insured
        valid = InsurancePolicy.objects.in_force(today).filter(member_id__in=ids)
        parts.append(_per_volunteer(valid, "member_id", insured=Count("pk")))
    totals: dict[int, list[int]] = {}
    for row in parts[0].union(*parts[1:], all=True):
        sums = totals.setdefault(row["volunteer_id"], [0] * len(FACT_COLUMNS))
        for i, column in enumerate(FACT_COLUMNS):
            sums[i] += row[column] or 0
    start = order.scheduled_start
    end = start + dt.timedelta(minutes=order.planned_minutes)
    busy = {
        vid
        for vid, other_start, other_minutes in Order.objects.active()
        .filter(
            volunteer_id__in=ids,
            scheduled_start__lt=end,
            scheduled_start__gt=start - LONGEST_ORDER,
        )
        .exclude(pk=order.pk)
        .values_list("volunteer_id", "scheduled_start", "planned_minutes")
        if other_start + dt.timedelta(minutes=other_minutes) > start
    }
    facts = []
    nothing = [0] * len(FACT_COLUMNS)
    for r in rows:
        vid = r["id"]
        skills, willing, availability = r["skills"], r["willing_services"], r["availability"]
        rating_sum, rating_count, minutes, declines, no_shows, insured = totals.get(vid, nothing)
        facts.append(
            Facts(
                volunteer_id=vid,
                name=r["name"],
                latitude=None if r["latitude"] is None else float(r["latitude"]),
                longitude=None if r["longitude"] is None else float(r["longitude"]),
                home_path=r["home_org__path"],
                skills=[x for x in skills if isinstance(x, str)] if isinstance(skills, list) else [],
                willing_services=[x for x in willing if isinstance(x, str)] if isinstance(willing, list) else [],
                availability=availability if isinstance(availability, dict) else {},
                rating_sum=rating_sum,
                rating_count=rating_count,
                recent_minutes=minutes,
                insured=need.insurance_required or insured > 0,
                declined=declines > 0,
                no_show=no_shows > 0,
                busy=vid in busy,
                age=age_on(r["birth_date"], today),
                occupation=r["occupation"] or "",
            )
        )
    return facts


def rank_candidates(order: Order, *, limit: int, offset: int = 0) -> list[Candidate]:
    """Dispatchable volunteers for `order`, best first: `limit` of them from `offset`.

    `order` needs service_item and recipient__home_org loaded (access_order does it). The list is a
    shortlist of at most MAX_CANDIDATES (see `_pool`). Five queries (six for a recipient without a location),
    however big the bank.
    """
    if limit < 1 or offset >= MAX_CANDIDATES:
        return []
    insurance_required, serve_relatives = (
        Rules.objects.filter(head_office_id=order.bank_id)
        .values_list("require_insurance_to_dispatch", "serve_relatives")
        .first()
    ) or (False, False)
    today = clock.localdate()
    need = need_for(order, insurance_required, serve_relatives)
    ranked = rank(need, pool_facts(order, need, today=today))
    return render(ranked[offset : offset + limit])
