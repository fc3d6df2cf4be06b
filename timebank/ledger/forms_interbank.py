"""The inter-bank move pages' forms (跨行转移). They check the shape of what was typed; the actions check the rules
(another bank, the member's status, one open move, the state of the move)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.orgs.models import Org, OrgKind
from timebank.web.forms import Form, new_idempotency_key


def _with_key(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("initial", {})
    kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
    return kwargs


class MoveRequestForm(Form):
    """POST /interbank-moves: the community of another bank on this deployment, and a note."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    to_org_id = forms.TypedChoiceField(label=_("转入的社区（其他时间银行）"), coerce=int, choices=())
    reason = forms.CharField(label=_("备注"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, bank_id: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **_with_key(kwargs))
        orgs = (
            Org.objects.filter(kind__in=(OrgKind.SUB_BRANCH, OrgKind.BRANCH), head_office__isnull=False)
            .exclude(head_office_id=bank_id)
            .select_related("head_office")
            .order_by("head_office__name", "path")
        )
        choices: list[tuple[Any, Any]] = [("", _("请选择"))]
        choices += [(o.pk, f"{o.head_office.name if o.head_office else ''} · {o.name}") for o in orgs]
        self._choice("to_org_id").choices = choices


class MoveApproveForm(Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_with_key(kwargs))


class MoveRejectForm(Form):
    """POST /interbank-moves/{id}/reject: the reason is required. The federated moves' page uses this form too,
    with its own `reason` field (a federated move keeps 200 characters) and `missing_reason`."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    reason = forms.CharField(label=_("驳回原因"), max_length=500, widget=forms.Textarea(attrs={"rows": 2}))
    missing_reason = _("请写明驳回原因。")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_with_key(kwargs))
        # The field strips blanks and refuses what is left empty itself, so the page's own words go there.
        self.fields["reason"].error_messages["required"] = self.missing_reason
