"""The registry of a head office's rules (in the spirit of zulip's `Realm.property_types`).

Each rule is declared once, on the `Rules` model, with a helper of this module (`integer`, `boolean`, `choice`,
`multipliers`, `int_list`, `multi_choice`, `text`). The helper makes the Django field and hangs a `Rule` on it that
knows the rule's kind, bounds, nullability, label, help text and fieldset. Everything else is built from
`registry()`: the action's checks (`clean`), the API's `RulesOut`/`RulesPatch` schemas, the page form, its
initial values, the read-only list and the automatic notice's labels. Adding a rule = one declaration on the
model + its migration + its translations.

This module imports no model at load time (the model imports it); `registry()` reads the model lazily.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import Enum
from functools import cache
from typing import Annotated, Any, Literal

from django import forms
from django.db import models
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _
from pydantic import BaseModel, Field, create_model

from timebank.lib.masking import PERSONAL_NUMBER

Choices = Sequence[tuple[str, Any]]


class Group(Enum):
    """The fieldsets of the rules page, in the order they are shown."""

    MULTIPLIERS = _("服务 1 小时记多少时间")
    SETTLEMENT = _("结算")
    ACCOUNT = _("时间账户")
    DISPATCH = _("派单和回访")
    TRUST = _("防止差错和冒领")
    WELFARE = _("关爱探访")
    GRANTS = _("每年赠与时间")
    GUARANTEE = _("刚性兑付（专项基金兜底）")

    @property
    def legend(self) -> Any:
        return self.value


# Error codes of `clean` (422 `invalid` with `fields={rule: code}`).
UNKNOWN, REQUIRED, WRONG_TYPE, OUT_OF_RANGE, NOT_INCREASING, PERSONAL = (
    "unknown",
    "required",
    "wrong_type",
    "out_of_range",
    "not_increasing",
    "personal_number",
)


class RuleError(Exception):
    def __init__(self, code: str, message: Any) -> None:
        super().__init__(code)
        self.code, self.message = code, message


NONE = _("无")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _yes_no(value: bool) -> str:
    return str(_("是") if value else _("否"))


@dataclass(eq=False)
class Rule:
    """One rule. Subclasses are the kinds; `name` is filled in by `registry()` from the model field."""

    label: Any
    group: Group
    help: Any = ""
    null: bool = False
    none_text: Any = NONE  # how an empty (null) value reads
    name: str = field(default="", init=False)

    # API ------------------------------------------------------------------------------------------------
    def api_type(self) -> Any:
        """The non-null input type (strict: "60" for a number or "yes" for a yes/no is 422)."""
        raise NotImplementedError

    def out_type(self) -> Any:
        raise NotImplementedError

    def to_api(self, value: Any) -> Any:
        return value

    # Action ---------------------------------------------------------------------------------------------
    def check(self, value: Any) -> Any:
        """The value to store, or RuleError. Never called with None."""
        raise NotImplementedError

    # Page -----------------------------------------------------------------------------------------------
    def form_fields(self) -> dict[str, forms.Field]:
        raise NotImplementedError

    def initial(self, value: Any) -> dict[str, Any]:
        return {self.name: value}

    def from_form(self, cleaned: dict[str, Any]) -> Any:
        return cleaned[self.name]

    def form_aliases(self) -> dict[str, str]:
        """Which form field shows an action's refusal of this rule."""
        return {}

    def rows(self, value: Any) -> list[tuple[Any, str]]:
        """(label, text) lines of the read-only list."""
        return [(self.label, self.show(value))]

    def show(self, value: Any) -> str:
        if value is None:
            return str(self.none_text)
        return self.text(value)

    def text(self, value: Any) -> str:
        return str(value)


@dataclass(eq=False)
class IntRule(Rule):
    min: int = 0
    max: int = 0
    unit: Any = None  # e.g. "%(n)s 岁"

    def api_type(self) -> Any:
        return Annotated[int, Field(strict=True, ge=self.min, le=self.max)]

    def out_type(self) -> Any:
        return int | None if self.null else int

    def check(self, value: Any) -> Any:
        if not _is_int(value):
            raise RuleError(WRONG_TYPE, _("请填一个整数。"))
        if not self.min <= value <= self.max:
            raise RuleError(OUT_OF_RANGE, _("应在 %(min)s 到 %(max)s 之间。") % {"min": self.min, "max": self.max})
        return value

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            self.name: forms.IntegerField(
                label=self.label, min_value=self.min, max_value=self.max, required=not self.null, help_text=self.help
            )
        }

    def text(self, value: Any) -> str:
        return str(self.unit % {"n": value}) if self.unit else str(value)


