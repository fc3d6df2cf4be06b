"""The demo's credits above the approval threshold (四眼原则): the second person approves them at once, so the
demo's history reads as it would have after both people signed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from timebank.approvals.actions import do_approve
from timebank.approvals.models import Approval
from timebank.orgs.models import User


def with_second_person(second: User | None, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call `action(*args, **kwargs)`; when it answers an Approval waiting for a second person, `second` approves
    it at once. Answers what the action answered."""
    answer = action(*args, **kwargs)
    made = answer[0] if isinstance(answer, tuple) else answer
    if isinstance(made, Approval):
        assert second is not None
        do_approve(second, made)
    return answer
