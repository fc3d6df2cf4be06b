"""Forms of the login pages: one's own password, and the admins' page of staff logins. They check the shape of
what was typed; the actions in timebank.orgs.actions check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from timebank.orgs import rules as rule_registry
from timebank.orgs.models import Org, OrgKind, Role
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


# The staff forms name their inputs after the API's fields (POST /staff, PATCH /staff/{id}, GET /staff).


class StaffCreateForm(Form):
    username = forms.CharField(label=_("用户名"), max_length=150)
    password = _password(_("初始密码"), "new-password", _("至少 8 位。请当面告诉本人，并提醒本人登录后修改。"))
    name = forms.CharField(label=_("姓名"), max_length=100)
    org_id = forms.TypedChoiceField(label=_("所在机构"), coerce=int)
    role = forms.ChoiceField(label=_("角色"))

    def __init__(self, *args: Any, orgs: list[Org], roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org_id").choices = org_choices(orgs)
        self._choice("role").choices = [(r, Role(r).label) for r in roles]


class StaffEditForm(Form):
    org_id = forms.TypedChoiceField(label=_("所在机构"), coerce=int)
    role = forms.ChoiceField(label=_("角色"))
    is_active = forms.BooleanField(label=_("可以登录"), required=False)

    def __init__(self, *args: Any, orgs: list[Org], roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org_id").choices = org_choices(orgs)
        self._choice("role").choices = [(r, Role(r).label) for r in roles]


ACTIVE_CHOICES = [("", _("全部")), ("true", _("可以登录")), ("false", _("已停用"))]


class StaffFilterForm(Form):
    """The list's filters, as GET /staff's query (org_id, role, is_active); a value not offered is ignored."""

    org_id = forms.TypedChoiceField(label=_("所在机构"), coerce=int, required=False, empty_value=None)
    role = forms.ChoiceField(label=_("角色"), required=False)
    is_active = forms.ChoiceField(label=_("状态"), required=False, choices=ACTIVE_CHOICES)

    def __init__(self, *args: Any, orgs: list[Org], roles: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org_id").choices = [("", _("全部")), *org_choices(orgs)]
        self._choice("role").choices = [("", _("全部")), *((r, Role(r).label) for r in roles)]

    def filters(self) -> dict[str, Any]:
        """The valid filters only: a tampered query lists everything rather than failing."""
        if not self.is_valid():
            return {}
        data = self.cleaned_data
        found: dict[str, Any] = {}
        if data.get("org_id") is not None:
            found["org_id"] = data["org_id"]
        if data.get("role"):
            found["role"] = data["role"]
        if data.get("is_active"):
            found["is_active"] = data["is_active"] == "true"
        return found


class OrgCreateForm(Form):
    """Open an org under one of the caller's (POST /orgs: name, kind, parent_id)."""

    name = forms.CharField(label=_("名称"), max_length=100)
    kind = forms.ChoiceField(label=_("机构类型"))
    parent_id = forms.TypedChoiceField(
        label=_("上级机构"), coerce=int, required=False, empty_value=None, help_text=_("新建时间银行（总行）时不选。")
    )

    def __init__(self, *args: Any, parents: list[Org], kinds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("kind").choices = [(k, OrgKind(k).label) for k in kinds]
        self._choice("parent_id").choices = [("", "—"), *org_choices(parents)]
        if OrgKind.HEAD_OFFICE not in kinds:
            self.fields["parent_id"].required = True
            self.fields["parent_id"].help_text = ""


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


class RulesForm(Form):
    """Built from the rules' registry: one field per rule (three for the multipliers), grouped by fieldset.
    The action checks the values (thresholds increasing, ...); the view puts its refusal next to the field."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields.update(rule_registry.form_fields())

    def fieldsets(self) -> list[tuple[Any, list[Any]]]:
        return [(legend, [self[name] for name in names]) for legend, names in rule_registry.fieldsets()]

    @staticmethod
    def aliases() -> dict[str, str]:
        return rule_registry.form_aliases()

    @staticmethod
    def initial_for(rules: Any) -> dict[str, Any]:
        return rule_registry.initial(rules)

    def changes(self) -> dict[str, Any]:
        """What `do_update_rules` stores, in the API's shapes (multipliers as numbers)."""
        return rule_registry.from_form(self.cleaned_data)
