"""The pages' forms. They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.members.models import Gender
from timebank.orders.actions import MAX_PLANNED_MINUTES
from timebank.orgs.models import Org, OrgKind


def new_idempotency_key() -> str:
    """One per rendered form: a double submit of the same form moves time once."""
    return uuid.uuid4().hex


class Form(forms.Form):
    def _choice(self, name: str) -> forms.ChoiceField:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        return field


class LoginForm(AuthenticationForm):
    error_messages = {
        "invalid_login": _("用户名或密码不对。请再试一次；忘了密码请联系社区工作人员。"),
        "inactive": _("这个账号已停用，请联系社区工作人员。"),
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("用户名")
        self.fields["password"].label = _("密码")
        self.locked_out = False

    def confirm_login_allowed(self, user: Any) -> None:
        # Suspended and departed members, and disabled staff logins (timebank.orgs.access.login_allowed).
        from timebank.orgs.access import login_allowed

        if not login_allowed(user):
            raise forms.ValidationError(self.error_messages["inactive"], code="inactive")
        if user.must_change_password:
            # A temporary password opens one login within 72 hours (timebank.orgs.actions.TEMPORARY_VALID).
            from timebank.lib.errors import NotAuthenticated
            from timebank.orgs.actions import do_use_temporary_password

            try:
                do_use_temporary_password(user)
            except NotAuthenticated as exc:
                raise forms.ValidationError(str(exc.message), code=exc.code) from None

    def clean(self) -> dict[str, Any]:
        # Many failures for this username from anywhere: only addresses it logged in from before may try.
        from timebank.lib.errors import Locked
        from timebank.orgs.lockout import check_guard

        if self.request is not None and self.data.get("username"):
            try:
                check_guard(self.request, str(self.data.get("username")))
            except Locked as exc:
                self.locked_out = True
                raise forms.ValidationError(str(exc.message), code=exc.code) from None
        try:
            return super().clean()
        except forms.ValidationError:
            # django-axes refused even to check the password: say so, instead of "wrong password".
            if self.request is not None and getattr(self.request, "axes_locked_out", False):
                self.locked_out = True
                minutes = round(float(settings.AXES_COOLOFF_TIME) * 60)
                raise forms.ValidationError(
                    _(
                        "登录失败的次数太多，这个账号暂时锁定了，%(minutes)s 分钟后再试。"
                        "着急的话请联系社区工作人员或拨打 12349。"
                    ),
                    code="locked_out",
                    params={"minutes": minutes},
                ) from None
            raise


def community_choices() -> list[tuple[str, list[tuple[int, str]]]]:
    """Communities (sub-branches and service points) grouped by bank, for choosing where to register."""
    groups: dict[int, tuple[str, list[tuple[int, str]]]] = {}
    banks = {o.pk: o.name for o in Org.objects.filter(kind=OrgKind.HEAD_OFFICE)}
    parents = {o.pk: o.name for o in Org.objects.filter(kind__in=[OrgKind.BRANCH, OrgKind.SUB_BRANCH])}
    for org in Org.objects.filter(kind__in=[OrgKind.SUB_BRANCH, OrgKind.OUTLET]).order_by("head_office_id", "path"):
        bank_id = org.head_office_id or 0
        label = f"{parents.get(org.parent_id or 0, '')} · {org.name}" if org.parent_id in parents else org.name
        groups.setdefault(bank_id, (banks.get(bank_id, ""), []))[1].append((org.pk, label))
    return list(groups.values())


CONSENT_HELP: dict[str, Any] = {
    "sensitive_personal_info": _("登记身份证号和住址时需要。不同意也可以注册，工作人员审核时会再问您。"),
    "health_info": _("安排适合的上门服务时需要。可以随时撤回。"),
    "share_with_insurer": _("为志愿者办理意外险时需要。"),
}


class JoinForm(Form):
    home_org = forms.TypedChoiceField(
        label=_("您住在哪个社区"),
        coerce=int,
        help_text=_("选您家所在的村或社区。以后搬家也不要紧，存的时间会跟着您走。"),
    )
    name = forms.CharField(label=_("姓名"), max_length=50)
    phone = forms.CharField(label=_("手机号码"), max_length=20, help_text=_("社区工作人员会打这个电话和您核对。"))
    gender = forms.ChoiceField(label=_("性别"), choices=Gender.choices, widget=forms.RadioSelect, required=False)
    birth_date = forms.DateField(
        label=_("出生日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),  # ISO, or the browser shows it empty
        help_text=_("可以不填。"),
    )
    roles = forms.MultipleChoiceField(
        label=_("您想做什么"),
        choices=[("volunteer", _("我想当志愿者，帮助别人")), ("recipient", _("我（或家里老人）需要上门服务"))],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("两项都可以选，也可以都不选、以后再说。"),
    )
    username = forms.CharField(label=_("用户名"), max_length=150, help_text=_("登录时用，可以用手机号。"))
    password1 = forms.CharField(label=_("密码"), widget=forms.PasswordInput, max_length=128, help_text=_("至少 8 位。"))
    password2 = forms.CharField(label=_("再输一次密码"), widget=forms.PasswordInput, max_length=128)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: list[Any] = [("", _("请选择"))]
        choices += community_choices()
        self._choice("home_org").choices = choices
        self.fields["username"].widget.attrs["autocomplete"] = "username"
        self.fields["password1"].widget.attrs["autocomplete"] = "new-password"
        self.fields["password2"].widget.attrs["autocomplete"] = "new-password"
        self.fields["phone"].widget.attrs.update({"inputmode": "tel", "autocomplete": "tel"})
        self.fields["name"].widget.attrs["autocomplete"] = "name"
        # PIPL separate consents (单独同意): one box each, none ticked in advance, recorded with date and scope.
        from timebank.members.models import ConsentScope

        for scope, label in ConsentScope.choices:
            self.fields[f"consent_{scope}"] = forms.BooleanField(
                label=_("我同意：%(what)s") % {"what": label}, required=False, help_text=CONSENT_HELP.get(scope, "")
            )

    def consents(self) -> dict[str, bool]:
        from timebank.members.models import ConsentScope

        return {scope: bool(self.cleaned_data.get(f"consent_{scope}")) for scope in ConsentScope.values}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", _("两次输入的密码不一样，请再输一次。"))
        return data


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
        start: dt.datetime = self.cleaned_data["start"]
        if start < timezone.now() - dt.timedelta(minutes=5):
            raise forms.ValidationError(_("这个时间已经过去了，请选一个以后的时间。"))
        return start


class TimeForm(Form):
    start = forms.DateTimeField(
        label=_("自己选时间"),
        input_formats=["%Y-%m-%dT%H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class CodeForm(Form):
    code = forms.CharField(
        label=_("老人告诉您的确认码"),
        max_length=12,
        help_text=_("服务结束后，请老人或家属把手机上的 6 位确认码告诉您。"),
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "pattern": "[0-9]*"}),
    )


class ReasonForm(Form):
    reason = forms.CharField(label=_("原因"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))


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


class MemberSearchForm(Form):
    q = forms.CharField(label=_("姓名或电话"), required=False, max_length=50)
    status = forms.ChoiceField(label=_("状态"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from timebank.members.models import MemberStatus

        super().__init__(*args, **kwargs)
        self._choice("status").choices = [("", _("全部")), *MemberStatus.choices]


class OrderFilterForm(Form):
    q = forms.CharField(label=_("老人姓名"), required=False, max_length=50)
    state = forms.ChoiceField(label=_("状态"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from timebank.orders.models import OrderState

        super().__init__(*args, **kwargs)
        self._choice("state").choices = [("", _("全部")), ("open", _("未完成的")), *OrderState.choices]


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
