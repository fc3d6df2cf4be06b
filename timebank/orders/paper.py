"""Paper mode on the staff order page (also the hotline console's order view): staff and operators of the
order's subtree accept, check in and check out for a volunteer without a smartphone, from a paper sign-in sheet
or a phone call. The form names its inputs after the API's fields (`at`, `source`); the action and its rules
are orders.actions (`on_behalf_for`, `do_accept`, `do_check_in`, `do_check_out`), who may is the transition
table's `on_behalf` (orders.rules)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.orders import actions
from timebank.orders.models import Order, PaperSource
from timebank.orders.rules import acts_on_behalf, allows
from timebank.web.forms import Form, new_idempotency_key

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise as Words
else:
    Words = str


@dataclass(frozen=True)
class Step:
    action: str
    title: Words  # the section's heading and the button (lazy: translated when shown)
    done: Words  # what the page says once it is done
    act: Callable[..., Order]


STEPS: dict[str, Step] = {
    step.action: step
    for step in (
        Step("accept", _("代为接单"), _("已代志愿者接单。"), actions.do_accept),
        Step("check-in", _("代为签到"), _("已代志愿者签到，服务开始。"), actions.do_check_in),
        Step("check-out", _("代为签退"), _("已代志愿者签退。回访老人核实后，请在下面确认。"), actions.do_check_out),
    )
}


class PaperForm(Form):
    """What the paper sheet or the phone call says: when (`at`, default now) and how staff know (`source`)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    at = forms.DateTimeField(
        label=_("时间"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("签到表上写的或电话里说的时间，不能晚于现在。"),
    )
    source = forms.ChoiceField(label=_("来源"), choices=PaperSource.choices, widget=forms.RadioSelect)

    def __init__(self, *args: Any, action: str, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        kwargs["initial"].setdefault("at", clock.localtime().replace(second=0, microsecond=0))
        kwargs["initial"].setdefault("source", PaperSource.PAPER_SHEET)
        kwargs.setdefault("auto_id", f"id_{action.replace('-', '_')}_%s")  # unique ids; the names stay the API's
        super().__init__(*args, **kwargs)


def paper_step(order: Order, roles: set[str], bound: PaperForm | None = None) -> dict[str, Any] | None:
    """The paper-mode form the page shows for this order, if the transition table allows one of the steps in
    its state and the caller acts for its volunteer (not the volunteer themselves): its step and form."""
    if order.volunteer_id is None:
        return None
    for action, step in STEPS.items():
        if allows(action, order.state) and acts_on_behalf(action, roles):
            return {"step": step, "form": bound or PaperForm(action=action)}
    return None
