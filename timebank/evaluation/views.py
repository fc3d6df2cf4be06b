"""Evaluation pages: scores per org, indicators and weights, assessments, complaints with follow-up,
penalties, award ranking and confirmation (staff and admins); scoring an org (assessors); my star level and
self-assessment (volunteers)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.evaluation import access, actions
from timebank.evaluation.forms import (
    AssessForm,
    ComplaintForm,
    CorrectionForm,
    DecideForm,
    FollowUpForm,
    IndicatorForm,
    LiftForm,
    PenaltyForm,
    RulesForm,
    SelfAssessForm,
)
from timebank.evaluation.models import (
    Award,
    AwardKind,
    ComplaintStatus,
    Indicator,
    SelfAssessment,
)
from timebank.evaluation.rules import evaluation_rules
from timebank.evaluation.scoring import org_scores, volunteer_score
from timebank.evaluation.stars import star_level
from timebank.ledger.models import Transaction, TransactionKind
from timebank.lib import clock
from timebank.lib.errors import ApiError, Forbidden, NotFound
from timebank.members.models import Member, MemberStatus
from timebank.members.person import who
from timebank.orgs.access import has_role, staff_scope, visible_orgs
from timebank.orgs.models import ADMIN_ROLES, MANAGING_ROLES, Org, OrgKind, Role, User
from timebank.orgs.scope import user_of
from timebank.web.views.common import add_form_error, page

MAX_CHOICES = 500


def _year(request: HttpRequest) -> int:
    raw = request.GET.get("year", "")
    this = clock.localdate().year
    return int(raw) if raw.isdigit() and 2000 <= int(raw) <= this else this


def _staff_or_assessor(user: User) -> Org | None:
    """The subtree shown (None for the superuser); others get a 403 page that says why."""
    if user.is_superuser:
        return None
    scope = staff_scope(user)
    if scope is None or user.role not in access.READERS:
        raise Forbidden(_("评价页面给工作人员和第三方评估机构使用。志愿者请看“我的星级”。"), code="not_allowed")
    return scope


def _bank_ids(user: User) -> list[Org]:
    """Head offices where the caller is an admin."""
    return [o for o in Org.objects.filter(kind=OrgKind.HEAD_OFFICE) if has_role(user, {Role.HEAD_OFFICE_ADMIN}, o)][:20]


@page("login")
def home(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    _staff_or_assessor(user)
    year = _year(request)
    orgs = list(visible_orgs(user).filter(kind__in=access.ASSESSED_KINDS).order_by("path")[:200])
    rows = []
    by_bank: dict[int, list[Org]] = {}
    for org in orgs:
        assert org.head_office_id is not None
        by_bank.setdefault(org.head_office_id, []).append(org)
    for bank_id, group in by_bank.items():
        scores = org_scores(bank_id, group, year)
        rows += [(org, scores[org.pk]) for org in group]
    return render(
        request,
        "evaluation/home.html",
        {
            "year": year,
            "rows": rows,
            "is_assessor": user.role == Role.ASSESSOR or user.is_superuser,
            "manages": user.is_superuser or user.role in MANAGING_ROLES,
            "banks": _bank_ids(user),
        },
    )


# Settings: rules and indicators (head-office admins) ---------------------------------------------------------------


@page("login")
def settings_page(request: HttpRequest, bank_id: int) -> HttpResponse:
    user = user_of(request)
    bank = access.access_bank_settings(user, bank_id, write=True)
    rules = evaluation_rules(bank.pk)
    rules_form = RulesForm(initial={f: getattr(rules, f) for f in actions.RULE_FIELDS})
    indicator_form = IndicatorForm()
    status = 200
    if request.method == "POST":
        what = request.POST.get("form")
        try:
            if what == "rules":
                rules_form = RulesForm(request.POST)
                if rules_form.is_valid():
                    actions.do_update_rules(user, bank, dict(rules_form.cleaned_data))
                    messages.success(request, _("评价规则已保存。"))
                    return redirect("evaluation:settings", bank.pk)
            elif what == "indicator":
                indicator_form = IndicatorForm(request.POST)
                if indicator_form.is_valid():
                    actions.do_create_indicator(user, bank, actions.IndicatorInput(**indicator_form.cleaned_data))
                    messages.success(request, _("指标已添加。"))
                    return redirect("evaluation:settings", bank.pk)
            elif what == "defaults":
                actions.do_seed_defaults(user, bank)
                messages.success(request, _("已加入默认的指标和表彰类别。"))
                return redirect("evaluation:settings", bank.pk)
            elif what == "toggle":
                indicator = access.access_indicator(user, _int(request.POST.get("indicator")), write=True)
                actions.do_update_indicator(user, indicator, actions.IndicatorInput(active=not indicator.active))
                return redirect("evaluation:settings", bank.pk)
        except ApiError as exc:
            if isinstance(exc, (Forbidden, NotFound)):
                raise
            add_form_error(indicator_form if what == "indicator" else rules_form, exc)
        status = 422
    return render(
        request,
        "evaluation/settings.html",
        {
            "bank": bank,
            "rules_form": rules_form,
            "indicator_form": indicator_form,
            "indicators": list(Indicator.objects.filter(bank=bank)),
        },
        status=status,
    )


def _int(raw: str | None) -> int:
    if raw is None or not raw.isdigit() or len(raw) > 18 or int(raw) < 1:
        raise NotFound(_("找不到。"), code="not_found")
    return int(raw)


# Assessments ---------------------------------------------------------------------------------------------------------


@page("login")
def assess(request: HttpRequest, org_id: int) -> HttpResponse:
    user = user_of(request)
    org = access.access_assess(user, org_id)
    indicators = list(Indicator.objects.filter(bank_id=org.head_office_id, active=True))
    form = AssessForm(request.POST or None, indicators=indicators, initial={"year": clock.localdate().year})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                actions.do_record_assessment(
                    user, org, year=form.cleaned_data["year"], scores=form.scores(), note=form.cleaned_data["note"]
                )
            except ApiError as exc:
                if isinstance(exc, (Forbidden, NotFound)):
                    raise
                add_form_error(form, exc)
            else:
                messages.success(request, _("评分已提交。"))
                return redirect("evaluation:home")
        status = 422
    return render(
        request, "evaluation/assess.html", {"org": org, "form": form, "indicators": indicators}, status=status
    )


@page("login")
def assessments(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    _staff_or_assessor(user)
    rows = list(
        access.visible_assessments(user)
        .select_related("org", "assessor")
        .prefetch_related("scores", "scores__indicator")
        .order_by("-year", "-pk")[:200]
    )
    return render(request, "evaluation/assessments.html", {"rows": rows})


# Complaints ---------------------------------------------------------------------------------------------------------


def _scope_orgs(user: User) -> list[tuple[int, str]]:
    return [(o.pk, o.name) for o in visible_orgs(user).exclude(kind=OrgKind.HEAD_OFFICE).order_by("path")[:MAX_CHOICES]]


def _scope_volunteers(user: User) -> list[tuple[int, str]]:
    qs = Member.objects.filter(is_volunteer=True).exclude(status=MemberStatus.LEFT).select_related("home_org")
    scope = staff_scope(user)
    if not user.is_superuser and scope is not None:
        qs = qs.filter(home_org__path__startswith=scope.path)
    return [
        (m.pk, str(_("%(name)s（%(org)s）") % {"name": m.name, "org": m.home_org.name}))
        for m in qs.order_by("name", "pk")[:MAX_CHOICES]
    ]


@page("workbench")
def complaints(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    form = ComplaintForm(request.POST or None, orgs=_scope_orgs(user), volunteers=_scope_volunteers(user))
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                org = access.access_complaint_org(user, data["org"]) if data["org"] else None
                volunteer = access.access_complaint_volunteer(user, data["volunteer"]) if data["volunteer"] else None
                if org is None and volunteer is not None:
                    access.access_complaint_org(user, volunteer.home_org_id)
                complaint = actions.do_file_complaint(
                    user, org=org, volunteer=volunteer, complainant=data["complainant"], text=data["text"]
                )
            except ApiError as exc:
                if isinstance(exc, (Forbidden, NotFound)):
                    raise
                add_form_error(form, exc, {"org_id": "org", "volunteer_id": "volunteer"})
            else:
                messages.success(request, _("投诉已登记。"))
                return redirect("evaluation:complaint", complaint.pk)
        status = 422
    state = request.GET.get("status", "")
    qs = access.visible_complaints(user).select_related("org", "volunteer")
    if state in ComplaintStatus.values:
        qs = qs.filter(status=state)
    return render(
        request,
        "evaluation/complaints.html",
        {"rows": list(qs.order_by("-pk")[:200]), "form": form, "state": state, "statuses": ComplaintStatus.choices},
        status=status,
    )


@page("workbench")
def complaint(request: HttpRequest, complaint_id: int) -> HttpResponse:
    user = user_of(request)
    item = access.access_complaint(user, complaint_id)
    may_decide = item.status == ComplaintStatus.OPEN and has_role(user, ADMIN_ROLES, item.org)
    follow_form = FollowUpForm()
    decide_form = DecideForm()
    status = 200
    if request.method == "POST":
        what = request.POST.get("form")
        form: Any = FollowUpForm(request.POST) if what == "follow_up" else DecideForm(request.POST)
        if what == "follow_up":
            follow_form = form
        else:
            decide_form = form
        if form.is_valid():
            try:
                if what == "follow_up":
                    actions.do_follow_up_complaint(user, item, form.cleaned_data["note"])
                else:
                    item = access.access_complaint(user, complaint_id, decide=True)
                    actions.do_decide_complaint(
                        user, item, upheld=form.cleaned_data["outcome"] == "upheld", note=form.cleaned_data["note"]
                    )
            except ApiError as exc:
                if isinstance(exc, (Forbidden, NotFound)):
                    raise
                add_form_error(form, exc)
            else:
                messages.success(request, _("已保存。"))
                return redirect("evaluation:complaint", item.pk)
        status = 422
    return render(
        request,
        "evaluation/complaint.html",
        {
            "item": item,
            "follow_ups": list(item.follow_ups.select_related("actor")),
            "follow_form": follow_form,
            "decide_form": decide_form,
            "may_decide": may_decide,
            "penalties": list(item.penalties.all()),
        },
        status=status,
    )


# Penalties -----------------------------------------------------------------------------------------------------------


@page("workbench")
def penalties(request: HttpRequest) -> HttpResponse:
    user = user_of(request)
    if not (user.is_superuser or user.role in MANAGING_ROLES):
        raise Forbidden(_("奖惩由社区工作人员和管理员查看。"), code="not_allowed")
    may_impose = user.is_superuser or user.role in ADMIN_ROLES
    upheld = [
        (
            c.pk,
            str(
                _("%(label)s：%(text)s")
                % {"label": f"#{c.pk} {c.volunteer.name if c.volunteer else c.org.name}", "text": c.text[:30]}
            ),
        )
        for c in access.visible_complaints(user)
        .filter(status=ComplaintStatus.UPHELD)
        .select_related("volunteer", "org")
        .order_by("-pk")[:100]
    ]
    form = PenaltyForm(request.POST or None, volunteers=_scope_volunteers(user), complaints=upheld)
    status = 200
    if request.method == "POST" and may_impose:
        if form.is_valid():
            data = form.cleaned_data
            try:
                member = access.access_member_to_penalise(user, data["volunteer"])
                linked = None
                if data["complaint"]:
                    linked = access.access_complaint(user, data["complaint"])
                actions.do_impose_penalty(
                    user,
                    member,
                    kind=data["kind"],
                    reason=data["reason"],
                    complaint=linked,
                    starts_on=data["starts_on"],
                    ends_on=data["ends_on"],
                )
            except ApiError as exc:
                if isinstance(exc, (Forbidden, NotFound)):
                    raise
                add_form_error(form, exc, {"member_id": "volunteer", "complaint_id": "complaint"})
            else:
                messages.success(request, _("处理已登记。志愿者的时间不会因此减少。"))
                return redirect("evaluation:penalties")
        status = 422
    rows = list(access.visible_penalties(user).select_related("member", "member__home_org").order_by("-pk")[:200])
    today = clock.localdate()
    for p in rows:
        p.in_force = p.in_force_on(today)  # type: ignore[attr-defined]
    return render(
        request,
        "evaluation/penalties.html",
        {"rows": rows, "form": form, "may_impose": may_impose, "lift_form": LiftForm()},
        status=status,
    )


@require_POST
@page("workbench")
def lift(request: HttpRequest, penalty_id: int) -> HttpResponse:
    user = user_of(request)
    penalty = access.access_penalty(user, penalty_id, manage=True)
    form = LiftForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("请填写解除理由。"))
        return redirect("evaluation:penalties")
    try:
        actions.do_lift_penalty(user, penalty, reason=form.cleaned_data["reason"])
    except ApiError as exc:
        if isinstance(exc, (Forbidden, NotFound)):
            raise
        messages.error(request, str(exc.message))
    else:
        messages.success(request, _("已解除，志愿者可以重新接单。"))
    return redirect("evaluation:penalties")


MAX_CREDITS = 50


def _credits(penalty: Any) -> list[tuple[int, str]]:
    """The volunteer's recent credits that may be corrected: deposits and service records not reversed yet."""
    rows = (
        Transaction.objects.filter(
            bank_id=penalty.bank_id,
            kind__in=(TransactionKind.DEPOSIT, TransactionKind.SERVICE_RECORD),
            legs__account__member_id=penalty.member_id,
            legs__minutes__gt=0,
            reversed_by__isnull=True,
        )
        .distinct()
        .order_by("-pk")[:MAX_CREDITS]
    )
    return [
        (
            tx.pk,
            str(
                _("%(when)s · %(kind)s · %(minutes)s 分钟 %(memo)s")
                % {
                    "when": timezone.localtime(tx.created_at).strftime("%Y-%m-%d"),
                    "kind": tx.get_kind_display(),
                    "minutes": tx.minutes,
                    "memo": tx.memo[:40],
                }
            ),
        )
        for tx in rows
    ]


