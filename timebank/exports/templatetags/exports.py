"""`{% my_downloads %}`: the member's own downloads (certificate, statement, personal data) for the my-time page."""

from __future__ import annotations

from typing import Any

from django import template

from timebank.exports.forms import PeriodForm, default_period

register = template.Library()


@register.inclusion_tag("exports/_my_downloads.html", takes_context=True)
def my_downloads(context: Any, member: Any) -> dict[str, Any]:
    return {
        "member": member,
        "certificate_form": PeriodForm(initial=default_period(), prefix="cert"),
        "statement_form": PeriodForm(initial=default_period(), prefix="stmt"),
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }
