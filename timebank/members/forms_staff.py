"""The staff's member forms: registering a walk-in member, editing a member, giving a member a login and linking a
relative. Their inputs are named after the API's fields (`POST/PATCH /api/v1/members`, `.../relatives`); they
check the shape of what was typed, the actions (timebank.members.actions) check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.lib.phone import clean_phone
from timebank.members.actions import MemberInput
from timebank.members.forms import CONSENT_HELP, PHONE_FORMAT
from timebank.members.models import ConsentScope, Gender, Member, RecipientCategory
from timebank.web.forms import Form, new_idempotency_key

ROLE_CHOICES = [("volunteer", _("志愿者")), ("recipient", _("服务对象"))]
# What `MemberInput` takes from the details form, by the API's field names.
DETAIL_FIELDS = (
    "name",
    "phone",
    "id_number",
    "birth_date",
    "gender",
    "address",
    "roles",
    "recipient_categories",
    "occupation",
)


class KeyedForm(Form):
    """A write form: the hidden key makes a double submit act once (`form_once`)."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


class MemberDetailsForm(KeyedForm):
    name = forms.CharField(label=_("姓名"), max_length=50)
    phone = forms.CharField(
        label=_("手机号码"), max_length=20, required=False, help_text=_("手机 11 位；座机请带区号，如 0632-1234567。")
    )
    id_number = forms.CharField(label=_("身份证号"), max_length=18, required=False)
    birth_date = forms.DateField(
        label=_("出生日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    gender = forms.ChoiceField(label=_("性别"), choices=Gender.choices, widget=forms.RadioSelect, required=False)
    address = forms.CharField(label=_("住址"), max_length=200, required=False)
    roles = forms.MultipleChoiceField(
        label=_("角色"), choices=ROLE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )
    recipient_categories = forms.MultipleChoiceField(
        label=_("服务对象类别"),
        choices=RecipientCategory.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    occupation = forms.CharField(label=_("职业"), max_length=100, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone"].widget.attrs.update({"inputmode": "tel", "autocomplete": "off"})
        self.fields["id_number"].widget.attrs["autocomplete"] = "off"

    def clean_phone(self) -> str:
        """As on the join page (timebank.lib.phone): a mainland mobile or landline, or nothing."""
        phone = clean_phone(self.cleaned_data.get("phone") or "")
        if phone is None:
            raise forms.ValidationError(PHONE_FORMAT)
        return phone

    def member_input(self, names: list[str] | tuple[str, ...]) -> MemberInput:
        """The typed values of `names` as the action's input (blank ID number and gender: left as they are)."""
        values: dict[str, Any] = {}
        for name in names:
            value = self.cleaned_data.get(name)
            if name in ("id_number", "gender", "birth_date") and not value:
                continue
            if isinstance(value, str):
                value = value.strip()
            values[name] = value
        return MemberInput(**values)


class MemberRegisterForm(MemberDetailsForm):
    """A walk-in member, registered by the staff of their community (active at once), optionally with a login."""

    home_org_id = forms.TypedChoiceField(label=_("所在社区"), coerce=int)
    username = forms.CharField(
        label=_("用户名"),
        max_length=150,
        required=False,
        help_text=_("可以不填。填了就同时开通登录账号，临时密码只显示一次。"),
    )

    field_order = ["home_org_id", *DETAIL_FIELDS, "username"]

    def __init__(self, *args: Any, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        if len(orgs) == 1:
            kwargs.setdefault("initial", {}).setdefault("home_org_id", orgs[0][0])
        super().__init__(*args, **kwargs)
        self._choice("home_org_id").choices = [("", _("请选择")), *orgs]
        self.fields["username"].widget.attrs["autocomplete"] = "off"
        # PIPL separate consents (单独同意), as on the join page: one box each, none ticked in advance.
        for scope, label in ConsentScope.choices:
            self.fields[f"consent_{scope}"] = forms.BooleanField(
                label=_("我同意：%(what)s") % {"what": label}, required=False, help_text=CONSENT_HELP.get(scope, "")
            )

    def consents(self) -> dict[str, bool]:
        return {scope: bool(self.cleaned_data.get(f"consent_{scope}")) for scope in ConsentScope.values}

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get(f"consent_{ConsentScope.SENSITIVE}"):
            for name in ("id_number", "address"):
                if data.get(name):
                    self.add_error(name, _("登记身份证号和住址，需要本人同意处理敏感个人信息（勾选下面的同意项）。"))
        return data


class MemberEditForm(MemberDetailsForm):
    """Editing a member: only what was changed is sent to the action (as a PATCH would)."""

    home_org_id = forms.TypedChoiceField(
        label=_("所在社区"),
        coerce=int,
        empty_value=None,
        required=False,
        help_text=_("搬家时改。存的时间跟着会员走。"),
    )

    field_order = ["home_org_id", *DETAIL_FIELDS]

    def __init__(self, *args: Any, member: Member, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_edit_%s")
        kwargs["initial"] = {
            **kwargs.get("initial", {}),
            "home_org_id": member.home_org_id,
            "name": member.name,
            "phone": member.phone,
            "birth_date": member.birth_date,
            "gender": member.gender,
            "address": member.address,
            "roles": member.roles,
            "recipient_categories": member.recipient_categories,
            "occupation": member.occupation,
        }
        super().__init__(*args, **kwargs)
        self.fields["id_number"].help_text = _("不改就留空。")
        if member.home_org_id not in {pk for pk, _label in orgs}:
            orgs = [(member.home_org_id, member.home_org.name), *orgs]
        self._choice("home_org_id").choices = orgs
        self.home_was = member.home_org_id

    def new_home_id(self) -> int | None:
        """The community chosen, when it is not the member's home now (`home_org_id` of the PATCH)."""
        chosen = self.cleaned_data.get("home_org_id")
        return chosen if chosen and chosen != self.home_was else None

    def changes(self) -> MemberInput:
        return self.member_input([n for n in DETAIL_FIELDS if n in self.changed_data])


class MemberLoginForm(KeyedForm):
    """A login for a member who has none: the username; the temporary password is made and shown once."""

    username = forms.CharField(label=_("用户名"), max_length=150, help_text=_("登录时用，可以用手机号。"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_login_%s")
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs["autocomplete"] = "off"


class RelativeForm(KeyedForm):
    relative_id = forms.IntegerField(
        label=_("亲属的会员编号"), min_value=1, max_value=2**31 - 1, help_text=_("会员页面标题旁的 # 号码。")
    )
    relation = forms.CharField(label=_("关系"), max_length=30, help_text=_("比如：子女、配偶。"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_relative_%s")
        super().__init__(*args, **kwargs)


class ConsentForm(KeyedForm):
    """A separate consent given or withdrawn on paper (`POST /api/v1/members/{id}/consents`: `scope`, `granted`)."""

    scope = forms.ChoiceField(label=_("同意事项"), choices=ConsentScope.choices, widget=forms.RadioSelect)
    granted = forms.TypedChoiceField(
        label=_("本人的意见"),
        choices=[("true", _("同意")), ("false", _("不同意"))],
        coerce=lambda value: value == "true",
        widget=forms.RadioSelect,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_consent_%s")
        super().__init__(*args, **kwargs)