@page("workbench")
def correction(request: HttpRequest, penalty_id: int) -> HttpResponse:
    """冲正: a credit the misconduct wrongly earned is reversed through the ledger, once per penalty (admins)."""
    user = user_of(request)
    penalty = access.access_penalty(user, penalty_id, manage=True)
    form = CorrectionForm(request.POST or None, credits=_credits(penalty))
    status = 200
    if request.method == "POST" and penalty.correction_id is None:
        if form.is_valid():
            original = Transaction.objects.filter(pk=form.cleaned_data["transaction"], bank_id=penalty.bank_id).first()
            try:
                if original is None:
                    raise NotFound(_("找不到这笔交易。"), code="transaction_not_found")
                actions.do_correct_credit(user, penalty, original, reason=form.cleaned_data["reason"])
            except ApiError as exc:
                if isinstance(exc, Forbidden):
                    raise
                add_form_error(form, exc, {"transaction_id": "transaction"})
            else:
                messages.success(request, _("已冲正，这笔存入已从志愿者的时间账户中扣回。"))
                return redirect("evaluation:penalties")
        status = 422
    return render(
        request,
        "evaluation/correction.html",
        {"penalty": penalty, "form": form, "done": penalty.correction},
        status=status,
    )


# Awards -------------------------------------------------------------------------------------------------------------


