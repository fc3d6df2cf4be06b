"""Forms of the login-by-SMS-code page: the phone, then the 6-digit code. They check the shape of what was typed;
timebank.notify.login_codes checks the code."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.notify.sms import mobile_number
from timebank.web.forms import Form


class SmsPhoneForm(Form):
    phone = forms.CharField(
        label=_("手机号"),
        max_length=20,
        help_text=_("在时间银行登记的手机号，11 位。"),
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )

    def clean_phone(self) -> str:
        phone = mobile_number(self.cleaned_data["phone"])
        if phone is None:
            raise forms.ValidationError(_("请填 11 位手机号，例如 13912345678。"), code="invalid")
        return phone


class SmsCodeForm(SmsPhoneForm):
    code = forms.CharField(
        label=_("短信验证码"),
        max_length=12,
        help_text=_("短信里的 6 位数字，10 分钟内有效。"),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone"].widget = forms.HiddenInput()

    def clean_code(self) -> str:
        code = "".join(str(self.cleaned_data["code"]).split())
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise forms.ValidationError(_("验证码是 6 位数字，请照短信再输一次。"), code="invalid")
        return code


class DutyForm(Form):
    """On or off duty (`POST /duty`): the API's `on_duty`, sent by the button pressed ("true" or "false")."""

    on_duty = forms.TypedChoiceField(
        label=_("值班"),
        choices=[("true", _("上班值班")), ("false", _("下班"))],
        coerce=lambda value: value == "true",
        error_messages={"invalid_choice": _("请点“上班值班”或“下班”。")},
    )
