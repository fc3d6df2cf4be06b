"""The safety lists staff work from: volunteers whose insurance ends soon or who have none, certificates that end
soon, and training sessions with their attendance and assessment (培训/考核)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from timebank.catalogue.models import CertificateKind
from timebank.goods.forms import FindMemberForm
from timebank.lib import clock
from timebank.lib.errors import ApiError, Forbidden
from timebank.members.access import visible_members
from timebank.members.models import Member, MemberStatus
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, User
from timebank.orgs.scope import org_choices, user_of
from timebank.safety import lists
from timebank.safety.access import access_training, require_managing_staff, visible_trainings
from timebank.safety.actions import AttendanceInput, do_create_training, do_record_attendance
from timebank.safety.forms import AlertFilterForm, AttendanceForm, DaysForm, TrainingForm
from timebank.safety.models import Assessment, TrainingAttendance, TrainingSession
from timebank.web.views.common import add_form_error, page

PAGE_SIZE = 30
MEMBER_CHOICES = 50


def _query(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@page("workbench")
def insurance(request: HttpRequest) -> HttpResponse:
    """Active volunteers with no accident insurance in force, or whose cover ends soon with nothing after it."""
    user = user_of(request)
    scope = require_managing_staff(user)
    form = AlertFilterForm(request.GET)
    status, days = None, 30
    if form.is_valid():
        status = form.cleaned_data["status"] or None
        days = form.cleaned_data["days"] or 30
    today = clock.localdate()
    qs = lists.insurance_alerts(scope, today=today, days=days, status=status).select_related("home_org").order_by("pk")
    rows = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    current = lists.current_policies([m.pk for m in rows], today)
    for m in rows:
        policy = current.get(m.pk)
        m.policy = policy  # type: ignore[attr-defined]
        m.days_left = (policy.ends_on - today).days if policy is not None else None  # type: ignore[attr-defined]
    context = {"form": form, "rows": rows, "query": _query(request), "days": days}
    return render(request, "safety/insurance.html", context)


@page("workbench")
def certificates(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    scope = require_managing_staff(user)
    form = DaysForm(request.GET)
    days = (form.cleaned_data["days"] if form.is_valid() else None) or 30
    today = clock.localdate()
    qs = (
        lists.expiring_certificates(scope, today=today, days=days)
        .select_related("member__home_org")
        .order_by("valid_until", "pk")
    )
    rows = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    kinds = dict(CertificateKind.choices)
    for c in rows:
        c.kind_label = kinds.get(c.kind, c.kind)  # type: ignore[attr-defined]
        c.days_left = (c.valid_until - today).days if c.valid_until else None  # type: ignore[attr-defined]
    return render(
        request,
        "safety/certificates.html",
        {"form": form, "rows": rows, "query": _query(request), "days": days},
    )


def _training_orgs(user: User) -> list[tuple[int, str]]:
    return org_choices(user)


@page("workbench")
def trainings(request: HttpRequest) -> HttpResponse:
    """Training sessions of the caller's subtree (and those held above it), and a new session."""
    user = user_of(request)
    require_managing_staff(user)
    orgs = _training_orgs(user)
    scope = staff_scope(user)
    form = TrainingForm(
        request.POST if request.method == "POST" else None,
        orgs=orgs,
        initial={"org": scope.pk if scope is not None else None, "held_on": clock.localdate()},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        org = Org.objects.get(pk=data["org"])
        try:
            if not has_role(user, MANAGING_ROLES, org):
                raise Forbidden(_("只能为自己管辖的机构登记培训。"), code="outside_subtree")
            session = do_create_training(
                user,
                org=org,
                title=data["title"],
                held_on=data["held_on"],
                kind=data["kind"],
                topic=data["topic"],
                place=data["place"],
                trainer=data["trainer"],
                grants_certificate=data["grants_certificate"] or None,
                certificate_valid_years=data["certificate_valid_years"],
            )
        except ApiError as exc:
            add_form_error(form, exc)
        else:
            messages.success(request, _("已登记培训：%(title)s。现在可以登记参加的人。") % {"title": session.title})
            return redirect("web:training", training_id=session.pk)
    qs = (
        visible_trainings(user)
        .select_related("org")
        .annotate(
            n_attended=Count("attendance", filter=Q(attendance__attended=True)),
            n_passed=Count("attendance", filter=Q(attendance__assessment=Assessment.PASSED)),
        )
        .order_by("-held_on", "-pk")
    )
    rows = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "safety/trainings.html", {"form": form, "rows": rows}, status=422 if form.errors else 200)


