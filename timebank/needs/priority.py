"""Who is served first (对象清单): a pure function of birth date and recipient categories.

The second seed names five groups to serve first: people of 70 and over on the minimum-living allowance
or in a registered poor household, and people of 60 and over who are disabled, in extreme poverty, or
left behind. After them come people living alone and of advanced age (the first seed's 高龄、独居),
then every other recipient with a category, then the rest.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

KEY_GROUP = 1
ALONE_OR_OLD = 2
OTHER_CATEGORY = 3
GENERAL = 4

RANK_LABELS: dict[int, Promise] = {
    KEY_GROUP: _("重点保障对象"),
    ALONE_OR_OLD: _("独居或高龄老人"),
    OTHER_CATEGORY: _("其他服务对象"),
    GENERAL: _("一般"),
}

ADVANCED_AGE_YEARS = 80
DISABILITY = frozenset({"disabled", "partly_disabled", "severe_disability"})

# (reason code, categories that qualify, minimum age, label)
FIVE_GROUPS: tuple[tuple[str, frozenset[str], int, Promise], ...] = (
    ("allowance_70", frozenset({"subsistence_allowance"}), 70, _("70 岁以上低保老人")),
    ("registered_poor_70", frozenset({"registered_poor"}), 70, _("70 岁以上建档立卡贫困户")),
    ("disabled_60", DISABILITY, 60, _("60 岁以上残疾老人")),
    ("extreme_poverty_60", frozenset({"extreme_poverty"}), 60, _("60 岁以上特困老人")),
    ("left_behind_60", frozenset({"left_behind"}), 60, _("60 岁以上留守老人")),
)

REASON_LABELS: dict[str, Promise] = {
    **{code: label for code, _cats, _age, label in FIVE_GROUPS},
    "living_alone": _("独居"),
    "advanced_age": _("高龄"),
    "other_category": _("有其他服务对象类别"),
}


def age_on(born: dt.date | None, day: dt.date) -> int | None:
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True)
class Priority:
    rank: int  # 1 is served first
    reasons: tuple[str, ...]
    age: int | None

    @property
    def label(self) -> str:
        return str(RANK_LABELS[self.rank])

    @property
    def reason_labels(self) -> list[str]:
        return [str(REASON_LABELS[r]) for r in self.reasons]

    def sort_key(self) -> tuple[int, int, int]:
        """Rank first; within a rank, more reasons and then the older person first (unknown age last)."""
        return (self.rank, -len(self.reasons), -(self.age if self.age is not None else -1))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "label": self.label,
            "reasons": list(self.reasons),
            "reason_labels": self.reason_labels,
        }


def priority(birth_date: dt.date | None, categories: Iterable[str], today: dt.date) -> Priority:
    """An unknown age never meets an age condition: the register asks for a birth date instead of guessing."""
    cats = frozenset(categories)
    age = age_on(birth_date, today)
    key = tuple(
        code for code, wanted, min_age, _label in FIVE_GROUPS if cats & wanted and age is not None and age >= min_age
    )
    if key:
        return Priority(KEY_GROUP, key, age)
    second = []
    if "living_alone" in cats:
        second.append("living_alone")
    if "advanced_age" in cats or (age is not None and age >= ADVANCED_AGE_YEARS):
        second.append("advanced_age")
    if second:
        return Priority(ALONE_OR_OLD, tuple(second), age)
    if cats:
        return Priority(OTHER_CATEGORY, ("other_category",), age)
    return Priority(GENERAL, (), age)
