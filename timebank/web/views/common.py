"""What every page needs: who is asking, which pages they may open, and refusals in plain words."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import ApiError, Forbidden, NotAuthenticated, NotFound
from timebank.members.access import member_of
from timebank.members.models import Member, RelativeLink
from timebank.orgs.access import staff_scope
from timebank.orgs.models import MANAGING_ROLES, Role, User

View = Callable[..., HttpResponse]

# The staff workbench: staff and admins manage, operators read members and dispatch orders.
WORKBENCH_ROLES = frozenset(MANAGING_ROLES | {Role.OPERATOR})


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def user_of(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def is_workbench_user(user: User) -> bool:
    return user.is_superuser or (staff_scope(user) is not None and user.role in WORKBENCH_ROLES)


def can_manage(user: User) -> bool:
    return user.is_superuser or (staff_scope(user) is not None and user.role in MANAGING_ROLES)


@dataclass
class Who:
    """The person behind a request, as the header and the home page describe them."""

    user: User
    member: Member | None
    relatives: list[RelativeLink] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.member is not None:
            return self.member.name
        return self.user.display_name or self.user.username

    @property
    def is_volunteer(self) -> bool:
        return self.member is not None and self.member.is_volunteer

    @property
    def is_recipient(self) -> bool:
        return self.member is not None and self.member.is_recipient

    @property
    def is_relative(self) -> bool:
        return bool(self.relatives)

    @property
    def is_workbench(self) -> bool:
        return is_workbench_user(self.user)

    @property
    def orders_care(self) -> bool:
        """May order services: for themselves (a recipient) or for a linked family member."""
        return self.is_recipient or self.is_relative

    @property
    def role_labels(self) -> list[str]:
        labels: list[str] = []
        if self.user.is_superuser:
            labels.append(str(_("系统管理员")))
        if self.user.role:
            labels.append(str(self.user.get_role_display()))
        if self.is_volunteer:
            labels.append(str(_("志愿者")))
        if self.is_recipient:
            labels.append(str(_("服务对象")))
        if self.is_relative:
            labels.append(str(_("亲属")))
        if self.member is not None and not labels:
            labels.append(str(_("会员")))
        return labels

    @property
    def place(self) -> str:
        if self.member is not None:
            return self.member.home_org.name
        return self.user.org.name if self.user.org_id and self.user.org else ""


def who(request: HttpRequest) -> Who:
    cached = getattr(request, "_web_who", None)
    if cached is not None:
        return cached
    user = user_of(request)
    member = member_of(user)
    relatives: list[RelativeLink] = []
    if member is not None:
        member = Member.objects.select_related("home_org", "bank").get(pk=member.pk)
        relatives = list(RelativeLink.objects.filter(member=member).select_related("relative").order_by("pk"))
    result = Who(user, member, relatives)
    request._web_who = result  # type: ignore[attr-defined]
    return result


# What to do next, by the refusal's code: the action says why, the page adds the way forward.
NEXT_STEP: dict[str, Any] = {
    "insufficient_balance": _("可以请家人转赠一些时间，或请社区工作人员安排补贴服务。"),
    "member_not_active": _("社区工作人员审核通过后就可以办理；着急的话请联系您所在的社区。"),
    "invalid_transition": _("这个订单的情况已经变了，请看页面上的最新状态。"),
    "idempotency_key_reused": _("这张表已经提交过了。请重新打开页面再办理。"),
    "item_inactive": _("请选择其他服务项目。"),
    "username_taken": _("请换一个用户名。"),
    "duplicate_id_number": _("您可能已经登记过了，请联系社区工作人员。"),
    "not_a_volunteer": _("请换一位志愿者。"),
    "certificate_required": _("请换一位有相应证书的志愿者。"),
    "insurance_required": _("请换一位保险有效的志愿者，或先为这位志愿者办理保险。"),
    "not_allowed": _("如果您觉得应该可以办理，请联系社区工作人员。"),
    "outside_subtree": _("如果您觉得应该可以办理，请联系社区工作人员。"),
}


def explain(exc: ApiError) -> str:
    """The refusal's reason, then what the person can do about it."""
    text = str(exc.message)
    hint = NEXT_STEP.get(exc.code)
    return f"{text} {hint}" if hint else text


def _as_page_error(exc: ApiError, request: HttpRequest) -> HttpResponse:
    if isinstance(exc, NotAuthenticated):
        return redirect_to_login(request.get_full_path())
    if isinstance(exc, NotFound):
        raise Http404(explain(exc))
    if isinstance(exc, Forbidden):
        raise PermissionDenied(explain(exc))
    # A refusal no view caught (409/422) is still a refusal with its reason, never a server error.
    referer = request.META.get("HTTP_REFERER") or ""
    if not url_has_allowed_host_and_scheme(referer, allowed_hosts={request.get_host()}):
        referer = "/"
    back = safe_next(request, fallback=referer)
    return render(request, "web/refused.html", {"reason": explain(exc), "back": back}, status=exc.status)


def page(kind: str) -> Callable[[View], View]:
    """Guard a page: `public`, `login` (anyone logged in), `member`, `volunteer` or `workbench`.

    Anonymous callers go to the login page; a logged-in caller of the wrong kind gets a 403 page that says why.
    Access errors raised inside the view become 403/404 pages too."""

    def wrap(view: View) -> View:
        @functools.wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if kind != "public":
                if not request.user.is_authenticated:
                    return redirect_to_login(request.get_full_path())
                person = who(request)
                if kind in ("member", "volunteer") and person.member is None:
                    raise PermissionDenied(_("这个页面是给会员（志愿者、老人和亲属）用的。工作人员请用工作台。"))
                if kind == "volunteer" and not person.is_volunteer:
                    raise PermissionDenied(_("这个页面是给志愿者用的。想当志愿者的话，请到社区登记，审核后就能接单。"))
                if kind == "workbench" and not is_workbench_user(person.user):
                    raise PermissionDenied(_("这个页面只给社区工作人员和热线坐席使用。"))
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return _as_page_error(exc, request)

        return guarded

    return wrap


def safe_next(request: HttpRequest, fallback: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def back(request: HttpRequest, fallback: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(safe_next(request, fallback))


def add_form_error(form: Any, exc: ApiError, aliases: dict[str, str] | None = None) -> None:
    """Put an action's refusal next to the field it names, or at the top of the form."""
    aliases = aliases or {}
    names = [aliases.get(name, name) for name in exc.fields]
    target = next((n for n in names if n in form.fields), None)
    form.add_error(target, explain(exc))
