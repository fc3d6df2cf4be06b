"""Registering insurance and certificates from the pages: a member's policies and certificates (`POST
/api/v1/members/{id}/insurance-policies`, `POST /api/v1/members/{id}/certificates`), opened from the member's page,
and a group policy for several volunteers at once (`POST /api/v1/insurance-policies/bulk`), opened from the
insurance list. Each is guarded by its endpoint's access function and calls its action; a double submit of one
rendered form registers once."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.catalogue.models import CertificateKind
from timebank.lib import clock
from timebank.lib.errors import ApiError
from timebank.members.models import Certificate, InsurancePolicy, Member
from timebank.ops.idempotency import form_once, submit_once
from timebank.orgs.scope import user_of
from timebank.safety import lists
from timebank.safety.access import access_member_safety, access_members_to_insure, require_managing_staff
from timebank.safety.actions import do_add_certificate, do_add_group_policy, do_add_insurance_policy
from timebank.safety.forms_member import CertificateForm, GroupPolicyForm, PolicyForm
from timebank.web.views.common import add_form_error, explain, page

CANDIDATES = 200  # volunteers offered as boxes to tick on the group policy page; others are typed by number


def _safety_url(member_id: int) -> str:
    return reverse("web:member_safety", kwargs={"member_id": member_id})


def _member_safety_page(
    request: HttpRequest,
    member: Member,
    *,
    status: int = 200,
    policy_form: PolicyForm | None = None,
    certificate_form: CertificateForm | None = None,
) -> HttpResponse:
    today = clock.localdate()
    kinds = dict(CertificateKind.choices)
    policies = list(InsurancePolicy.objects.filter(member=member).order_by("-ends_on", "-pk")[:50])
    for p in policies:
        p.in_force = p.in_force_on(today)  # type: ignore[attr-defined]
    certificates = list(Certificate.objects.filter(member=member).order_by("-valid_from", "-pk")[:50])
    for c in certificates:
        c.kind_label = kinds.get(c.kind, c.kind)  # type: ignore[attr-defined]
        c.valid_now = c.valid_on(today)  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "m": member,
        "policies": policies,
        "certificates": certificates,
        "policy_form": policy_form or PolicyForm(),
        "certificate_form": certificate_form or CertificateForm(),
    }
    return render(request, "safety/member_safety.html", context, status=status)


@never_cache
@page("workbench")
def member_safety(request: HttpRequest, member_id: int) -> HttpResponse:
    """A member's insurance policies and certificates, with the forms to register new ones: staff of the member's
    home subtree (the write endpoints' `access_member_safety(..., manage=True)`)."""
    return _member_safety_page(request, access_member_safety(user_of(request), member_id, manage=True))


@require_POST
@page("workbench")
def member_insurance_policy(request: HttpRequest, member_id: int) -> HttpResponse:
    """Register one policy (`POST /api/v1/members/{id}/insurance-policies`)."""
    user = user_of(request)
    member = access_member_safety(user, member_id, manage=True)
    form = PolicyForm(request.POST)
    return submit_once(
        request,
        form,
        "safety.add_policy",
        lambda data: do_add_insurance_policy(
            user,
            member,
            insurer=data["insurer"],
            policy_number=data["policy_number"],
            starts_on=data["starts_on"],
            ends_on=data["ends_on"],
        ),
        success=_("已登记保单。"),
        done=lambda _kept: redirect(_safety_url(member.pk)),
        again=lambda status: _member_safety_page(request, member, status=status, policy_form=form),
    )


@require_POST
@page("workbench")
def member_certificate(request: HttpRequest, member_id: int) -> HttpResponse:
    """Register one certificate (`POST /api/v1/members/{id}/certificates`); certificates feed matching."""
    user = user_of(request)
    member = access_member_safety(user, member_id, manage=True)
    form = CertificateForm(request.POST)
    return submit_once(
        request,
        form,
        "safety.add_certificate",
        lambda data: do_add_certificate(
            user,
            member,
            kind=data["kind"],
            issuer=data["issuer"],
            valid_from=data["valid_from"],
            valid_until=data["valid_until"],
        ),
        success=_("已登记证书。"),
        done=lambda _kept: redirect(_safety_url(member.pk)),
        again=lambda status: _member_safety_page(request, member, status=status, certificate_form=form),
    )


@never_cache
@page("workbench")
def group_policy(request: HttpRequest) -> HttpResponse:
    """A group policy (团体意外险) for several volunteers at once (`POST /api/v1/insurance-policies/bulk`): the
    volunteers of the caller's subtree without cover (or whose cover ends soon) are offered to tick, others are
    typed by member number. The caller must manage every member listed; all or nothing."""
    user = user_of(request)
    scope = require_managing_staff(user)
    today = clock.localdate()
    candidates = list(
        lists.insurance_alerts(scope, today=today, days=30)
        .select_related("home_org")
        .order_by("home_org__path", "pk")[:CANDIDATES]
    )
    offered = {m.pk for m in candidates}
    form = GroupPolicyForm(request.POST if request.method == "POST" else None)
    ticked: set[int] = set()
    if request.method == "POST":
        ticked = {int(v) for v in request.POST.getlist("member_ids") if v.isdigit() and int(v) in offered}
        if form.is_valid():
            data = form.cleaned_data
            try:
                members = access_members_to_insure(user, data["member_ids"])
                with form_once(request, data["idempotency_key"], "safety.add_group_policy") as once:
                    if once.replay is None:
                        policies = do_add_group_policy(
                            user,
                            members,
                            insurer=data["insurer"],
                            policy_number=data["policy_number"],
                            starts_on=data["starts_on"],
                            ends_on=data["ends_on"],
                        )
                        once.keep(str(len(policies)))
                        count = len(policies)
                    else:
                        count = int(once.replay.body)
            except ApiError as exc:
                if "member_ids" in exc.fields:
                    ids = exc.fields["member_ids"]
                    named = "、".join(str(i) for i in ids[:10]) if isinstance(ids, list) else ""
                    form.add_error("member_ids", f"{explain(exc)} {named}".strip())
                else:
                    add_form_error(form, exc)
            else:
                messages.success(request, _("已为 %(n)s 位会员登记团体保单。") % {"n": count})
                return redirect("web:safety_insurance")
    # Typed numbers stay in the box; ticked ones stay ticked.
    typed = " ".join(v for v in request.POST.getlist("member_ids") if not (v.isdigit() and int(v) in offered))
    context = {"form": form, "candidates": candidates, "ticked": ticked, "typed": typed}
    return render(request, "safety/group_policy.html", context, status=422 if form.errors else 200)
