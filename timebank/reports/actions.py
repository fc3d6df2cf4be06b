"""Writes of the reports app: the head office's risk thresholds."""

from __future__ import annotations

from typing import Any

from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.lib.errors import Invalid
from timebank.orgs.models import Org, OrgKind, User
from timebank.reports.models import RiskRules

RISK_FIELDS: dict[str, tuple[int, int]] = {
    "window_months": (1, 36),
    "default_reserve_age": (40, 100),
    "max_months_to_honour": (1, 1200),
    "max_unfilled_percent": (0, 100),
    "max_ageing_percent": (1, 1000),
    "anomaly_daily_hours": (1, 24),
    "anomaly_yearly_hours": (1, 8784),
}


def risk_rules_for(head_office: Org) -> RiskRules:
    """The head office's thresholds; defaults until someone saves them (reading writes nothing). Read on the
    primary even inside a report that reads from the replica: the page right after a save shows its alerts
    recomputed with the thresholds just saved."""
    found = RiskRules.objects.using(DEFAULT_DB_ALIAS).filter(head_office=head_office).first()
    return found if found is not None else RiskRules(head_office=head_office)


@transaction.atomic
def do_update_risk_rules(actor: User | None, head_office: Org, changes: dict[str, Any]) -> RiskRules:
    if head_office.kind != OrgKind.HEAD_OFFICE:
        raise Invalid(_("风险阈值只属于总行。"), code="not_head_office")
    for field, value in changes.items():
        bounds = RISK_FIELDS.get(field)
        if bounds is None:
            raise Invalid(_("未知的风险阈值。"), fields={field: "unknown"})
        if not isinstance(value, int) or isinstance(value, bool) or not bounds[0] <= value <= bounds[1]:
            raise Invalid(
                _("%(field)s 应在 %(low)s 到 %(high)s 之间。") % {"field": field, "low": bounds[0], "high": bounds[1]},
                fields={field: "out_of_range"},
            )
    rules, _created = RiskRules.objects.select_for_update().get_or_create(head_office=head_office)
    before = {f: getattr(rules, f) for f in changes}
    for field, value in changes.items():
        setattr(rules, field, value)
    rules.save()
    record(actor, "risk_rules.update", rules, bank_id=head_office.pk, data={"before": before, "after": changes})
    return rules
