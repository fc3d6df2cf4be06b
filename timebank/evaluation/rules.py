"""The head office's evaluation rules, read without writing: a bank that never saved any gets the defaults."""

from __future__ import annotations

from timebank.evaluation.models import EvaluationRules
from timebank.orgs.models import Rules, default_star_thresholds


def evaluation_rules(bank_id: int) -> EvaluationRules:
    rules = EvaluationRules.objects.filter(head_office_id=bank_id).first()
    return rules if rules is not None else EvaluationRules(head_office_id=bank_id)


def star_thresholds(bank_id: int) -> list[int]:
    """The head office's thresholds in hours, ascending; anything unusable falls back to the defaults."""
    raw = Rules.objects.filter(head_office_id=bank_id).values_list("star_thresholds_hours", flat=True).first()
    if not isinstance(raw, list) or not raw or not all(isinstance(t, int) and not isinstance(t, bool) for t in raw):
        return default_star_thresholds()
    return sorted(t for t in raw if t > 0) or default_star_thresholds()
