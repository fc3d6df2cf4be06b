"""The 12349 hotline console's forms (moved out of its views): each carries a key per rendered form, since orders
and calls take none in their actions. They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.hotline.models import CallKind, CheckMethod, ReturnVisitOutcome
from timebank.lib import clock, idnumber
from timebank.lib.phone import clean_phone
from timebank.members.actions import MemberInput
from timebank.members.forms import PHONE_FORMAT
from timebank.members.forms_staff import MemberRegisterForm
from timebank.needs.models import FoundBy, NeedLevel
from timebank.orders.forms import DURATION_CHOICES, DispatchForm
from timebank.orders.models import Payer
from timebank.web.forms import Form, new_idempotency_key

# What a caller rings about; return visits and welfare checks are logged from their own lists.
CALLER_KINDS = [(k, label) for k, label in CallKind.choices if k not in (CallKind.RETURN_VISIT, CallKind.WELFARE_CHECK)]


SATISFACTION_CHOICES = [
    (5, _("5 分：非常满意")),
    (4, _("4 分：满意")),
    (3, _("3 分：一般")),
    (2, _("2 分：不太满意")),
    (1, _("1 分：很不满意")),
]


class KeyedForm(Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


def default_start(now: dt.datetime | None = None) -> dt.datetime:
    """At least an hour from now, on the next half hour: time for a volunteer to get there."""
    local = timezone.localtime(now or clock.now()) + dt.timedelta(hours=1)
    rounded = local.replace(second=0, microsecond=0)
    extra = (30 - rounded.minute % 30) % 30
    return rounded + dt.timedelta(minutes=extra)


class HotlineOrderForm(KeyedForm):
    service_item = forms.TypedChoiceField(label=_("服务项目"), coerce=int)
    start = forms.DateTimeField(
        label=_("上门时间"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    planned_minutes = forms.TypedChoiceField(label=_("大概需要多久"), coerce=int, choices=DURATION_CHOICES, initial=60)
    payer = forms.ChoiceField(
        label=_("谁来付时间"),
        choices=Payer.choices,
        widget=forms.RadioSelect,
        help_text=_("老人自己存的时间够用时默认用本人时间；不够时可用政府补贴或捐赠池。"),
    )
    urgent = forms.BooleanField(label=_("紧急，请尽快安排"), required=False)
    need = forms.TypedChoiceField(label=_("为哪项需求下单（可不选）"), coerce=int, required=False, empty_value=None)
    notes = forms.CharField(
        label=_("想对志愿者说的话"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("可以不填。比如：请先打电话、楼下门铃坏了。"),
    )

    def __init__(self, *args: Any, items: list[tuple[int, str]], needs: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("service_item").choices = [("", _("请选择")), *items]
        self._choice("need").choices = [("", _("不关联需求")), *needs]
        if not needs:
            del self.fields["need"]
        self.fields["service_item"].widget.attrs["accesskey"] = "o"

    def clean_start(self) -> dt.datetime:
        start: dt.datetime = self.cleaned_data["start"]
        if start < clock.now() - dt.timedelta(minutes=5):
            raise forms.ValidationError(_("这个时间已经过去了，请选一个以后的时间。"))
        return start


class ConsoleDispatchForm(DispatchForm):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)


class CallForm(KeyedForm):
    """A known caller's call. `started_at` is when the operator opened the caller (seconds since the epoch)."""

    started_at = forms.IntegerField(widget=forms.HiddenInput, required=False, min_value=0, max_value=2**40)
    kind = forms.ChoiceField(label=_("来电事由"), choices=CALLER_KINDS)
    summary = forms.CharField(
        label=_("通话内容摘要"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("写清楚来电人说了什么、办了什么，方便下一位坐席接着办。"),
    )
    order = forms.TypedChoiceField(label=_("这通电话办的订单"), coerce=int, required=False, empty_value=None)
    need = forms.TypedChoiceField(label=_("这通电话涉及的需求"), coerce=int, required=False, empty_value=None)

    def __init__(self, *args: Any, orders: list[tuple[int, str]], needs: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("order").choices = [("", _("没有下单")), *orders]
        self._choice("need").choices = [("", _("不涉及需求")), *needs]
        if not needs:
            del self.fields["need"]
        self.fields["summary"].widget.attrs["accesskey"] = "l"


class UnknownCallForm(KeyedForm):
    """A call from somebody the desk cannot find: every call is logged."""

    phone = forms.CharField(label=_("来电号码（可不填）"), max_length=20, required=False)
    kind = forms.ChoiceField(label=_("来电事由"), choices=CALLER_KINDS)
    summary = forms.CharField(label=_("通话内容摘要"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    org = forms.TypedChoiceField(
        label=_("这通电话记在哪里"),
        coerce=int,
        help_text=_("知道来电人住在哪个社区的话，请选那个社区。"),
    )

    def __init__(self, *args: Any, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org").choices = orgs
        self.fields["phone"].widget.attrs.update({"inputmode": "tel", "autocomplete": "off", "accesskey": "u"})


class ReturnVisitForm(KeyedForm):
    outcome = forms.ChoiceField(label=_("回访结果"), choices=ReturnVisitOutcome.choices, widget=forms.RadioSelect)
    satisfaction = forms.TypedChoiceField(
        label=_("满意度"),
        coerce=int,
        required=False,
        empty_value=None,
        choices=SATISFACTION_CHOICES,
        widget=forms.RadioSelect,
        help_text=_("接通了才填。"),
    )
    note = forms.CharField(label=_("备注（可以不填）"), required=False, max_length=500)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("outcome") == ReturnVisitOutcome.REACHED:
            if data.get("satisfaction") is None:
                self.add_error("satisfaction", _("接通了的话，请选老人的满意度。"))
        else:
            data["satisfaction"] = None  # not reached: a satisfaction picked by mistake is dropped
        return data


FOUND_CHOICES = [("yes", _("一切正常")), ("no", _("有情况"))]


class WelfareCheckForm(KeyedForm):
    method = forms.ChoiceField(
        label=_("巡访方式"), choices=CheckMethod.choices, widget=forms.RadioSelect, initial=CheckMethod.PHONE
    )
    found = forms.ChoiceField(label=_("老人情况"), choices=FOUND_CHOICES, widget=forms.RadioSelect)
    health_changed = forms.BooleanField(label=_("健康状况有变化"), required=False)
    note = forms.CharField(label=_("情况记录（可以不填）"), required=False, max_length=500)
    need_level = forms.ChoiceField(
        label=_("登记一项需求"),
        required=False,
        help_text=_("健康状况有变化时，请选需求等级，社区工作人员会跟进。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("need_level").choices = [("", _("不登记需求")), *NeedLevel.choices]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("health_changed") and not data.get("need_level"):
            self.add_error("need_level", _("健康状况有变化，请登记一项需求，以便社区跟进。"))
        return data


# ---- an unknown caller: register, their need, an order (the steps of one call) -------------------------------

# What the desk takes down about an unknown caller, by the API's field names (`POST /api/v1/members`).
CALLER_FIELDS = ("name", "phone", "id_number", "birth_date", "gender", "address", "recipient_categories")


class CallerRegisterForm(MemberRegisterForm):
    """The old person on the phone, registered as a recipient: the staff's walk-in form without a login, roles or
    occupation. The phone and the ID number are checked here too, so every mistake shows at once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args: Any, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_reg_%s")
        super().__init__(*args, orgs=orgs, **kwargs)
        for name in ("username", "roles", "occupation"):
            del self.fields[name]
        self.fields["phone"].required = True
        self.fields["id_number"].help_text = _("有身份证号请填上：已经登记过的老人会查出来，不会重复登记。")

    def clean_phone(self) -> str:
        phone = clean_phone(self.cleaned_data.get("phone", ""))
        if not phone:
            raise forms.ValidationError(PHONE_FORMAT)
        return phone

    def clean_id_number(self) -> str:
        text = str(self.cleaned_data.get("id_number") or "").strip()
        if not text:
            return ""
        try:
            return idnumber.normalise(text)
        except idnumber.IdNumberError as exc:
            if exc.reason == "checksum":
                raise forms.ValidationError(_("身份证号校验位不正确，请核对。")) from None
            raise forms.ValidationError(_("身份证号格式不正确，应为 18 位。")) from None

    def caller_input(self) -> MemberInput:
        data = self.member_input(CALLER_FIELDS)
        data.roles = ["recipient"]
        return data


class CallerNeedForm(KeyedForm):
    """`POST /api/v1/needs` for the caller just registered: found by the phone call."""

    level = forms.ChoiceField(
        label=_("需求等级"), choices=NeedLevel.choices, widget=forms.RadioSelect, initial=NeedLevel.GENERAL
    )
    item_ids = forms.TypedMultipleChoiceField(
        label=_("需要哪些服务（可多选）"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    notes = forms.CharField(
        label=_("情况说明"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("老人说了什么，身体和家里是什么情况。"),
    )
    found_by = forms.ChoiceField(choices=FoundBy.choices, initial=FoundBy.PHONE_CALL, widget=forms.HiddenInput)

    def __init__(self, *args: Any, items: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_need_%s")
        super().__init__(*args, **kwargs)
        self._choice("item_ids").choices = items


class CallerOrderForm(KeyedForm):
    """`POST /api/v1/orders` for the caller just registered (channel hotline), linked to the need recorded."""

    service_item_id = forms.TypedChoiceField(label=_("服务项目"), coerce=int)
    scheduled_start = forms.DateTimeField(
        label=_("上门时间"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    planned_minutes = forms.TypedChoiceField(label=_("大概需要多久"), coerce=int, choices=DURATION_CHOICES, initial=60)
    payer = forms.ChoiceField(
        label=_("谁来付时间"),
        choices=Payer.choices,
        widget=forms.RadioSelect,
        initial=Payer.SUBSIDY,
        help_text=_("老人自己存的时间够用时默认用本人时间；不够时可用政府补贴或捐赠池。"),
    )
    urgent = forms.BooleanField(label=_("紧急，请尽快安排"), required=False)
    notes = forms.CharField(
        label=_("想对志愿者说的话"),
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("可以不填。比如：请先打电话、楼下门铃坏了。"),
    )

    def __init__(self, *args: Any, items: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_order_%s")
        kwargs.setdefault("initial", {}).setdefault("scheduled_start", default_start())
        super().__init__(*args, **kwargs)
        self._choice("service_item_id").choices = [("", _("请选择")), *items]

    def clean_scheduled_start(self) -> dt.datetime:
        start: dt.datetime = self.cleaned_data["scheduled_start"]
        if start < clock.now() - dt.timedelta(minutes=5):
            raise forms.ValidationError(_("这个时间已经过去了，请选一个以后的时间。"))
        return start


class CallEditForm(KeyedForm):
    """Correct a logged call (`PATCH /hotline/calls/{id}`): the API's fields. Only what was changed is sent; an
    order or need already linked stays (the action refuses linking another)."""

    summary = forms.CharField(label=_("通话内容摘要"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    ended_at = forms.DateTimeField(
        label=_("通话结束时间"),
        required=False,
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("不能晚于现在，也不能早于通话开始的时间。"),
    )
    order_id = forms.IntegerField(label=_("这通电话办的订单编号"), required=False, min_value=1, max_value=2**31 - 1)
    need_id = forms.IntegerField(label=_("这通电话涉及的需求编号"), required=False, min_value=1, max_value=2**31 - 1)
