"""The needs register's and the census import's forms: they check the shape of what was typed, the actions
(timebank/needs/actions.py) check the rules. Inputs are named after the API's fields."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.needs import census
from timebank.needs.models import NeedLevel
from timebank.web.forms import Form, new_idempotency_key

MOVE_ON = [("", _("不变")), ("in_progress", _("跟进中")), ("met", _("已满足"))]


class KeyedForm(Form):
    """A form with the hidden `idempotency_key` it got when rendered: a double submit does the work once."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


class NeedEditForm(KeyedForm):
    """`PATCH /api/v1/needs/{id}`: level, items, notes, and moving the status on."""

    level = forms.ChoiceField(label=_("需求等级"), choices=NeedLevel.choices, widget=forms.RadioSelect)
    item_ids = forms.TypedMultipleChoiceField(
        label=_("需要哪些服务（可多选）"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("有服务项目不存在或属于另一家时间银行。")},
    )
    notes = forms.CharField(
        label=_("情况说明"), required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 3})
    )
    status = forms.ChoiceField(label=_("状态"), choices=MOVE_ON, required=False)

    def __init__(self, *args: Any, items: list[tuple[int, str]], **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_edit_%s")
        super().__init__(*args, **kwargs)
        self._choice("item_ids").choices = items


class FollowUpForm(KeyedForm):
    """`POST /api/v1/needs/{id}/follow-ups`: a dated note; with `status` the need moves on."""

    note = forms.CharField(label=_("跟进记录"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    status = forms.ChoiceField(label=_("同时把状态改为"), choices=MOVE_ON, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_follow_%s")
        super().__init__(*args, **kwargs)


class CloseForm(KeyedForm):
    """`POST /api/v1/needs/{id}/close`: a need that will not be met, with the reason."""

    reason = forms.CharField(
        label=_("关闭原因"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("例如：老人已搬走、家属已安排、不再需要。"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("auto_id", "id_close_%s")
        super().__init__(*args, **kwargs)


class CensusUploadForm(KeyedForm):
    """`POST /api/v1/census-imports` (multipart): the file and the org whose subtree it goes into."""

    file = forms.FileField(
        label=_("普查文件（.xlsx 或 .csv）"),
        help_text=_(
            "第一行是表头：姓名、身份证号、性别、出生日期、电话、住址、社区、类别、需求。最大 5 MB，最多 20000 行。"
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )
    org_id = forms.TypedChoiceField(
        label=_("导入到哪个机构"),
        coerce=int,
        error_messages={"invalid_choice": _("这个机构不在您的管辖范围内，请从列表中选择。")},
    )

    def __init__(self, *args: Any, orgs: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("org_id").choices = orgs

    def clean_file(self) -> Any:
        file = self.cleaned_data["file"]
        name = (file.name or "").lower()
        if not name.endswith((".xlsx", ".csv")):
            raise forms.ValidationError(_("只支持 .xlsx 和 .csv 文件。"))
        if file.size is not None and file.size > census.MAX_FILE_BYTES:
            raise forms.ValidationError(_("文件太大，最大 5 MB。"))
        return file


class ConfirmForm(KeyedForm):
    """`POST /api/v1/census-imports/{id}/confirm`: nothing but the key."""
