"""The hand-over of a staff login's open work (工作交接): the first seed's complaint, records lost when staff change.
The page lives with the needs because the work it moves (orders dispatched, needs followed) sits above the org
tree (timebank/layers.py); who may hand over is the staff logins' own check (orgs.access, via needs.handover)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

from timebank.lib.errors import ApiError, Invalid
from timebank.needs.actions import do_hand_over
from timebank.needs.handover import access_hand_over, handover_targets, open_work
from timebank.orgs.scope import user_of
from timebank.orgs.views_staff import admin_of_logins
from timebank.web.views.common import page


@never_cache
@page("login")
def staff_handover(request: HttpRequest, staff_id: int) -> HttpResponse:
    """A staff login's open work (orders they dispatched that are not finished, needs they follow) within the
    admin's reach, each linking to it (what lies outside is counted only), and the hand-over of all of it to another staff login of the admin's subtree (needs.actions.do_hand_over)."""
    user = admin_of_logins(user_of(request))
    source, _target = access_hand_over(user, staff_id)
    error = ""
    status = 200
    if request.method == "POST":
        raw = request.POST.get("to_staff_id", "")
        try:
            if not raw.isdigit() or len(raw) > 18:
                raise Invalid(_("请选择接手的工作人员。"), fields={"to_staff_id": "required"})
            source, target = access_hand_over(user, staff_id, int(raw))
            assert target is not None
            moved = do_hand_over(user, source, target)
        except ApiError as exc:
            error, status = str(exc.message), exc.status
        else:
            messages.success(
                request,
                _("已把 %(orders)s 个订单和 %(needs)s 条需求交给 %(name)s。")
                % {
                    "orders": len(moved["order_ids"]),
                    "needs": len(moved["need_ids"]),
                    "name": target.display_name or target.username,
                },
            )
            return redirect("web:staff_handover", staff_id=source.pk)
    work = open_work(user, source)  # only what the admin may see; the rest is counted, never shown
    context = {
        "source": source,
        "orders": list(work.orders[:200]),
        "needs": list(work.needs[:200]),
        "orders_out_of_reach": work.orders_out_of_reach,
        "needs_out_of_reach": work.needs_out_of_reach,
        "targets": list(handover_targets(user, source)[:500]),
        "error": error,
    }
    return render(request, "needs/staff_handover.html", context, status=status)
