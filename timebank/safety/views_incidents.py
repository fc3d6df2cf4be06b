"""The incident pages (意外事件): the list of incidents the caller may see with the report form, and one incident's
page with its history and the staff's steps (follow-up, responsibility decision, insurance claim, close, reopen).
Each page asks the access function of its endpoint (safety/access.py) and calls its action; a double submit of the
same form acts once (`form_once`)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError, NotFound
from timebank.members.models import InsurancePolicy
from timebank.ops.idempotency import form_once, submit_once
from timebank.orgs.models import User
from timebank.orgs.scope import user_of
from timebank.safety import actions
from timebank.safety.access import (
    STAFF,
    access_incident,
    access_report_incident,
    require_managing_staff,
    visible_incidents,
)
from timebank.safety.forms_incidents import (
    ClaimForm,
    CloseForm,
    DecisionForm,
    FollowUpForm,
    IncidentForm,
    KeyedForm,
    ReopenForm,
)
from timebank.safety.models import IncidentReport, IncidentStatus
from timebank.web.views.common import add_form_error, page


@page("workbench")
def incidents(request: HttpRequest) -> HttpResponse:
    """The incidents of the caller's subtree, newest first; POST /incidents from the report form (staff of the
    subtree of the member involved, or the order's staff)."""
    user = user_of(request)
    require_managing_staff(user)
    form = IncidentForm(request.POST) if request.method == "POST" else IncidentForm()
    status = 200
    if form.is_bound:
        status = 422
        if form.is_valid():
            data = form.cleaned_data
            try:
                order, volunteer, recipient = access_report_incident(
                    user,
                    order_id=data["order_id"],
                    volunteer_id=data["volunteer_id"],
                    recipient_id=data["recipient_id"],
                )
                with form_once(request, data["idempotency_key"], "safety.incident_report") as once:
                    if once.replay is None:
                        made = actions.do_report_incident(
                            user,
                            order=order,
                            volunteer=volunteer,
                            recipient=recipient,
                            occurred_at=data["occurred_at"],
                            place=data["place"],
                            what_happened=data["what_happened"],
                            injury=data["injury"],
                            injury_description=data["injury_description"],
                        )
                        once.keep(str(made.pk))
                        pk = made.pk
                    else:
                        pk = int(once.replay.body)
            except ApiError as exc:
                add_form_error(form, exc)
                status = exc.status
            else:
                messages.success(request, _("事件报告已提交。"))
                return redirect("web:incident", incident_id=pk)
    rows = visible_incidents(user).select_related("org", "volunteer", "recipient").order_by("-pk")
    wanted = request.GET.get("status", "")
    if wanted in IncidentStatus.values:
        rows = rows.filter(status=wanted)
    return render(
        request,
        "safety/incidents.html",
        {
            "form": form,
            "rows": Paginator(rows, 30).get_page(request.GET.get("page")),
            "wanted": wanted,
            "wanted_query": f"status={wanted}" if wanted else "",
        },
        status=status,
    )


def _policies(incident: IncidentReport) -> list[tuple[int, str]]:
    parties = [m for m in (incident.volunteer_id, incident.recipient_id) if m]
    found = InsurancePolicy.objects.filter(member_id__in=parties).select_related("member").order_by("-ends_on")
    return [(p.pk, f"{p.member.name} · {p.insurer} {p.policy_number} ({p.starts_on}–{p.ends_on})") for p in found]


def _incident_page(
    request: HttpRequest, user: User, incident_id: int, bound: KeyedForm | None = None, status: int = 200
) -> HttpResponse:
    incident, roles = access_incident(user, incident_id)
    forms: dict[str, Any] = {
        "follow_up": FollowUpForm(),
        "decision": DecisionForm(),
        "claim": ClaimForm(policies=_policies(incident)),
        "close": CloseForm(),
        "reopen": ReopenForm(),
    }
    refused = None
    if bound is not None:
        name = next(name for name, cls in STEPS.items() if type(bound) is cls)
        forms[name] = bound
        # The incident's state changed under the form (closed, reopened): its section is not shown, so its
        # refusal goes at the top of the page.
        if (name == "reopen") == (incident.status == IncidentStatus.OPEN):
            refused = bound
    return render(
        request,
        "safety/incident.html",
        {
            "incident": incident,
            "manage": STAFF in roles,
            "forms": forms,
            "refused": refused,
            "follow_ups": incident.follow_ups.select_related("created_by").order_by("created_at", "pk"),
            "decisions": incident.decisions.select_related("decided_by").order_by("decided_at", "pk"),
        },
        status=status,
    )


@page("workbench")
def incident(request: HttpRequest, incident_id: int) -> HttpResponse:
    """One incident (GET /incidents/{id}: staff of the subtree) with its history and the staff's steps."""
    return _incident_page(request, user_of(request), incident_id)


def _perform(user: User, incident: IncidentReport, step: str, data: dict[str, Any]) -> None:
    """One step, through the endpoint's action."""
    if step == "follow_up":
        actions.do_add_incident_follow_up(user, incident, data["note"])
    elif step == "decision":
        actions.do_decide_responsibility(
            user, incident, responsibility=data["responsibility"], note=data["note"], reason=data["reason"]
        )
    elif step == "claim":
        policy = None
        if data["policy_id"] is not None:
            policy = InsurancePolicy.objects.filter(pk=data["policy_id"]).first()
            if policy is None:
                raise NotFound(_("找不到这张保单。"), code="policy_not_found", fields={"policy_id": "not_found"})
        actions.do_update_claim(
            user,
            incident,
            claim_status=data["claim_status"],
            policy=policy,
            claim_number=data["claim_number"] or None,
            note=data["note"],
        )
    elif step == "close":
        actions.do_close_incident(user, incident, data["note"])
    else:
        actions.do_reopen_incident(user, incident, data["reason"])


# step in the url -> its form
STEPS: dict[str, type[KeyedForm]] = {
    "follow_up": FollowUpForm,
    "decision": DecisionForm,
    "claim": ClaimForm,
    "close": CloseForm,
    "reopen": ReopenForm,
}

DONE = {
    "follow_up": _("已添加跟进。"),
    "decision": _("已记录责任认定。"),
    "claim": _("已更新理赔。"),
    "close": _("已结案。"),
    "reopen": _("已重新打开。"),
}


@require_POST
@page("workbench")
def incident_step(request: HttpRequest, incident_id: int, step: str) -> HttpResponse:
    """POST /incidents/{id}/follow-ups, /decision, /claim, /close, /reopen from the incident's page: staff of the
    subtree (access_incident(manage=True)); a refusal (closed, no reason, wrong claim state) is shown on its form."""
    if step not in STEPS:
        raise Http404(_("没有这一步。"))
    user = user_of(request)
    incident, _roles = access_incident(user, incident_id, manage=True)
    form_class = STEPS[step]
    form = (
        ClaimForm(request.POST, policies=_policies(incident)) if form_class is ClaimForm else form_class(request.POST)
    )
    return submit_once(
        request,
        form,
        f"safety.incident_{step}",
        lambda data: _perform(user, incident, step, data),
        success=DONE[step],
        done=lambda _kept: redirect("web:incident", incident_id=incident.pk),
        again=lambda status: _incident_page(request, user, incident.pk, form, status),
        refusal_status=True,
    )