@dataclass(eq=False)
class BoolRule(Rule):
    def api_type(self) -> Any:
        return Annotated[bool, Field(strict=True)]

    def out_type(self) -> Any:
        return bool

    def check(self, value: Any) -> Any:
        if not isinstance(value, bool):
            raise RuleError(WRONG_TYPE, _("请选择是或否。"))
        return value

    def form_fields(self) -> dict[str, forms.Field]:
        return {self.name: forms.BooleanField(label=self.label, required=False, help_text=self.help)}

    def text(self, value: Any) -> str:
        return _yes_no(value)


def _resolve(choices: Choices | str) -> Choices:
    # A dotted path to a TextChoices of a higher app, read when used (orgs imports no such app).
    return import_string(choices).choices if isinstance(choices, str) else choices


@dataclass(eq=False)
class ChoiceRule(Rule):
    choices: Choices | str = ()

    def values(self) -> tuple[str, ...]:
        return tuple(value for value, _label in _resolve(self.choices))

    def api_type(self) -> Any:
        return Literal[self.values()]

    def out_type(self) -> Any:
        return self.api_type()

    def check(self, value: Any) -> Any:
        if not isinstance(value, str) or value not in self.values():
            raise RuleError(WRONG_TYPE, _("没有这个选项。"))
        return value

    def form_fields(self) -> dict[str, forms.Field]:
        return {self.name: forms.ChoiceField(label=self.label, choices=_resolve(self.choices), help_text=self.help)}

    def text(self, value: Any) -> str:
        return str(dict(_resolve(self.choices)).get(value, value))


@dataclass(eq=False)
class MultiChoiceRule(ChoiceRule):
    max_items: int = 10

    def api_type(self) -> Any:
        item = super().api_type()  # the Literal of the choices
        return Annotated[list[item], Field(max_length=self.max_items)]  # type: ignore[valid-type]

    def out_type(self) -> Any:
        return list[str]

    def check(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RuleError(WRONG_TYPE, _("没有这个选项。"))
        if len(value) > self.max_items or any(v not in self.values() for v in value):
            raise RuleError(OUT_OF_RANGE, _("没有这个选项。"))
        return value

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            self.name: forms.MultipleChoiceField(
                label=self.label,
                choices=_resolve(self.choices),
                widget=forms.CheckboxSelectMultiple,
                required=False,
                help_text=self.help,
            )
        }

    def text(self, value: Any) -> str:
        labels = dict(_resolve(self.choices))
        return ", ".join(str(labels.get(v, v)) for v in value) if value else str(NONE)


@dataclass(eq=False)
class TextRule(Rule):
    """A short line of text (a provider's name), stripped; empty allowed."""

    max_length: int = 100
    no_personal_numbers: bool = False  # a name that goes on public records: no phone or ID number in it

    def api_type(self) -> Any:
        return Annotated[str, Field(strict=True, max_length=self.max_length)]

    def out_type(self) -> Any:
        return str

    def check(self, value: Any) -> Any:
        if not isinstance(value, str):
            raise RuleError(WRONG_TYPE, _("请填写文字。"))
        value = value.strip()
        if len(value) > self.max_length or any(ord(c) < 32 for c in value):
            raise RuleError(OUT_OF_RANGE, _("最多 %(n)s 个字，不含控制字符。") % {"n": self.max_length})
        if self.no_personal_numbers and PERSONAL_NUMBER.search(value):
            raise RuleError(PERSONAL, _("这里不要写电话或证件号码。"))
        return value

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            self.name: forms.CharField(
                label=self.label, max_length=self.max_length, required=False, help_text=self.help, strip=True
            )
        }

    def text(self, value: Any) -> str:
        return value or str(self.none_text)


class IntListField(forms.CharField):
    """Whole numbers typed as "100, 300, 600" (commas, Chinese commas or spaces)."""

    def __init__(self, *, max_items: int, **kwargs: Any) -> None:
        self.max_items = max_items
        super().__init__(max_length=100, **kwargs)

    def clean(self, value: Any) -> list[int]:
        raw = super().clean(value)
        parts = [p for p in re.split(r"[,，、\s]+", raw) if p]
        if (
            not parts
            or len(parts) > self.max_items
            or not all(p.isascii() and p.isdigit() and len(p) <= 7 for p in parts)
        ):
            raise forms.ValidationError(_("请写 1 到 %(n)s 个整数（小时），用逗号隔开。") % {"n": self.max_items})
        return [int(p) for p in parts]


