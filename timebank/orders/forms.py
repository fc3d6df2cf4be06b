"""The order pages' forms: ordering a service, the volunteer's and the staff's steps, reviews and giving time.
They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.orders.actions import MAX_PLANNED_MINUTES
from timebank.orders.models import Payer
from timebank.web.forms import Form, new_idempotency_key

# How long a service is planned for; the recipient's time pays planned × multiplier at most (plus grace).
DURATION_CHOICES = [(30, _("半小时")), (60, _("1 小时")), (90, _("1 个半小时")), (120, _("2 小时")), (180, _("3 小时"))]


class OrderConfirmForm(Form):
    recipient = forms.TypedChoiceField(label=_("为谁点单"), coerce=int)
    start = forms.DateTimeField(
        label=_("上门时间"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    planned_minutes = forms.TypedChoiceField(label=_("大概需要多久"), coerce=int, choices=DURATION_CHOICES, initial=60)
    notes = forms.CharField(
        label=_("想对志愿者说的话"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("可以不填。比如：请先打电话、楼下门铃坏了。"),
    )

    def __init__(self, *args: Any, people: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("recipient").choices = people
        if len(people) == 1:
            self.fields["recipient"].widget = forms.HiddenInput()

    def clean_start(self) -> dt.datetime:
        return visit_start(self.cleaned_data["start"])


# No home visit is booked at night (local time): from NIGHT_START to NIGHT_END the next morning. A member or relative
# choosing a time of their own is refused it at step 2 and at step 3; the usual slots (SLOT_HOURS) lie in the day,
# and an emergency (raised for now, paid by the community) and staff or the hotline ordering are not held to it.
NIGHT_START = dt.time(21, 0)
NIGHT_END = dt.time(7, 0)


def is_night(start: dt.datetime) -> bool:
    at = timezone.localtime(start).time()
    return at >= NIGHT_START or at < NIGHT_END


def visit_start(start: dt.datetime) -> dt.datetime:
    """A visit's time is not in the past (5 minutes' grace) nor at night: refused at step 2 where it is chosen, and
    at step 3, with the reason beside the time field."""
    if start < clock.now() - dt.timedelta(minutes=5):
        raise forms.ValidationError(_("这个时间已经过去了，请选一个以后的时间。"))
    if is_night(start):
        raise forms.ValidationError(
            _("晚上 %(start)s 到第二天早上 %(end)s 不安排上门服务，请选白天的时间。有急事请点“紧急救援”或拨打 12349。")
            % {"start": NIGHT_START.strftime("%H:%M"), "end": NIGHT_END.strftime("%H:%M")}
        )
    return start


class TimeForm(Form):
    start = forms.DateTimeField(
        label=_("自己选时间"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def clean_start(self) -> dt.datetime:
        return visit_start(self.cleaned_data["start"])


class CodeForm(Form):
    code = forms.CharField(
        label=_("老人告诉您的确认码"),
        max_length=12,
        help_text=_("服务结束后，请老人或家属把手机上的 6 位确认码告诉您。"),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]*"}),
    )


class ReasonForm(Form):
    reason = forms.CharField(label=_("原因"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


class NoShowForm(Form):
    """The volunteer did not come (`POST /orders/{id}/no-show`): the API's optional `reason`, and the form's key
    (a double submit records one no-show)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    reason = forms.CharField(
        label=_("情况说明"),
        max_length=500,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("例如：老人来电说志愿者没有到。订单会回到待派单，可以重新派给别人。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


class ReviewForm(Form):
    rating = forms.TypedChoiceField(
        label=_("给这次服务打分"),
        coerce=int,
        widget=forms.RadioSelect,
        choices=[
            (5, _("5 分：非常满意")),
            (4, _("4 分：满意")),
            (3, _("3 分：一般")),
            (2, _("2 分：不太满意")),
            (1, _("1 分：很不满意")),
        ],
    )
    comment = forms.CharField(
        label=_("说几句（可以不填）"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )


class TransferForm(Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)
    to_member = forms.TypedChoiceField(label=_("送给谁"), coerce=int, required=False)
    hours = forms.IntegerField(label=_("几小时"), min_value=0, max_value=10_000, initial=1)
    minutes = forms.TypedChoiceField(
        label=_("再加几分钟"), coerce=int, choices=[(0, "0"), (15, "15"), (30, "30"), (45, "45")], initial=0
    )
    memo = forms.CharField(label=_("备注（可以不填）"), required=False, max_length=500)

    def __init__(self, *args: Any, relatives: list[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if relatives is None:
            del self.fields["to_member"]
        else:
            self._choice("to_member").choices = relatives
            self.fields["to_member"].required = True
        self.fields["hours"].widget.attrs["inputmode"] = "numeric"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        total = (data.get("hours") or 0) * 60 + (data.get("minutes") or 0)
        if "hours" in data and "minutes" in data and total <= 0:
            self.add_error("hours", _("请填写要送出的时间，至少 15 分钟。"))
        data["total_minutes"] = total
        return data


class OrderFilterForm(Form):
    q = forms.CharField(label=_("老人姓名"), required=False, max_length=50)
    state = forms.ChoiceField(label=_("状态"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from timebank.orders.models import OrderState
        from timebank.orders.worklists import WORKLISTS

        super().__init__(*args, **kwargs)
        # The workbench's lists that are not one state (overdue, urgent) may be chosen too: their counters link here.
        named = [(name, w.label) for name, w in WORKLISTS.items() if name not in OrderState.values]
        self._choice("state").choices = [("", _("全部")), ("open", _("未完成的")), *named, *OrderState.choices]


class DispatchForm(Form):
    volunteer = forms.TypedChoiceField(
        label=_("派给哪位志愿者"),
        coerce=int,
        widget=forms.RadioSelect,
        help_text=_("按匹配程度排列：距离、空闲时间、意愿和技能、评分，以及近期服务少的优先。"),
    )

    def __init__(self, *args: Any, volunteers: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("volunteer").choices = volunteers


class StaffConfirmForm(Form):
    actual_minutes = forms.IntegerField(
        label=_("实际服务时长（分钟）"),
        min_value=1,
        max_value=MAX_PLANNED_MINUTES + 240,
        help_text=_("按签到签退算出的时长已经填好；核实后可以修改。"),
    )
    reason = forms.CharField(
        label=_("超出签到签退时间的原因"),
        required=False,
        max_length=500,
        help_text=_("确认的时长超过签到到签退的时间（加宽限）时必须填写，会记入审计记录。"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # The API's `payer`: staff may confirm it paid by the subsidy instead, when the donation pool or the recipient
    # cannot pay (orders.actions.do_confirm). The first choice keeps the order's own payer.
    payer = forms.ChoiceField(label=_("谁来付时间"), required=False)

    def __init__(self, *args: Any, payer: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        own = Payer(payer).label if payer in Payer.values else ""
        subsidy = [] if payer == Payer.SUBSIDY else [(Payer.SUBSIDY.value, Payer.SUBSIDY.label)]
        self._choice("payer").choices = [("", own), *subsidy]


class ServiceRecordForm(Form):
    """Service done on paper (an activity, a talk, a clean-up day): the API's fields (`volunteer_id`,
    `service_item_id`, `minutes`, `served_at`, `recipient_id`, `memo`). The action checks the rules (1 to 1440
    minutes, not in the future, the same bank, the volunteer's eligibility, the approval gate)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    volunteer_id = forms.IntegerField(label=_("志愿者"), help_text=_("会员编号"), min_value=1, max_value=2**31 - 1)
    service_item_id = forms.TypedChoiceField(label=_("服务项目"), coerce=int)
    minutes = forms.IntegerField(label=_("时间（分钟）"))
    served_at = forms.DateTimeField(
        label=_("开始时间"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    recipient_id = forms.IntegerField(
        label=_("服务对象"), required=False, min_value=1, max_value=2**31 - 1, help_text=_("会员编号")
    )
    memo = forms.CharField(label=_("备注"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, items: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        kwargs["initial"].setdefault("served_at", clock.localtime().replace(second=0, microsecond=0))
        super().__init__(*args, **kwargs)
        self._choice("service_item_id").choices = [("", "—"), *items]
