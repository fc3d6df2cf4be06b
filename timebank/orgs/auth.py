"""How an API call says who it is: a bearer token or the browser's session. The API kit (timebank.api)
takes these as its `auth`; they live here because they read logins and tokens."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import HttpBearer
from ninja.security import SessionAuth as NinjaSessionAuth

from timebank.lib.errors import Forbidden
from timebank.orgs.actions import user_for_token
from timebank.orgs.models import User

# The one call a login may make while it must change its password after a reset.
PASSWORD_CHANGE_PATH = "/api/v1/me/password"  # noqa: S105 (a path, not a password)


def check_password_changed(request: HttpRequest, user: User) -> None:
    if user.must_change_password and request.path != PASSWORD_CHANGE_PATH:
        raise Forbidden(_("请先修改密码：重置后的临时密码只能用来设置新密码。"), code="password_change_required")


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        # The Idempotency-Key middleware may have looked this token up already for this request.
        seen = getattr(request, "bearer_user", None)
        user = seen[1] if seen is not None and seen[0] == token else user_for_token(token)
        if user is not None:
            check_password_changed(request, user)
            request.user = user
        return user


class SessionAuth(NinjaSessionAuth):
    """A browser session (CSRF checked by ninja). Closed logins never get here: the session middleware of
    timebank.orgs.middleware logs them out."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = super().authenticate(request, key)
        if isinstance(user, User):
            check_password_changed(request, user)
        return user
