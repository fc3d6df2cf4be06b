"""Forms of the login pages: one's own password, and the admins' page of staff logins. They check the shape of
what was typed; the actions in timebank.orgs.actions check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.orgs.models import Org, Role
from timebank.web.forms import Form


def _password(label: Any, autocomplete: str, help_text: Any = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        max_length=128,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(attrs={"autocomplete": autocomplete}),
    )


class PasswordForm(Form):
    old_password = _password(_("现在的密码"), "current-password")
    new_password1 = _password(_("新密码"), "new-password", _("至少 8 位，不要和现在的密码一样。"))
    new_password2 = _password(_("再输一次新密码"), "new-password")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_password1") and data.get("new_password2") and data["new_password1"] != data["new_password2"]:
            self.add_error("new_password2", _("两次输入的新密码不一样。"))
        return data


def org_choices(orgs: Any) -> list[tuple[int, str]]:
    return [(o.pk, ("· " * max(o.depth, 0)) + o.name) for o in orgs]


class StaffCreateForm(Form):
    username = forms.CharField(label=_("用户名"), max_length=150)
    password = _password(_("初始密码"), "new-password", _("至少 8 位。请当面告诉本人，并提醒本人登录后修改。"))
    name = forms.CharField(label=_("姓名"), max_length=100)
    org = forms.TypedChoiceField(label=_("所在机构"), coerce=int)
    role = forms.ChoiceField(label=_("角色"))

    def __init__(self, *args: Any, orgs: list[Org], roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org").choices = org_choices(orgs)
        self._choice("role").choices = [(r, Role(r).label) for r in roles]


class StaffEditForm(Form):
    org = forms.TypedChoiceField(label=_("所在机构"), coerce=int)
    role = forms.ChoiceField(label=_("角色"))
    is_active = forms.BooleanField(label=_("可以登录"), required=False)

    def __init__(self, *args: Any, orgs: list[Org], roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org").choices = org_choices(orgs)
        self._choice("role").choices = [(r, Role(r).label) for r in roles]
