"""The members' page forms: joining (self-registration with separate consents) and finding members. They check the
shape of what was typed; the actions check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import ApiError
from timebank.lib.phone import clean_phone
from timebank.members.models import Gender
from timebank.orgs.actions import check_password_strength, check_username
from timebank.orgs.models import Org, OrgKind
from timebank.web.forms import Form
from timebank.web.views.common import explain


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


PHONE_FORMAT = _("请填写正确的电话号码：手机号是 1 开头的 11 位数字，座机请带区号，如 0632-1234567。")


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

    def clean_phone(self) -> str:
        phone = clean_phone(self.cleaned_data["phone"])
        if not phone:
            raise forms.ValidationError(PHONE_FORMAT)
        return phone

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        # Every mistake at once: the login's rules are checked here too, each beside its field, not one by one
        # by the action after the rest was put right.
        checks = (("username", check_username), ("password1", check_password_strength))
        for name, check in checks:
            if data.get(name):
                try:
                    check(data[name])
                except ApiError as exc:
                    self.add_error(name, explain(exc))
        if data.get("password1") and data.get("password2") and data["password1"] != data["password2"]:
            self.add_error("password2", _("两次输入的密码不一样，请再输一次。"))
        return data


class MemberSearchForm(Form):
    q = forms.CharField(label=_("姓名或电话"), required=False, max_length=50)
    status = forms.ChoiceField(label=_("状态"), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from timebank.members.models import MemberStatus

        super().__init__(*args, **kwargs)
        self._choice("status").choices = [("", _("全部")), *MemberStatus.choices]
