"""The staff's member pages: registering a walk-in member (`POST /api/v1/members`), a member's page (`GET
/api/v1/members/{id}`, the unmasked ID number of `.../id-number`), editing and giving a login (`PATCH
/api/v1/members/{id}`) and linking a relative (`POST .../relatives`). Each page is guarded by its endpoint's access
function and calls its action."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from timebank.lib.errors import ApiError
from timebank.lib.masking import mask_phone
from timebank.members.access import access_member, access_member_to_manage, can_see_personal_data
from timebank.members.actions import (
    MemberInput,
    contact_fields,
    current_consents,
    do_link_relative,
    do_member_leaves,
    do_reactivate_member,
    do_record_consent,
    do_record_consents,
    do_register_member,
    do_suspend_member,
    do_update_member,
    do_view_id_number,
    do_view_personal_data,
    temporary_password,
)
from timebank.members.forms_staff import (
    DETAIL_FIELDS,
    ConsentForm,
    MemberEditForm,
    MemberLoginForm,
    MemberRegisterForm,
    RelativeForm,
)
from timebank.members.models import ConsentScope, Member, MemberStatus, RelativeLink
from timebank.ops.idempotency import form_once, submit_once
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, OrgKind, User
from timebank.orgs.scope import manage_org, org_choices, user_of
from timebank.orgs.views import temporary_page
from timebank.web.forms import new_idempotency_key
from timebank.web.views.common import add_form_error, explain, page

HOME_KINDS = (OrgKind.SUB_BRANCH, OrgKind.OUTLET)
# The login's password is made here and shown once; a refusal about it is about the username typed.
LOGIN_ALIASES = {"password": "username", "login": "username"}


# A member's status, as POST /api/v1/members/{id}/<action> (approving a registration has its own page, from the
# members list): the action, the statuses it applies to, its button and what the page says once done.
STATUS_ACTIONS: dict[str, tuple[Any, frozenset[str], Any, Any]] = {
    "suspend": (
        do_suspend_member,
        frozenset({MemberStatus.ACTIVE}),
        _("暂停"),
        _("已暂停，这位会员暂时不能登录和办理。"),
    ),
    "reactivate": (
        do_reactivate_member,
        frozenset({MemberStatus.SUSPENDED}),
        _("恢复正常"),
        _("已恢复正常。"),
    ),
    "leave": (
        do_member_leaves,
        frozenset({MemberStatus.ACTIVE, MemberStatus.SUSPENDED, MemberStatus.PENDING}),
        _("登记退出"),
        _("已登记退出。时间账户和记录都保留。"),
    ),
}


def _member_url(member_id: int) -> str:
    return reverse("web:staff_member", kwargs={"member_id": member_id})


def _replayed(request: HttpRequest, body: str) -> HttpResponse:
    """A form sent twice: the first submit did it; its temporary password is not shown again."""
    messages.info(request, _("这张表已经提交过了。临时密码只显示一次，没记下的话请重置密码。"))
    return redirect(_member_url(int(body)))


@never_cache
@page("workbench")
def staff_member_new(request: HttpRequest) -> HttpResponse:
    """Register a walk-in member in a community the caller manages (`POST /api/v1/members`: active at once)."""
    user = user_of(request)
    form = MemberRegisterForm(request.POST or None, orgs=org_choices(user, HOME_KINDS))  # managers only (403)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            home = manage_org(user, data["home_org_id"], HOME_KINDS)
            username = data["username"].strip()
            temporary = temporary_password() if username else ""
            with form_once(request, data["idempotency_key"], "members.register") as once, transaction.atomic():
                if once.replay is not None:
                    return _replayed(request, once.replay.body)
                member = do_register_member(
                    user,
                    home_org=home,
                    data=form.member_input(DETAIL_FIELDS),
                    login=(username, temporary) if username else None,
                    approved=True,
                    temporary=True,
                )
                do_record_consents(user, member, form.consents(), channel="staff")
                once.keep(str(member.pk))
        except ApiError as exc:
            add_form_error(form, exc, {**LOGIN_ALIASES, "home_org": "home_org_id"})
        else:
            if username:
                return temporary_page(
                    request, name=member.name, username=username, temporary=temporary, back=_member_url(member.pk)
                )
            messages.success(request, _("%(name)s 已登记为会员。") % {"name": member.name})
            return redirect(_member_url(member.pk))
    return render(request, "members/staff/new.html", {"form": form}, status=422 if form.errors else 200)


def _edit_form(user: User, member: Member, data: Any = None) -> MemberEditForm:
    """The edit form; its communities are those the caller manages (moving home needs both ends managed)."""
    return MemberEditForm(data, member=member, orgs=org_choices(user, HOME_KINDS))


def _member_page(
    request: HttpRequest,
    user: User,
    member: Member,
    *,
    status: int = 200,
    edit: MemberEditForm | None = None,
    login_form: MemberLoginForm | None = None,
    relative_form: RelativeForm | None = None,
    consent_form: ConsentForm | None = None,
    id_number: str = "",
) -> HttpResponse:
    manage = has_role(user, MANAGING_ROLES, member.home_org)  # access_member_to_manage's rule
    full = can_see_personal_data(user, member)
    if full:  # as GET /members/{id}: each showing of the phone and address is on the audit chain
        do_view_personal_data(user, [(member, contact_fields(member))], via=f"member:{member.pk}")
    can_add_login = manage and member.user_id is None and member.anonymised_at is None
    context: dict[str, Any] = {
        "m": member,
        "full": full,
        "manage": manage,
        "id_number": id_number,
        "relatives": RelativeLink.objects.filter(member=member).select_related("relative").order_by("pk"),
        "phone": member.phone if full else mask_phone(member.phone),
        "consents": [(ConsentScope(scope).label, c) for scope, c in current_consents(member).items()],
        "edit": (edit or _edit_form(user, member)) if manage else None,
        # A refused form stays on the page with its error, even when the refusal is that a login exists now.
        "login_form": login_form or (MemberLoginForm() if can_add_login else None),
        "relative_form": (relative_form or RelativeForm()) if manage else None,
        "consent_form": (consent_form or ConsentForm()) if manage and member.anonymised_at is None else None,
        "can_reset_password": manage and member.user_id is not None and member.anonymised_at is None,
        "status_actions": [
            (name, label) for name, (_act, from_, label, _done) in STATUS_ACTIONS.items() if member.status in from_
        ]
        if manage
        else [],
        "status_key": new_idempotency_key(),
    }
    return render(request, "members/staff/member.html", context, status=status)


@never_cache
@page("workbench")
def staff_member(request: HttpRequest, member_id: int) -> HttpResponse:
    """A member as staff may see them (`GET /api/v1/members/{id}`: staff and operators of the home subtree)."""
    user = user_of(request)
    return _member_page(request, user, access_member(user, member_id))


@never_cache
@require_POST
@page("workbench")
def staff_member_id_number(request: HttpRequest, member_id: int) -> HttpResponse:
    """The unmasked ID number (`GET /api/v1/members/{id}/id-number`): staff of the home subtree; audited."""
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    if not member.id_number_encrypted:
        messages.info(request, _("这位会员没有登记身份证号。"))
        return redirect(_member_url(member.pk))
    return _member_page(request, user, member, id_number=do_view_id_number(user, member))


@require_POST
@page("workbench")
def staff_member_edit(request: HttpRequest, member_id: int) -> HttpResponse:
    """Edit a member (`PATCH /api/v1/members/{id}`): only the fields changed are sent."""
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    form = _edit_form(user, member, request.POST)
    if form.is_valid():
        try:
            # As the PATCH: a new home must be one the caller manages; the action refuses another bank's.
            home_id = form.new_home_id()
            new_home = manage_org(user, home_id) if home_id is not None else None
            with form_once(request, form.cleaned_data["idempotency_key"], "members.update") as once:
                if once.replay is None:
                    do_update_member(user, member, form.changes(), new_home=new_home)
                    once.keep(str(member.pk))
        except ApiError as exc:
            add_form_error(form, exc, {"home_org": "home_org_id"})
            if exc.code in ("other_bank", "outside_subtree", "org_not_found"):
                form.errors.pop("__all__", None)
                form.add_error("home_org_id", explain(exc))
    if form.errors:
        return _member_page(request, user, access_member_to_manage(user, member_id), status=422, edit=form)
    messages.success(request, _("已保存。"))
    return redirect(_member_url(member.pk))


@never_cache
@require_POST
@page("workbench")
def staff_member_login(request: HttpRequest, member_id: int) -> HttpResponse:
    """Give a member who has none their own login (`PATCH /api/v1/members/{id}` with `login`), with a temporary
    password shown once."""
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    form = MemberLoginForm(request.POST)
    if form.is_valid():
        username = form.cleaned_data["username"].strip()
        temporary = temporary_password()
        try:
            with form_once(request, form.cleaned_data["idempotency_key"], "members.add_login") as once:
                if once.replay is not None:
                    return _replayed(request, once.replay.body)
                member = do_update_member(user, member, MemberInput(), login=(username, temporary), temporary=True)
                once.keep(str(member.pk))
        except ApiError as exc:
            add_form_error(form, exc, LOGIN_ALIASES)
        else:
            return temporary_page(
                request, name=member.name, username=username, temporary=temporary, back=_member_url(member.pk)
            )
    return _member_page(request, user, member, status=422, login_form=form)


@require_POST
@page("workbench")
def staff_member_relative(request: HttpRequest, member_id: int) -> HttpResponse:
    """Link a relative (`POST /api/v1/members/{id}/relatives`): the member managed by the caller, the relative
    one they may read. The link is symmetric."""
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    form = RelativeForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            relative = access_member(user, data["relative_id"])
            with form_once(request, data["idempotency_key"], "members.link_relative") as once:
                if once.replay is None:
                    do_link_relative(user, member, relative, data["relation"])
                    once.keep(str(member.pk))
        except ApiError as exc:  # an unknown or unreadable member, or one linked already: next to the number
            if exc.fields:
                add_form_error(form, exc)
            else:
                form.add_error("relative_id", explain(exc))
    if form.errors:
        return _member_page(request, user, member, status=422, relative_form=form)
    messages.success(request, _("已关联亲属。"))
    return redirect(_member_url(member.pk))


@require_POST
@page("workbench")
def staff_member_status(request: HttpRequest, member_id: int, action: str) -> HttpResponse:
    """Suspend, reactivate or record that a member left (`POST /api/v1/members/{id}/suspend|reactivate|leave`):
    staff of the home subtree. A status that does not allow it is refused with the reason (409)."""
    if action not in STATUS_ACTIONS:
        raise Http404
    act, _from, _label, done = STATUS_ACTIONS[action]
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    try:
        with form_once(request, request.POST.get("idempotency_key"), f"members.{action}") as once:
            if once.replay is None:
                act(user, member)
                once.keep(str(member.pk))
    except ApiError as exc:
        messages.error(request, explain(exc))
    else:
        messages.success(request, done)
    return redirect(_member_url(member.pk))


@require_POST
@page("workbench")
def staff_member_consent(request: HttpRequest, member_id: int) -> HttpResponse:
    """Record a separate consent given or withdrawn on paper (`POST /api/v1/members/{id}/consents`): staff of the
    home subtree; the consent's channel is `staff`."""
    user = user_of(request)
    member = access_member_to_manage(user, member_id)
    form = ConsentForm(request.POST)
    return submit_once(
        request,
        form,
        "members.consent",
        lambda data: do_record_consent(user, member, scope=data["scope"], granted=data["granted"], channel="staff"),
        success=_("已记录。"),
        done=lambda _kept: redirect(_member_url(member.pk)),
        again=lambda status: _member_page(request, user, member, status=status, consent_form=form),
    )