def _candidates(user: User, session: TrainingSession, q: str) -> list[tuple[int, str]]:
    """Members the caller manages in the session's bank: volunteers first, found by name or phone."""
    qs = visible_members(user).filter(bank_id=session.bank_id, status=MemberStatus.ACTIVE).select_related("home_org")
    if q:
        qs = qs.filter(Q(name__contains=q) | Q(phone__contains=q))
    members = list(qs.order_by("-is_volunteer", "name", "pk")[:MEMBER_CHOICES])
    return [(m.pk, f"{m.name} · {m.home_org.name}") for m in members]


@page("workbench")
def training(request: HttpRequest, training_id: int) -> HttpResponse:
    """One session: who came and how they did; staff of the session's subtree record attendance one by one."""
    user = user_of(request)
    require_managing_staff(user)
    session = access_training(user, training_id)
    can_record = has_role(user, MANAGING_ROLES, session.org)
    source = request.POST if request.method == "POST" else request.GET
    find = FindMemberForm(source)
    q = find.cleaned_data["q"].strip() if find.is_valid() else ""
    candidates = _candidates(user, session, q)
    form: AttendanceForm | None = None
    status = 200
    if request.method == "POST":
        if not can_record:
            raise Forbidden(_("只有举办培训的机构及上级的工作人员可以办理。"), code="outside_subtree")
        raw = request.POST.get("member", "")
        if raw.isdigit() and len(raw) <= 18 and not any(pk == int(raw) for pk, _label in candidates):
            extra = visible_members(user).filter(pk=int(raw), bank_id=session.bank_id).select_related("home_org")
            candidates = [(m.pk, f"{m.name} · {m.home_org.name}") for m in extra] + candidates
        form = AttendanceForm(request.POST, members=candidates)
        if form.is_valid():
            data = form.cleaned_data
            member = Member.objects.select_related("home_org").get(pk=data["member"])
            result = data["result"]
            try:
                if not has_role(user, MANAGING_ROLES, member.home_org):
                    raise Forbidden(_("只有会员所在社区及上级的工作人员可以办理。"), code="outside_subtree")
                _saved, granted = do_record_attendance(
                    user,
                    session,
                    [
                        AttendanceInput(
                            member=member,
                            attended=data["attended"],
                            passed=None if result == "none" else result == "passed",
                            score=data["score"],
                            note=data["note"],
                        )
                    ],
                )
            except ApiError as exc:
                add_form_error(
                    form, exc, {"records": "member", "records.0.passed": "result", "records.0.score": "score"}
                )
            else:
                done = _("已登记：%(name)s。") % {"name": member.name}
                if granted:
                    done = _("已登记：%(name)s，考核通过，证书已发。") % {"name": member.name}
                messages.success(request, done)
                return redirect("web:training", training_id=session.pk)
        status = 422
    elif can_record:
        form = AttendanceForm(members=candidates)
    scope = staff_scope(user)
    attendance = TrainingAttendance.objects.filter(session=session).select_related("member", "member__home_org")
    if not can_record and scope is not None:
        # A session held above the caller's subtree: only their own people's rows.
        attendance = attendance.filter(member__home_org__path__startswith=scope.path)
    context: dict[str, Any] = {
        "session": session,
        "attendance": list(attendance.order_by("member__name", "pk")[:500]),
        "form": form,
        "find": find,
        "q": q,
        "can_record": can_record,
        "held": session.held_on <= clock.localdate(),
    }
    return render(request, "safety/training.html", context, status=status)
