"""The service catalogue's and the menus' forms. They check the shape of what was typed; the actions check the
rules."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import Category, CertificateKind, Tier
from timebank.web.forms import Form


class ServiceItemForm(Form):
    name = forms.CharField(label=_("服务项目名称"), max_length=100)
    category = forms.ChoiceField(label=_("服务类别"), choices=[("", _("请选择")), *Category.choices])
    tier = forms.ChoiceField(
        label=_("服务等级"),
        choices=Tier.choices,
        widget=forms.RadioSelect,
        help_text=_("等级决定 1 小时服务记多少时间（见规则里的倍数）。"),
    )
    requires_certificate = forms.ChoiceField(
        label=_("需要的证书"), required=False, choices=[("", _("不需要")), *CertificateKind.choices]
    )
    description = forms.CharField(label=_("说明（可以不填）"), required=False, max_length=500)


class MenuEntryForm(Form):
    offered = forms.BooleanField(label=_("本社区提供这项服务"), required=False)
    times = forms.CharField(label=_("服务时间（可以不填）"), required=False, max_length=200)
    place = forms.CharField(label=_("服务地点（可以不填）"), required=False, max_length=200)
