"""What every page needs: who is asking, which pages they may open, and refusals in plain words. Part of the
page kit every app builds on: it imports no app (only timebank.lib)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import ApiError, Forbidden, NotAuthenticated, NotFound

View = Callable[..., HttpResponse]


class Person(Protocol):
    """The person behind a request, as much as the kit needs to guard a page. The project names the function
    that finds them (settings.WEB_PERSON, e.g. timebank.members.person.who): the kit imports no app."""

    @property
    def member(self) -> object: ...

    @property
    def is_volunteer(self) -> bool: ...

    @property
    def is_workbench(self) -> bool: ...


def is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


@functools.cache
def _person_resolver() -> Callable[[HttpRequest], Person]:
    resolver: Callable[[HttpRequest], Person] = import_string(settings.WEB_PERSON)
    return resolver


def person_of(request: HttpRequest) -> Person:
    """Who is asking, through the resolver settings.WEB_PERSON names."""
    return _person_resolver()(request)


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
                person = person_of(request)
                if kind in ("member", "volunteer") and person.member is None:
                    raise PermissionDenied(_("这个页面是给会员（志愿者、老人和亲属）用的。工作人员请用工作台。"))
                if kind == "volunteer" and not person.is_volunteer:
                    raise PermissionDenied(_("这个页面是给志愿者用的。想当志愿者的话，请到社区登记，审核后就能接单。"))
                if kind == "workbench" and not person.is_workbench:
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
