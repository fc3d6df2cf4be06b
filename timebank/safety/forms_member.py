"""The forms of a member's insurance and certificates page and of the group policy page. Their inputs are named
after the API's fields (`insurer`, `policy_number`, `starts_on`, `ends_on`, `member_ids`, `kind`, `issuer`,
`valid_from`, `valid_until`). They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import CertificateKind
from timebank.members.forms_staff import KeyedForm
from timebank.safety.actions import MAX_GROUP

MAX_ID = 10**18 - 1  # the bounded <id> of the urls: a longer number is nobody's


def _date(label: Any, *, required: bool = True, help_text: Any = "") -> forms.DateField:
    return forms.DateField(
        label=label,
        required=required,
        help_text=help_text,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )


class PolicyForm(KeyedForm):
    """One member's accident insurance policy (`POST /api/v1/members/{id}/insurance-policies`)."""

    insurer = forms.CharField(
        label=_("保险公司"), max_length=100, help_text=_("请写全称，例如：中国人寿保险股份有限公司")
    )
    policy_number = forms.CharField(
        label=_("保单号"), max_length=60, help_text=_("4 到 60 位字母、数字、“-”或“/”，照保单上的抄。")
    )
    starts_on = _date(_("保险开始日期"))
    ends_on = _date(_("保险结束日期"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_policy_%s")
        super().__init__(*args, **kwargs)


class CertificateForm(KeyedForm):
    """One member's certificate (`POST /api/v1/members/{id}/certificates`)."""

    kind = forms.ChoiceField(label=_("证书类型"), choices=CertificateKind.choices)
    issuer = forms.CharField(label=_("发证机构"), max_length=100)
    valid_from = _date(_("有效期开始"))
    valid_until = _date(_("有效期结束"), required=False, help_text=_("长期有效的可以不填。"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_certificate_%s")
        super().__init__(*args, **kwargs)


SEPARATORS = re.compile(r"[\s,，、;；]+")


class MemberIdsWidget(forms.Textarea):
    """Several `member_ids` values (ticked boxes and the typed list share the name): all of them are read."""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        getlist = getattr(data, "getlist", None)
        values = getlist(name) if getlist is not None else data.get(name)
        if isinstance(values, str):
            values = [values]
        return "\n".join(str(v) for v in values or [])


class GroupPolicyForm(PolicyForm):
    """A group policy covering several members (`POST /api/v1/insurance-policies/bulk`)."""

    member_ids = forms.CharField(
        label=_("其他会员编号"),
        required=False,
        widget=MemberIdsWidget(attrs={"rows": 3}),
        help_text=_("上面没有列出的会员，可以填会员编号，用空格或逗号隔开。会员编号在会员列表里可以查到。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_group_%s")
        super().__init__(*args, **kwargs)

    def clean_member_ids(self) -> list[int]:
        raw = [part for part in SEPARATORS.split(self.cleaned_data.get("member_ids") or "") if part]
        if not raw:
            raise forms.ValidationError(_("请选择或填写被保险的会员。"))
        bad = [part for part in raw if not part.isdigit() or not 1 <= int(part) <= MAX_ID]
        if bad:
            raise forms.ValidationError(_("会员编号只能是数字：%(bad)s") % {"bad": "、".join(b[:20] for b in bad[:5])})
        if len(raw) > MAX_GROUP:
            raise forms.ValidationError(_("一次最多登记 %(n)s 人。") % {"n": MAX_GROUP})
        # A volunteer both ticked and typed is one member, once.
        return list(dict.fromkeys(int(part) for part in raw))
