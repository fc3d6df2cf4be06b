"""The incident pages' forms (意外事件). They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.safety.models import Responsibility
from timebank.web.forms import Form, new_idempotency_key

MAX_ID = 2**31 - 1


class KeyedForm(Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
        super().__init__(*args, **kwargs)


class IncidentForm(KeyedForm):
    """POST /incidents: the order, or the members involved; when and what happened; an injury and its details."""

    order_id = forms.IntegerField(label=_("订单编号"), required=False, min_value=1, max_value=MAX_ID)
    recipient_id = forms.IntegerField(label=_("服务对象的会员编号"), required=False, min_value=1, max_value=MAX_ID)
    volunteer_id = forms.IntegerField(label=_("志愿者的会员编号"), required=False, min_value=1, max_value=MAX_ID)
    occurred_at = forms.DateTimeField(
        label=_("发生时间"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
    )
    place = forms.CharField(label=_("地点"), max_length=200, required=False)
    what_happened = forms.CharField(label=_("经过"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))
    injury = forms.BooleanField(label=_("有人受伤"), required=False)
    injury_description = forms.CharField(
        label=_("伤情"), max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 2})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not any(data.get(f) for f in ("order_id", "recipient_id", "volunteer_id")) and not self.errors.get(
            "order_id"
        ):
            self.add_error("order_id", _("请写明订单，或涉及的志愿者或服务对象。"))
        return data


class FollowUpForm(KeyedForm):
    note = forms.CharField(label=_("跟进情况"), max_length=1000, widget=forms.Textarea(attrs={"rows": 2}))


class DecisionForm(KeyedForm):
    responsibility = forms.ChoiceField(label=_("责任认定"), choices=Responsibility.choices)
    note = forms.CharField(label=_("说明"), max_length=500, required=False)
    reason = forms.CharField(label=_("更改理由（更改已有认定时必填）"), max_length=500, required=False)


class ClaimForm(KeyedForm):
    claim_status = forms.ChoiceField(
        label=_("理赔"), choices=[("filed", _("已报案")), ("paid", _("已赔付")), ("rejected", _("已拒赔"))]
    )
    policy_id = forms.TypedChoiceField(label=_("保单"), coerce=int, required=False, empty_value=None, choices=())
    claim_number = forms.CharField(label=_("理赔编号"), max_length=64, required=False)
    note = forms.CharField(label=_("说明"), max_length=500, required=False)

    def __init__(self, *args: Any, policies: list[tuple[int, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._choice("policy_id").choices = [("", _("不选（赔付或拒赔时）")), *(policies or [])]


class CloseForm(KeyedForm):
    note = forms.CharField(label=_("结案说明"), max_length=500, required=False)


class ReopenForm(KeyedForm):
    reason = forms.CharField(label=_("重新打开的理由"), max_length=500)
