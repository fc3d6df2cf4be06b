"""The staff's service-record page: service done on paper (an activity, a talk, a clean-up day) credited to a
volunteer of their subtree, as POST /service-records does: the same access check (`access_member_to_manage`)
and action (`records.do_service_record`). Above the bank's approval threshold it waits for a second person on
the approvals page; a double submit of the same form acts once (`form_once`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from timebank.approvals.models import Approval
from timebank.catalogue.models import ServiceItem
from timebank.ledger.views_staff import finished, made_label, picked_member, search_results
from timebank.members.models import Member
from timebank.ops.idempotency import submit_once
from timebank.orders import records
from timebank.orders.forms import ServiceRecordForm
from timebank.orgs.models import User
from timebank.orgs.scope import require_manager, user_of
from timebank.web.views.common import page


def _items(user: User) -> list[tuple[int, str]]:
    """The service items of the caller's bank (all banks' for the superuser), active first."""
    qs = ServiceItem.objects.filter(active=True).order_by("name")
    bank_id = user.org.head_office_id if user.org is not None else None
    if bank_id is not None:
        qs = qs.filter(head_office_id=bank_id)
    elif not user.is_superuser:
        return []
    return [(item.pk, item.name) for item in qs[:500]]


@page("workbench")
def staff_service_record(request: HttpRequest) -> HttpResponse:
    """Find the volunteer by name or phone (volunteers of the caller's subtree), then the item, minutes, time,
    recipient and memo from the paper record."""
    user = user_of(request)
    require_manager(user)
    search, found = search_results(user, request, volunteers=True)
    items = _items(user)
    form = ServiceRecordForm(request.POST, items=items) if request.method == "POST" else ServiceRecordForm(items=items)
    volunteer, status = picked_member(user, request, "volunteer_id", form)
    if volunteer is not None and not form.is_bound:
        form = ServiceRecordForm(items=items, initial={"volunteer_id": volunteer.pk})
    recipient: Member | None = None
    if form.is_bound and not form.errors and volunteer is not None and form.cleaned_data["recipient_id"]:
        recipient = Member.objects.filter(pk=form.cleaned_data["recipient_id"]).first()
        if recipient is None:
            form.add_error("recipient_id", _("找不到该会员。"))
            status = 404

    def again(status: int) -> HttpResponse:
        context = {"form": form, "search": search, "found": found, "volunteer": volunteer}
        return render(request, "orders/staff/service_record.html", context, status=status)

    if not (form.is_bound and not form.errors and volunteer is not None):
        return again(status)  # the search, the form, or why this volunteer or recipient cannot be picked
    name = volunteer.name

    def record(data: dict[str, Any]) -> str:
        made = records.do_service_record(
            user,
            volunteer=volunteer,
            service_item=ServiceItem.objects.get(pk=data["service_item_id"]),
            minutes=data["minutes"],
            served_at=data["served_at"],
            recipient=recipient,
            memo=data["memo"],
        )[0]
        return made_label(made) if isinstance(made, Approval) else f"tx:{made.transaction_id}"

    return submit_once(
        request,
        form,
        "orders.service_record",
        record,
        done=lambda made: finished(request, made, _("服务记录已入账：%(name)s 的时间已记入。") % {"name": name}),
        again=again,
        refusal_status=True,
    )
