"""`{% statement_lines legs member as lines %}`: a statement's lines in the member's words
(timebank.ledger.statement_words)."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from timebank.ledger.models import Leg
from timebank.ledger.statement_words import StatementLine, describe

register = template.Library()


@register.simple_tag
def statement_lines(legs: Iterable[Leg], member: object) -> list[StatementLine]:
    return describe(legs, int(getattr(member, "pk", 0) or 0))
