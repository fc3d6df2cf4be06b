"""The publish form: it checks the shape of what was typed; the action checks the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.notices.actions import MAX_BODY, MAX_TITLE
from timebank.notices.models import Audience
from timebank.orgs.models import Org
from timebank.web.forms import Form


class OrgChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return str(_("%(name)s（%(kind)s）") % {"name": obj.name, "kind": obj.get_kind_display()})


class NoticeForm(Form):
    org = OrgChoiceField(
        label=_("发布机构"),
        queryset=Org.objects.none(),
        empty_label=None,
        help_text=_("通知发给这个机构及其下级的所有人。"),
    )
    title = forms.CharField(label=_("标题"), max_length=MAX_TITLE)
    body = forms.CharField(label=_("内容"), max_length=MAX_BODY, widget=forms.Textarea(attrs={"rows": 6}))
    audience = forms.ChoiceField(
        label=_("发给谁"), choices=Audience.choices, initial=Audience.EVERYONE, widget=forms.RadioSelect
    )
    pinned = forms.BooleanField(label=_("置顶"), required=False)
    expires_on = forms.DateField(
        label=_("截止日期"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text=_("过了这一天就不再显示。可以不填。"),
    )

    def __init__(self, *args: Any, orgs: QuerySet[Org], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["org"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = orgs
