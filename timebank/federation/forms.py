"""The pages' forms for federation (issue 16): sending minutes to a member of a peer node, and moving home to a
community on a peer node (跨城迁移). They check the shape of what was typed; the actions check the rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from timebank.api.types import MAX_ID
from timebank.ledger import forms_interbank as interbank
from timebank.orders.forms import TransferForm
from timebank.web.forms import Form, new_idempotency_key


class FederatedTransferForm(TransferForm):
    """The gift form of 转赠 (hours, extra minutes, memo, a form key), plus the peer node, and the receiver's member
    number and name there."""

    peer = forms.TypedChoiceField(label=_("对方所在的时间银行"), coerce=int)
    to_account = forms.CharField(
        label=_("收款人在对方的会员编号"),
        max_length=64,
        help_text=_("请向收款的家人要他在那边时间银行的会员编号。"),
    )
    to_name = forms.CharField(label=_("收款人姓名"), max_length=100, help_text=_("要和会员编号对应的姓名完全一致。"))

    field_order = ["peer", "to_account", "to_name", "hours", "minutes", "memo"]

    def __init__(self, *args: Any, peers: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, relatives=None, **kwargs)
        self._choice("peer").choices = peers
        self.fields["to_account"].widget.attrs["inputmode"] = "numeric"
        self.order_fields(self.field_order)

    def clean_to_account(self) -> str:
        value = str(self.cleaned_data["to_account"]).strip()
        if not value.isdigit():
            raise forms.ValidationError(_("会员编号只能是数字。"))
        return value


class ReconcileForm(forms.Form):
    date = forms.DateField(label=_("核对哪一天"), widget=forms.DateInput(attrs={"type": "date"}))


def _with_key(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("initial", {})
    kwargs["initial"].setdefault("idempotency_key", new_idempotency_key())
    return kwargs


class FederatedMoveForm(Form):
    """POST /federation/moves (`FederatedMoveIn`) for one member: the peer node, the receiving community's id on
    that node, the member's consent to share the keyed hash of their ID number, and a note."""

    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=64, required=False)
    peer_id = forms.TypedChoiceField(label=_("迁往的城市（联网节点）"), coerce=int, choices=())
    to_org_id = forms.IntegerField(
        label=_("对方节点的社区编号"),
        min_value=1,
        max_value=MAX_ID,
        help_text=_("请向对方城市的时间银行要接收社区的编号。"),
    )
    consent_share_id_number = forms.BooleanField(
        label=_("会员已同意向对方时间银行提供身份证号的校验值（不提供身份证号本身）"), required=True
    )
    reason = forms.CharField(label=_("备注"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, peers: list[tuple[int, str]], **kwargs: Any) -> None:
        super().__init__(*args, **_with_key(kwargs))
        self._choice("peer_id").choices = [("", _("请选择")), *peers]
        self.fields["to_org_id"].widget.attrs["inputmode"] = "numeric"


class MoveRejectForm(interbank.MoveRejectForm):
    """POST /federation/moves/{id}/reject: the inter-bank move's reject form (the reason required); a federated
    move keeps 200 characters of it, and the sending node shows it."""

    reason = forms.CharField(label=_("拒绝原因"), max_length=200, widget=forms.Textarea(attrs={"rows": 2}))
    missing_reason = _("请写明拒绝原因。")
