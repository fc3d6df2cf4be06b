"""Issue 15: every rule of a head office is declared once (on the `Rules` model, with a helper of
`timebank.orgs.rules`); the action's checks, the API's schemas, the page form and the notice are built from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.db import models
from django.test.utils import isolate_apps
from pydantic import ValidationError

from tests.conftest import World, error_code
from timebank.lib.errors import Invalid
from timebank.notices.models import Notice, NoticeSource
from timebank.orgs import rules as rule_registry
from timebank.orgs.actions import do_update_rules
from timebank.orgs.forms import RulesForm
from timebank.orgs.models import Rules
from timebank.orgs.rules import Group

ROOT = Path(__file__).resolve().parent.parent / "timebank"
DECLARATION = ROOT / "orgs" / "models.py"

# A rule's name may be READ anywhere (`rules.<name>`, a query `values_list("<name>")` / `filter(<name>=...)`, a
# local variable holding the value, prose in `backticks`). What must not come back is a hand-written list of the
# rules: a dict key, a schema or form field, a tuple entry, a template line.
RESTATEMENTS = (
    r'^\s*["\']{name}["\'],?\s*$',  # an entry of a hand-written tuple/list of rules
    r'["\']{name}["\']\s*:',  # a dict key (an output dict, labels, initial values)
    r"^\s+{name}\s*(?::[^=]*)?=\s*(?:forms|models|rules|schemas?)\.\w+\(",  # a form/model field declared again
    r"^\s+{name}\s*:\s*(?:Annotated|int|bool|str|list|dict|Literal|Multipliers)\b",  # a schema field
    r"\bform\.{name}\b",  # a form field placed by hand in a template
)
# Uses that look like a restatement but read the rule, each with the text that shows it is that use.
ALLOWED = {
    # A settlement keeps the share it applied: its own column and its audit entry, not the rule.
    ("ledger/models.py", "goods_share_percent"): "goods_share_percent = models.PositiveSmallIntegerField()",
    ("ledger/settlement.py", "goods_share_percent"): '"goods_share_percent": rules.goods_share_percent',
    # The buy-service page puts the refusal that names the rule beside the form field it concerns.
    ("funds/views_in_kind.py", "dispatch_within_hours"): '"dispatch_within_hours": "unfillable"',
    # Matching carries the rule's value in its `Need`.
    ("orders/matching.py", "serve_relatives"): "serve_relatives: bool = False  # the rule",
}


def _sources() -> list[Path]:
    return [
        p
        for p in ROOT.rglob("*")
        if p.suffix in {".py", ".html", ".txt", ".js"} and "migrations" not in p.parts and "locale" not in p.parts
    ]


def test_each_rule_is_declared_once_and_only_read_elsewhere() -> None:
    registry = rule_registry.registry()
    assert len(registry) >= 17
    declaration = DECLARATION.read_text()
    found: list[str] = []
    for name in registry:
        # The declaration: exactly one line `<name> = rules.<kind>(` on the model, nowhere else in models.py.
        assert len(re.findall(rf"^\s+{name} = rules\.\w+\(", declaration, re.M)) == 1, name
        assert len(re.findall(rf"(?<!\.)\b{name}\b", declaration)) == 1, name  # (`rules.multipliers(` is a kind)
        patterns = [re.compile(p.format(name=name), re.M) for p in RESTATEMENTS]
        for path in _sources():
            if path == DECLARATION:
                continue
            rel = str(path.relative_to(ROOT))
            for n, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
                if not re.search(rf"\b{name}\b", line):
                    continue
                allowed = ALLOWED.get((rel, name))
                if (allowed and allowed in line) or "fields={" in line:  # or a refusal naming the rule it applied
                    continue
                if any(p.search(line) for p in patterns):
                    found.append(f"{rel}:{n}: {line.strip()}")
    assert not found, "rules written out by hand outside their declaration:\n" + "\n".join(found)


def test_each_label_and_help_text_is_written_once() -> None:
    texts = {str(t) for rule in rule_registry.registry().values() for t in (rule.label, rule.help) if str(t)}
    sources = {p: p.read_text(errors="ignore") for p in _sources() if p != DECLARATION}
    for text in texts:
        again = [str(p.relative_to(ROOT)) for p, src in sources.items() if f'"{text}"' in src]
        assert not again, (text, again)
    # The rules page lists no rule by hand: its fieldsets and read-only list are loops.
    page = (ROOT / "orgs" / "templates" / "orgs" / "rules.html").read_text()
    assert not any(name in page for name in rule_registry.registry())


def test_everything_is_built_from_the_registry(world: World) -> None:
    names = set(rule_registry.registry())
    doc = world.api("anonymous").get("/api/v1/openapi.json").json()["components"]["schemas"]
    assert set(doc["RulesPatch"]["properties"]) == names
    assert set(doc["RulesOut"]["properties"]) == names | {"head_office_id"}
    nullable = {
        k for k, v in doc["RulesOut"]["properties"].items() if any(a.get("type") == "null" for a in v.get("anyOf", []))
    }
    assert (
        nullable
        == {n for n, r in rule_registry.registry().items() if r.null}
        == {
            "reserve_min_age",
            "approval_threshold_minutes",
            # Issue 16's rules other cities use: null is off.
            "storage_cap_hours",
            "spend_min_star_level",
            "yearly_grant_minutes",
            "yearly_grant_min_age",
            "guarantee_after_days",
            "guarantee_yuan_per_hour",
        }
    )
    form = RulesForm()
    for name, rule in rule_registry.registry().items():
        assert set(rule.form_fields()) <= set(form.fields), name
    assert set(rule_registry.labels()) == names
    rules = world.api("head_office_admin").get(f"/api/v1/orgs/{world.bank.pk}/rules").json()
    assert set(rules) == names | {"head_office_id"}


@isolate_apps("timebank.orgs")
def test_a_new_rule_declared_once_appears_in_the_schemas_the_form_the_checks_and_the_notice() -> None:
    class RulesWithTea(models.Model):  # noqa: DJ008
        confirm_grace_minutes = rule_registry.integer(
            30, min=0, max=240, label="确认时可多记的分钟数", group=Group.DISPATCH
        )
        tea_break_minutes = rule_registry.integer(
            15, min=0, max=60, label="茶歇（分钟）", help="服务中间可以休息多久。", group=Group.TRUST
        )

        class Meta:
            app_label = "orgs"

    registry = rule_registry.registry(RulesWithTea)
    assert list(registry) == ["confirm_grace_minutes", "tea_break_minutes"]
    # API: input and output schemas, strict, bounded.
    patch = rule_registry.patch_schema(registry, name="TeaPatch")
    prop = patch.model_json_schema()["properties"]["tea_break_minutes"]
    assert {"type": "integer", "minimum": 0, "maximum": 60} in prop["anyOf"]
    assert patch.model_validate({"tea_break_minutes": 20}).model_dump(exclude_unset=True) == {"tea_break_minutes": 20}
    for bad in ("20", 61, -1, True, 2.5):
        with pytest.raises(ValidationError):
            patch.model_validate({"tea_break_minutes": bad})
    out = rule_registry.out_schema(registry, name="TeaOut")
    assert out.model_json_schema()["properties"]["tea_break_minutes"]["type"] == "integer"
    row = RulesWithTea(confirm_grace_minutes=30, tea_break_minutes=15)
    row.head_office_id = 1  # type: ignore[attr-defined]
    assert rule_registry.to_api(row, registry)["tea_break_minutes"] == 15
    # The action's checks.
    assert rule_registry.clean({"tea_break_minutes": 60}, registry) == {"tea_break_minutes": 60}
    cases: list[tuple[Any, str]] = [
        (61, "out_of_range"),
        ("5", "wrong_type"),
        (None, "required"),
        (False, "wrong_type"),
    ]
    for bad, code in cases:
        with pytest.raises(Invalid) as refused:
            rule_registry.clean({"tea_break_minutes": bad}, registry)
        assert refused.value.fields == {"tea_break_minutes": code}
    # The page: a field in its fieldset, its initial value, what it stores, the read-only line.
    fields = rule_registry.form_fields(registry)
    assert fields["tea_break_minutes"].label == "茶歇（分钟）"
    assert fields["tea_break_minutes"].help_text == "服务中间可以休息多久。"
    legends = dict(rule_registry.fieldsets(registry))
    assert legends[Group.TRUST.legend] == ["tea_break_minutes"]
    assert rule_registry.initial(row, registry)["tea_break_minutes"] == 15
    assert rule_registry.from_form({"confirm_grace_minutes": 30, "tea_break_minutes": 5}, registry) == {
        "confirm_grace_minutes": 30,
        "tea_break_minutes": 5,
    }
    assert ("茶歇（分钟）", "15") in rule_registry.read_only_rows(row, registry)
    # The notice's label.
    assert rule_registry.labels(registry)["tea_break_minutes"] == "茶歇（分钟）"


def test_the_action_checks_every_rule_whoever_calls_it(world: World) -> None:
    rules = Rules.objects.get(head_office=world.bank)
    ok = {"ordinary": 1, "technical": 2, "professional": 3}
    for changes, code in (
        ({"star_thresholds_hours": [300, 100]}, "not_increasing"),
        ({"star_thresholds_hours": [100, 100]}, "not_increasing"),
        ({"star_thresholds_hours": []}, "out_of_range"),
        ({"star_thresholds_hours": [0, 100]}, "out_of_range"),
        ({"multipliers": {**ok, "ordinary": 0}}, "out_of_range"),
        ({"multipliers": {**ok, "ordinary": 1.2345}}, "out_of_range"),
        ({"multipliers": {**ok, "ordinary": "1"}}, "wrong_type"),
        ({"multipliers": {"ordinary": 1}}, "wrong_type"),
        ({"multipliers": {**ok, "luxury": 9}}, "wrong_type"),
        ({"goods_share_percent": 101}, "out_of_range"),
        ({"goods_share_percent": None}, "required"),
        ({"goods_share_percent": "60"}, "wrong_type"),
        ({"dispatch_within_hours": 0}, "out_of_range"),
        ({"serve_relatives": "yes"}, "wrong_type"),
        ({"settlement_period": "month"}, "wrong_type"),
        ({"welfare_check_categories": ["nonsense"]}, "out_of_range"),
        ({"no_such_rule": 1}, "unknown"),
    ):
        with pytest.raises(Invalid) as refused:
            do_update_rules(None, rules, {"overdraft_minutes": 30, **changes})
        assert set(refused.value.fields.values()) == {code}, changes
    assert Rules.objects.get(pk=rules.pk).overdraft_minutes == 0  # nothing half-written
    done = do_update_rules(None, rules, {"multipliers": {**ok, "technical": 2.5}, "approval_threshold_minutes": None})
    assert done.multipliers == {"ordinary": 1, "technical": 2.5, "professional": 3}
    assert done.approval_threshold_minutes is None


def test_api_types_are_strict_and_refusals_name_the_rule(world: World) -> None:
    url = f"/api/v1/orgs/{world.bank.pk}/rules"
    admin = world.api("head_office_admin")
    for body in (
        {"checkin_early_minutes": "60"},
        {"require_insurance_to_dispatch": "yes"},
        {"allow_volunteer_take": 1},
        {"serve_relatives": "true"},
        {"star_thresholds_hours": ["100"]},
    ):
        assert admin.patch(url, body).status_code == 422, body
    refused = admin.patch(url, {"star_thresholds_hours": [300, 100]})
    assert refused.status_code == 422 and refused.json()["error"]["fields"] == {
        "star_thresholds_hours": "not_increasing"
    }
    refused = admin.patch(url, {"serve_relatives": None})
    assert refused.status_code == 422 and refused.json()["error"]["fields"] == {"serve_relatives": "required"}
    assert error_code(refused) == "invalid"
    assert admin.get(url).json()["serve_relatives"] is False


def test_the_notice_reads_the_registry(world: World) -> None:
    url = f"/api/v1/orgs/{world.bank.pk}/rules"
    body: dict[str, Any] = {"reserve_min_age": 60, "serve_relatives": True, "checkout_grace_minutes": 15}
    assert world.api("head_office_admin").patch(url, body).status_code == 200
    notice = Notice.objects.get(source=NoticeSource.RULES)
    labels = rule_registry.labels()
    for name in body:
        assert str(labels[name]) in notice.body
    assert "不限" in notice.body and "60 岁" in notice.body and "是" in notice.body
