"""The teams pages' forms: they check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import CertificateKind
from timebank.teams.models import TeamKind, TeamRole
from timebank.web.forms import Form

LOCAL = "%Y-%m-%dT%H:%M"


def _when(label: Any, *, required: bool = True, help_text: Any = "") -> forms.DateTimeField:
    return forms.DateTimeField(
        label=label,
        required=required,
        help_text=help_text,
        input_formats=[LOCAL],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL),
    )


class ActivityForm(Form):
    title = forms.CharField(label=_("活动名称"), max_length=100)
    owner = forms.ChoiceField(label=_("发布单位"), help_text=_("选一个社区或您带领的队伍。"))
    service_item = forms.TypedChoiceField(label=_("服务项目"), coerce=int, help_text=_("决定时间币的倍数。"))
    place = forms.CharField(label=_("地点"), max_length=200)
    starts_at = _when(_("开始时间"))
    ends_at = _when(_("结束时间"))
    signup_deadline = _when(_("报名截止"), required=False, help_text=_("不填就是活动开始时。"))
    places = forms.IntegerField(label=_("名额"), min_value=1, max_value=10_000, initial=20)
    requires_certificate = forms.ChoiceField(
        label=_("需要证书"), required=False, choices=[("", _("不需要")), *CertificateKind.choices]
    )
    min_age = forms.IntegerField(label=_("最小年龄"), required=False, min_value=0, max_value=120)
    max_age = forms.IntegerField(label=_("最大年龄"), required=False, min_value=0, max_value=120)
    team_only = forms.BooleanField(label=_("仅限本队队员"), required=False)
    description = forms.CharField(
        label=_("活动介绍"), required=False, max_length=1000, widget=forms.Textarea(attrs={"rows": 4})
    )
    reason = forms.CharField(
        label=_("补录原因"),
        required=False,
        max_length=500,
        help_text=_("只有社区工作人员补录或更改已经开始的活动的时间时填写，例如“按纸质签到表补录”。"),
    )

    def __init__(self, *args: Any, owners: list[tuple[str, str]], items: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("owner").choices = owners
        self._choice("service_item").choices = items


class TeamForm(Form):
    name = forms.CharField(label=_("队伍名称"), max_length=100)
    org = forms.TypedChoiceField(label=_("所属社区"), coerce=int)
    kind = forms.ChoiceField(label=_("队伍类型"), choices=TeamKind.choices)
    description = forms.CharField(
        label=_("介绍"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )

    def __init__(self, *args: Any, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org").choices = orgs


class TeamMemberForm(Form):
    member_id = forms.IntegerField(
        label=_("会员编号"), min_value=1, max_value=2**62, help_text=_("在会员列表里可以查到编号。")
    )
    role = forms.ChoiceField(label=_("队内角色"), choices=TeamRole.choices, initial=TeamRole.MEMBER)
    external_id = forms.CharField(label=_("学号或工号"), required=False, max_length=40)


class AttendanceForm(Form):
    minutes = forms.IntegerField(label=_("记多少分钟"), required=False, min_value=1, max_value=24 * 60)


class CancelForm(Form):
    reason = forms.CharField(label=_("取消原因"), max_length=500)


class CloseForm(Form):
    reason = forms.CharField(
        label=_("提前结束的原因"),
        required=False,
        max_length=500,
        help_text=_("活动结束后才能记时间；只有社区工作人员可以写明原因提前结束。"),
    )


class TermForm(Form):
    term = forms.RegexField(
        label=_("学期"),
        regex=r"^\d{4}-\d{4}-[12]$",
        max_length=20,
        help_text=_("例如 2024-2025-1 是秋季学期，2024-2025-2 是春季学期。"),
    )
