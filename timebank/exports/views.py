"""Export downloads for the registers (.xlsx), certificates and statements (PDF), and the public check page."""

from __future__ import annotations

import datetime as dt
import functools
import itertools
from typing import Any, cast

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from timebank.exports import registers
from timebank.exports.access import access_certificate, access_member_to_certify, access_statement
from timebank.exports.actions import do_issue_certificate, do_record_export
from timebank.exports.certificates import category_label, check_code, judge
from timebank.exports.forms import PeriodForm, default_period
from timebank.exports.models import IssuedCertificate
from timebank.exports.pdf import hours_text, render_certificate, render_statement
from timebank.exports.xlsx import CHUNK, Column, export_response
from timebank.ledger.models import AccountKind, Leg
from timebank.ledger.statement_words import Balance, balance_of, describe
from timebank.lib import clock
from timebank.lib.errors import ApiError, Forbidden, Invalid
from timebank.lib.masking import mask_name
from timebank.members.access import visible_members
from timebank.members.models import Member
from timebank.members.person import who
from timebank.orders.access import visible_orders
from timebank.orgs.access import has_role
from timebank.orgs.models import Org, User
from timebank.orgs.scope import get_org, is_workbench_user, user_of
from timebank.web.views.common import View, explain, page

STATEMENT_PDF_LIMIT = 5000  # a PDF beyond this is unreadable; the .xlsx has everything
READ = frozenset({"head_office_admin", "branch_admin", "staff", "operator"})


def _date(request: HttpRequest, name: str) -> dt.date | None:
    raw = request.GET.get(name, "").strip()
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise Invalid(_("日期格式应为 YYYY-MM-DD。"), code="invalid_date", fields={name: "invalid"}) from None