@dataclass(eq=False)
class IntListRule(Rule):
    """Whole numbers that must increase (the star thresholds)."""

    item_min: int = 1
    item_max: int = 1_000_000
    max_items: int = 10

    def api_type(self) -> Any:
        item = Annotated[int, Field(strict=True, ge=self.item_min, le=self.item_max)]
        return Annotated[list[item], Field(min_length=1, max_length=self.max_items)]

    def out_type(self) -> Any:
        return list[int]

    def check(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(_is_int(v) for v in value):
            raise RuleError(WRONG_TYPE, _("请写整数。"))
        if not 1 <= len(value) <= self.max_items or not all(self.item_min <= v <= self.item_max for v in value):
            raise RuleError(
                OUT_OF_RANGE,
                _("请写 1 到 %(n)s 个整数，每个在 %(min)s 到 %(max)s 之间。")
                % {"n": self.max_items, "min": self.item_min, "max": self.item_max},
            )
        if value != sorted(set(value)):
            raise RuleError(NOT_INCREASING, _("应逐级递增。"))
        return value

    def form_fields(self) -> dict[str, forms.Field]:
        return {self.name: IntListField(label=self.label, max_items=self.max_items, help_text=self.help)}

    def initial(self, value: Any) -> dict[str, Any]:
        return {self.name: ", ".join(str(n) for n in value)}

    def text(self, value: Any) -> str:
        return ", ".join(str(n) for n in value)


MULTIPLIER_MAX = Decimal(100)


def number(value: Any) -> int | float:
    """A multiplier as JSON stores it: 2 or 2.5, never Decimal."""
    d = Decimal(str(value))
    return int(d) if d == d.to_integral_value() else float(d)


@dataclass(eq=False)
class MultipliersRule(Rule):
    """One positive number per service tier, at most 100 with three decimals; one form field per tier."""

    tiers: Sequence[tuple[str, Any]] = ()

    def api_type(self) -> Any:
        return _multipliers_schema(tuple(code for code, _label in self.tiers))

    def out_type(self) -> Any:
        return dict[str, int | float]

    def to_api(self, value: Any) -> Any:
        return {k: number(v) for k, v in value.items()}

    def check(self, value: Any) -> Any:
        if isinstance(value, BaseModel):
            value = value.model_dump()
        if not isinstance(value, dict) or set(value) != {code for code, _label in self.tiers}:
            raise RuleError(WRONG_TYPE, _("每一类服务都要有倍数。"))
        out = {}
        for code, v in value.items():
            try:
                d = Decimal(str(v)) if isinstance(v, int | float | Decimal) and not isinstance(v, bool) else None
            except InvalidOperation:
                d = None
            exponent = d.as_tuple().exponent if d is not None and d.is_finite() else None
            if d is None or not isinstance(exponent, int):
                raise RuleError(WRONG_TYPE, _("倍数应是数字。"))
            if not 0 < d <= MULTIPLIER_MAX or exponent < -3:
                raise RuleError(OUT_OF_RANGE, _("倍数应大于 0、不超过 100，最多三位小数。"))
            out[code] = number(d)
        return out

    def form_fields(self) -> dict[str, forms.Field]:
        return {
            code: forms.DecimalField(
                label=label, min_value=Decimal("0.001"), max_value=MULTIPLIER_MAX, max_digits=6, decimal_places=3
            )
            for code, label in self.tiers
        }

    def initial(self, value: Any) -> dict[str, Any]:
        return {code: Decimal(str(value[code])) for code, _label in self.tiers if code in value}

    def from_form(self, cleaned: dict[str, Any]) -> Any:
        return {code: number(cleaned[code]) for code, _label in self.tiers}

    def form_aliases(self) -> dict[str, str]:
        return {self.name: self.tiers[0][0]}

    def rows(self, value: Any) -> list[tuple[Any, str]]:
        return [(label, "×" + str(number(value[code]))) for code, label in self.tiers if code in value]

    def text(self, value: Any) -> str:
        return "，".join(f"{label} ×{number(value[code])}" for code, label in self.tiers if code in value)


@cache
def _multipliers_schema(tiers: tuple[str, ...]) -> type[BaseModel]:
    from ninja import Schema

    multiplier = Annotated[Decimal, Field(gt=0, le=100, max_digits=6, decimal_places=3, allow_inf_nan=False)]
    fields: dict[str, Any] = dict.fromkeys(tiers, (multiplier, ...))
    return create_model("Multipliers", __base__=Schema, **fields)


# Declaring a rule on the model ---------------------------------------------------------------------------


def _field(django_field: Any, rule: Rule) -> Any:
    django_field.rule = rule
    return django_field


def integer(
    default: int,
    *,
    min: int,
    max: int,
    label: Any,
    group: Group,
    help: Any = "",
    unit: Any = None,
    small: bool = False,
) -> models.IntegerField[int, int]:
    cls = models.PositiveSmallIntegerField if small else models.PositiveIntegerField
    rule = IntRule(label=label, group=group, help=help, min=min, max=max, unit=unit)
    return _field(cls(default=default), rule)


def optional_integer(
    default: int | None,
    *,
    min: int,
    max: int,
    label: Any,
    group: Group,
    help: Any = "",
    none_text: Any = NONE,
    unit: Any = None,
    small: bool = False,
) -> models.IntegerField[int | None, int | None]:
    """A number that may be null (e.g. "no limit")."""
    cls = models.PositiveSmallIntegerField if small else models.PositiveIntegerField
    rule = IntRule(label=label, group=group, help=help, null=True, none_text=none_text, min=min, max=max, unit=unit)
    kwargs: dict[str, Any] = {"null": True, "blank": True}
    if default is not None:
        kwargs["default"] = default
    return _field(cls(**kwargs), rule)


def boolean(default: bool, *, label: Any, group: Group, help: Any = "") -> models.BooleanField[bool, bool]:
    return _field(models.BooleanField(default=default), BoolRule(label=label, group=group, help=help))


def choice(
    choices: Choices, default: str, *, max_length: int, label: Any, group: Group, help: Any = ""
) -> models.CharField[str, str]:
    rule = ChoiceRule(label=label, group=group, help=help, choices=list(choices))
    return _field(models.CharField(max_length=max_length, choices=choices, default=default), rule)


def text(
    default: str,
    *,
    max_length: int,
    label: Any,
    group: Group,
    help: Any = "",
    none_text: Any = NONE,
    no_personal_numbers: bool = False,
) -> Any:
    rule = TextRule(
        label=label,
        group=group,
        help=help,
        none_text=none_text,
        max_length=max_length,
        no_personal_numbers=no_personal_numbers,
    )
    return _field(models.CharField(max_length=max_length, blank=True, default=default), rule)


def multi_choice(
    choices: Choices | str,
    default: Callable[[], list[str]],
    *,
    label: Any,
    group: Group,
    help: Any = "",
    max_items: int = 10,
) -> models.JSONField[Any, Any]:
    rule = MultiChoiceRule(label=label, group=group, help=help, choices=choices, max_items=max_items)
    return _field(models.JSONField(default=default), rule)


def int_list(
    default: Callable[[], list[int]],
    *,
    label: Any,
    group: Group,
    help: Any = "",
    item_min: int = 1,
    item_max: int = 1_000_000,
    max_items: int = 10,
) -> models.JSONField[Any, Any]:
    rule = IntListRule(label=label, group=group, help=help, item_min=item_min, item_max=item_max, max_items=max_items)
    return _field(models.JSONField(default=default), rule)


def multipliers(
    default: Callable[[], dict[str, Any]], *, tiers: Sequence[tuple[str, Any]], label: Any, group: Group, help: Any = ""
) -> models.JSONField[Any, Any]:
    rule = MultipliersRule(label=label, group=group, help=help, tiers=tuple(tiers))
    return _field(models.JSONField(default=default), rule)


# The registry and what is built from it ------------------------------------------------------------------

Registry = dict[str, Rule]


def registry(model: type[models.Model] | None = None) -> Registry:
    """Every rule, in declaration order, read from the `Rules` model's fields (or another model's, in tests)."""
    if model is None:
        from timebank.orgs.models import Rules  # late: the model imports this module

        model = Rules
    found: Registry = {}
    for f in model._meta.concrete_fields:
        rule = getattr(f, "rule", None)
        if isinstance(rule, Rule):
            rule.name = f.name
            found[f.name] = rule
    return found


def names(rules: Registry | None = None) -> tuple[str, ...]:
    return tuple(rules if rules is not None else registry())


def clean(changes: dict[str, Any], rules: Registry | None = None) -> dict[str, Any]:
    """Check a change of rules; return the values to store. Raises `Invalid` naming the rule."""
    from timebank.lib.errors import Invalid  # lib is below orgs; late only to keep this module light

    rules = rules if rules is not None else registry()
    out: dict[str, Any] = {}
    for name, value in changes.items():
        rule = rules.get(name)
        if rule is None:
            raise Invalid(_("未知的规则。"), fields={name: UNKNOWN})
        if value is None:
            if not rule.null:
                raise Invalid(_("这项规则不能为空。"), fields={name: REQUIRED})
            out[name] = None
            continue
        try:
            out[name] = rule.check(value)
        except RuleError as exc:
            raise Invalid(
                _("%(rule)s：%(problem)s") % {"rule": rule.label, "problem": exc.message}, fields={name: exc.code}
            ) from None
    return out


def to_api(rules_row: Any, rules: Registry | None = None) -> dict[str, Any]:
    rules = rules if rules is not None else registry()
    return {
        "head_office_id": rules_row.head_office_id,
        **{name: (None if (v := getattr(rules_row, name)) is None else rule.to_api(v)) for name, rule in rules.items()},
    }


def out_schema(rules: Registry | None = None, *, name: str = "RulesOut") -> type[BaseModel]:
    from ninja import Schema

    rules = rules if rules is not None else registry()
    fields: dict[str, Any] = {"head_office_id": (int, ...)}
    for rule_name, rule in rules.items():
        fields[rule_name] = (rule.out_type(), ...)
    return create_model(name, __base__=Schema, **fields)


def patch_schema(rules: Registry | None = None, *, name: str = "RulesPatch") -> type[BaseModel]:
    """Every rule optional; null is accepted by the schema and refused by `clean` unless the rule is nullable."""
    from ninja import Schema

    rules = rules if rules is not None else registry()
    fields: dict[str, Any] = {rule_name: (rule.api_type() | None, None) for rule_name, rule in rules.items()}
    return create_model(name, __base__=Schema, **fields)


def labels(rules: Registry | None = None) -> dict[str, Any]:
    rules = rules if rules is not None else registry()
    return {name: rule.label for name, rule in rules.items()}


def show(name: str, value: Any, rules: Registry | None = None) -> str:
    rules = rules if rules is not None else registry()
    rule = rules.get(name)
    return rule.show(value) if rule is not None else str(value)


def form_fields(rules: Registry | None = None) -> dict[str, forms.Field]:
    """The page form's fields, ordered by fieldset."""
    rules = rules if rules is not None else registry()
    out: dict[str, forms.Field] = {}
    for group in Group:
        for rule in rules.values():
            if rule.group is group:
                out.update(rule.form_fields())
    return out


def fieldsets(rules: Registry | None = None) -> list[tuple[Any, list[str]]]:
    """(legend, form field names) per fieldset that has rules."""
    rules = rules if rules is not None else registry()
    out = []
    for group in Group:
        fields = [f for rule in rules.values() if rule.group is group for f in rule.form_fields()]
        if fields:
            out.append((group.legend, fields))
    return out


def initial(rules_row: Any, rules: Registry | None = None) -> dict[str, Any]:
    rules = rules if rules is not None else registry()
    out: dict[str, Any] = {}
    for name, rule in rules.items():
        out.update(rule.initial(getattr(rules_row, name)))
    return out


def from_form(cleaned: dict[str, Any], rules: Registry | None = None) -> dict[str, Any]:
    rules = rules if rules is not None else registry()
    return {name: rule.from_form(cleaned) for name, rule in rules.items()}


def form_aliases(rules: Registry | None = None) -> dict[str, str]:
    rules = rules if rules is not None else registry()
    return {k: v for rule in rules.values() for k, v in rule.form_aliases().items()}


def read_only_rows(rules_row: Any, rules: Registry | None = None) -> list[tuple[Any, str]]:
    """(label, text) for the read-only list, in fieldset order."""
    rules = rules if rules is not None else registry()
    ordered: Iterable[Rule] = (r for group in Group for r in rules.values() if r.group is group)
    return [row for rule in ordered for row in rule.rows(getattr(rules_row, rule.name))]