@page("login")
def awards(request: HttpRequest, bank_id: int) -> HttpResponse:
    user = user_of(request)
    bank = access.access_bank_settings(user, bank_id, write=False)
    is_admin = has_role(user, {Role.HEAD_OFFICE_ADMIN}, bank)
    year = _year(request)
    if request.method == "POST":
        if not is_admin:
            raise Forbidden(_("表彰名单由总行确认。"), code="not_head_office_admin")
        year = _int(request.POST.get("year"))
        try:
            if request.POST.get("form") == "rank":
                kind = access.access_award_kind(user, _int(request.POST.get("kind")), write=True)
                ranked = actions.do_rank_awards(user, kind, year)
                messages.success(request, _("已按数据排出 %(n)s 名候选。") % {"n": len(ranked)})
            else:
                award = access.access_award(user, _int(request.POST.get("award")), confirm=True)
                award, new = actions.do_confirm_award(user, award)
                messages.success(request, _("已确认。") if new else _("这一位之前已经确认过了。"))
        except ApiError as exc:
            if isinstance(exc, (Forbidden, NotFound)):
                raise
            messages.error(request, str(exc.message))
        return redirect(f"{request.path}?year={year}")
    kinds = list(AwardKind.objects.filter(bank=bank, active=True))
    listed = Award.objects.filter(bank=bank, year=year).select_related("member", "org", "member__home_org")
    by_kind: dict[int, list[Award]] = {}
    rows = list(listed.order_by("rank", "pk"))
    waiting = actions.waiting_bonuses([a for a in rows if a.status == "confirmed" and a.bonus_transaction_id is None])
    for award in rows:
        award.bonus_approval_id = waiting.get(award.pk)  # type: ignore[attr-defined]  # its bonus waits (四眼原则)
        by_kind.setdefault(award.kind_id, []).append(award)
    sections = [(kind, by_kind.get(kind.pk, [])) for kind in kinds]
    return render(
        request,
        "evaluation/awards.html",
        {"bank": bank, "year": year, "sections": sections, "is_admin": is_admin, "years": _years()},
    )


def _years() -> list[int]:
    this = clock.localdate().year
    return [this, this - 1, this - 2]


# The volunteer's own page --------------------------------------------------------------------------------------------


@page("volunteer")
def mine(request: HttpRequest) -> HttpResponse:
    member = who(request).member
    assert member is not None
    user = user_of(request)
    year = clock.localdate().year
    current = SelfAssessment.objects.filter(member=member, year=year).first()
    initial = {"year": year, "score": current.score if current else None, "summary": current.summary if current else ""}
    form = SelfAssessForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                actions.do_self_assess(user, member=member, **form.cleaned_data)
            except ApiError as exc:
                if isinstance(exc, (Forbidden, NotFound)):
                    raise
                add_form_error(form, exc)
            else:
                messages.success(request, _("自评已保存。"))
                return redirect("evaluation:mine")
        status = 422
    return render(
        request,
        "evaluation/mine.html",
        {
            "star": star_level(member),
            "score": volunteer_score(member.bank_id, member.pk, year),
            "year": year,
            "form": form,
            "awards": list(Award.objects.filter(member=member, status="confirmed").select_related("kind")),
            "penalties": list(access.visible_penalties(user).order_by("-pk")[:20]),
        },
        status=status,
    )