def _org(request: HttpRequest, user: User) -> Org | None:
    """An optional `org` filter; it must lie in the reader's part of the tree (else 403, another bank's is 404)."""
    raw = request.GET.get("org", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        raise Invalid(_("机构编号不对。"), code="invalid_org", fields={"org": "invalid"})
    org = get_org(int(raw))
    if not has_role(user, READ, org):
        raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")
    return org


def _full(request: HttpRequest) -> bool:
    return request.GET.get("full") == "1"


def _workbench(request: HttpRequest) -> User:
    user = user_of(request)
    if not is_workbench_user(user):
        raise Forbidden(_("这个页面只给社区工作人员和热线坐席使用。"), code="not_staff")
    return user


def refuse_bad_input(view: View) -> View:
    """A bad filter (a date that is no date) is a 422 with the reason, not a server error."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except Invalid as exc:
            return HttpResponse(str(exc.message), status=422, content_type="text/plain; charset=utf-8")

    return wrapped


def _stream(response: object) -> HttpResponse:
    return cast(HttpResponse, response)  # streamed: the pages' guard passes any response through


@refuse_bad_input
@page("workbench")
def members_xlsx(request: HttpRequest) -> HttpResponse:
    user = _workbench(request)
    return _stream(
        registers.export_members(
            user,
            visible_members(user),
            org=_org(request, user),
            status=request.GET.get("status", "")[:10],
            full=_full(request),
        )
    )


@refuse_bad_input
@page("workbench")
def orders_xlsx(request: HttpRequest) -> HttpResponse:
    user = _workbench(request)
    return _stream(
        registers.export_orders(
            user,
            visible_orders(user),
            org=_org(request, user),
            state=request.GET.get("state", "")[:12],
            start=_date(request, "from"),
            end=_date(request, "to"),
            full=_full(request),
        )
    )


# --- Certificates, statements -------------------------------------------------------------------------------


def _period_from(request: HttpRequest) -> tuple[dt.date, dt.date]:
    start = _date(request, "from") or _date(request, "stmt-start")
    end = _date(request, "to") or _date(request, "stmt-end")
    today = clock.localdate()
    return start or today.replace(month=1, day=1), end or today


def _pdf(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def verify_url(request: HttpRequest, cert: IssuedCertificate) -> str:
    path = reverse("exports:verify", args=[cert.serial])
    return request.build_absolute_uri(f"{path}?c={check_code(cert)}")


@require_POST
@refuse_bad_input
@page("volunteer")
def my_certificate(request: HttpRequest) -> HttpResponse:
    """The volunteer asks for their certificate for a period: issue (or find) it, then download it."""
    user = user_of(request)
    member = who(request).member
    assert member is not None
    form = PeriodForm(request.POST, prefix="cert")
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(str(e) for e in error))
        return redirect("web:my_time")
    try:
        cert, _created = do_issue_certificate(
            user, member, start=form.cleaned_data["start"], end=form.cleaned_data["end"]
        )
    except ApiError as exc:
        messages.error(request, explain(exc))
        return redirect("web:my_time")
    return redirect("exports:certificate_pdf", serial=cert.serial)


@refuse_bad_input
@page("login")
def certificate_pdf(request: HttpRequest, serial: str) -> HttpResponse:
    cert = access_certificate(user_of(request), serial)
    return _pdf(render_certificate(cert, verify_url(request, cert)), f"certificate-{cert.serial}.pdf")


@refuse_bad_input
@page("workbench")
def staff_certificate(request: HttpRequest, member_id: int) -> HttpResponse:
    """Staff issue a certificate for a volunteer of their subtree (schools and employers ask for these)."""
    user = user_of(request)
    member = access_member_to_certify(user, member_id)
    form = PeriodForm(request.POST or None, initial=default_period())
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                cert, _created = do_issue_certificate(
                    user, member, start=form.cleaned_data["start"], end=form.cleaned_data["end"]
                )
            except ApiError as exc:
                form.add_error(None, explain(exc))
            else:
                messages.success(request, _("证明已开具，编号 %(serial)s。") % {"serial": cert.serial})
                return redirect("exports:staff_certificate", member_id=member.pk)
        status = 422
    issued = IssuedCertificate.objects.filter(member=member).order_by("-pk")[:50]
    return render(
        request,
        "exports/staff_certificate.html",
        {"member": member, "form": form, "issued": issued},
        status=status,
    )


def verify(request: HttpRequest, serial: str) -> HttpResponse:
    """Public: is this certificate genuine and unaltered? Shows its summary with the name masked."""
    code = request.GET.get("c")
    verdict = judge(serial, code[:64] if code is not None else None)
    cert = verdict.cert if verdict.genuine else None
    context: dict[str, Any] = {"verdict": verdict, "serial": serial.upper()[:32]}
    if cert is not None:
        c = cert.content
        context.update(
            name=mask_name(c["name"]),
            content=c,
            rows=[(category_label(r["category"]), r["count"], hours_text(r["minutes"])) for r in c["by_category"]],
            total_hours=hours_text(c["total_minutes"]),
            code_checked=code is not None,
        )
    status = {"genuine": 200, "unknown": 404, "revoked": 410}.get(verdict.status, 409)
    return render(request, "exports/verify.html", context, status=status)


def _statement_lines(member: Member, start: dt.date, end: dt.date) -> Any:
    legs = (
        Leg.objects.filter(
            account__member=member,
            transaction__created_at__date__gte=start,
            transaction__created_at__date__lte=end,
        )
        .select_related("transaction", "account")
        .order_by("transaction__created_at", "pk")
    )
    parts = dict(AccountKind.choices)
    stream = legs.iterator(chunk_size=CHUNK)
    # In chunks: describe() reads the other person of each transaction (转赠给…) with one query per chunk.
    while chunk := list(itertools.islice(stream, CHUNK)):
        for line in describe(chunk, member.pk):
            leg = line.leg
            yield (
                leg.transaction.created_at,
                line.words,
                leg.transaction.memo,
                str(parts.get(leg.account.kind, leg.account.kind)),
                leg.minutes,
                leg.balance_after_minutes,
            )


def balance_rows(balance: Balance) -> list[list[Any]]:
    """The closing balance under a statement's lines, told as on 我的时间: the one total, its parts, what pays
    for services (minutes, as the lines above)."""
    return [
        [_("现在的余额"), _("分钟"), _("是什么")],
        [balance.total_label, balance.total, balance.total_words],
        *[[p.label, p.minutes, p.words] for p in balance.parts],
        [balance.spendable_label, balance.spendable, balance.spendable_words],
        [balance.why_two_numbers],
    ]


def _statement(request: HttpRequest, member: Member, *, fmt: str) -> HttpResponse:
    user = user_of(request)
    start, end = _period_from(request)
    if start > end:
        raise Invalid(_("开始日期不能晚于结束日期。"), code="invalid_period", fields={"from": "after_to"})
    period = f"{start.isoformat()} ~ {end.isoformat()}"
    if fmt == "xlsx":
        columns = [
            Column(_("时间"), lambda r: r[0]),
            Column(_("发生了什么"), lambda r: r[1]),
            Column(_("说明"), lambda r: r[2]),
            Column(_("部分"), lambda r: r[3]),
            Column(_("变动（分钟）"), lambda r: r[4]),
            Column(_("之后余额（分钟）"), lambda r: r[5]),
        ]
        return _stream(
            export_response(
                user,
                name="statement",
                title=_("对账单"),
                columns=columns,
                rows=_statement_lines(member, start, end),
                reveal=True,
                bank_id=member.bank_id,
                filters={"member": member.pk, "from": start, "to": end},
                filename=f"statement-{member.pk}-{start.isoformat()}-{end.isoformat()}.xlsx",
                after=balance_rows(balance_of(member.pk)),
            )
        )
    data = render_statement(
        member_name=member.name,
        bank=member.bank.name,
        period=period,
        balance=balance_of(member.pk),
        lines=list(itertools.islice(_statement_lines(member, start, end), STATEMENT_PDF_LIMIT)),
    )
    do_record_export(
        user,
        "statement_pdf",
        bank_id=member.bank_id,
        rows=0,
        unmasked_rows=1,
        filters={"member": member.pk, "from": start, "to": end},
    )
    return _pdf(data, f"statement-{member.pk}-{start.isoformat()}-{end.isoformat()}.pdf")


@refuse_bad_input
@page("member")
def my_statement(request: HttpRequest) -> HttpResponse:
    member = who(request).member
    assert member is not None
    return _statement(request, Member.objects.select_related("bank").get(pk=member.pk), fmt="pdf")


@refuse_bad_input
@page("login")
def member_statement(request: HttpRequest, member_id: int, fmt: str) -> HttpResponse:
    member = access_statement(user_of(request), member_id)
    return _statement(request, member, fmt=fmt)


# --- The other registers -------------------------------------------------------------------------------------


@refuse_bad_input
@page("workbench")
def needs_xlsx(request: HttpRequest) -> HttpResponse:
    from timebank.needs.access import visible_needs

    user = _workbench(request)
    return _stream(
        registers.export_needs(
            user,
            visible_needs(user),
            org=_org(request, user),
            status=request.GET.get("status", "")[:12],
            full=_full(request),
        )
    )


@refuse_bad_input
@page("workbench")
def insurance_xlsx(request: HttpRequest) -> HttpResponse:
    from timebank.members.models import InsurancePolicy
    from timebank.safety.access import require_managing_staff

    user = user_of(request)
    scope = require_managing_staff(user)
    qs = InsurancePolicy.objects.all()
    if scope is not None:
        qs = qs.filter(member__home_org__path__startswith=scope.path)
    return _stream(registers.export_insurance(user, qs, org=_org(request, user), full=_full(request)))


@refuse_bad_input
@page("workbench")
def trainings_xlsx(request: HttpRequest) -> HttpResponse:
    from timebank.safety.access import require_managing_staff, visible_trainings
    from timebank.safety.models import TrainingAttendance

    user = user_of(request)
    scope = require_managing_staff(user)
    qs = TrainingAttendance.objects.filter(session__in=visible_trainings(user))
    if scope is not None:
        # People of other subtrees at a session held above us are not ours to list.
        qs = qs.filter(member__home_org__path__startswith=scope.path)
    return _stream(registers.export_trainings(user, qs, org=_org(request, user), full=_full(request)))


@refuse_bad_input
@page("workbench")
def redemptions_xlsx(request: HttpRequest) -> HttpResponse:
    from timebank.goods.models import Redemption
    from timebank.orgs.access import staff_scope

    user = _workbench(request)
    scope = None if user.is_superuser else staff_scope(user)
    qs = Redemption.objects.all() if scope is None else Redemption.objects.filter(outlet__path__startswith=scope.path)
    return _stream(
        registers.export_redemptions(
            user,
            qs,
            org=_org(request, user),
            start=_date(request, "from"),
            end=_date(request, "to"),
            full=_full(request),
        )
    )


@refuse_bad_input
@page("workbench")
def calls_xlsx(request: HttpRequest) -> HttpResponse:
    from timebank.hotline.access import visible_calls

    user = _workbench(request)
    return _stream(
        registers.export_calls(
            user,
            visible_calls(user),
            org=_org(request, user),
            start=_date(request, "from"),
            end=_date(request, "to"),
            full=_full(request),
        )
    )


@refuse_bad_input
@page("workbench")
def fund_entries_xlsx(request: HttpRequest) -> HttpResponse:
    from timebank.funds.access import visible_fund_entries
    from timebank.orgs.scope import require_manager

    user = user_of(request)
    require_manager(user)
    return _stream(
        registers.export_fund_entries(
            user,
            visible_fund_entries(user),
            org=_org(request, user),
            start=_date(request, "from"),
            end=_date(request, "to"),
        )
    )
