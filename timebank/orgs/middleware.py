"""Browser sessions follow the login's state at every request, as tokens do (timebank.orgs.actions.user_for_token)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from timebank.orgs.access import login_allowed
from timebank.orgs.models import User

# What a login that must change its password may still open in the browser. The API has its own check
# (timebank.orgs.auth.check_password_changed), which answers 403 instead of redirecting.
OPEN_WHILE_CHANGING = ("/me/password/", "/logout/", "/i18n/", "/prefs/", "/static/", "/api/")


class LoginStateMiddleware:
    """A session of a suspended or departed member, or of a disabled staff login, ends at its next request; a
    login given a temporary password by staff is sent to the password page until it chooses its own."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if isinstance(user, User) and user.is_authenticated:
            if not login_allowed(user):
                logout(request)
            elif user.must_change_password and not request.path.startswith(OPEN_WHILE_CHANGING):
                target = reverse("web:password")
                return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)
