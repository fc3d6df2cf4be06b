"""Failed logins.

django-axes locks a username at one client address after 10 failures in a row (the contract's lock), so a
stranger elsewhere never locks an elder out — but alone it lets guesses spread over many addresses go on
forever. The guard here adds a ceiling per username over all addresses: after GUARD_AFTER failures for a
username within GUARD_WINDOW, from any addresses, the username is *guarded*: only addresses it logged in from
successfully before (within KNOWN_FOR) may still try (429 `username_guarded` elsewhere, before the password is
even checked). The elder on their own phone or at the community centre they always use logs in as before; a
guesser on fresh addresses is stopped. A new member who never logged in, or one on a new address, waits until
the window passes or asks their community's staff for a reset, which lifts the guard at once.

Wrong old passwords on the password page count like failed logins too: someone holding a stolen session or
token cannot guess the password to change it, and so lock its owner out."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.lib.client import client_address
from timebank.lib.errors import Locked
from timebank.orgs.models import KnownLoginAddress, LoginFailure, User

# LOGIN_GUARD_AFTER may be set in the settings; 20 is twice the per-address lock, so a person who mistypes on two
# devices is not guarded, while 12 addresses x 9 guesses are.
GUARD_AFTER = int(getattr(settings, "LOGIN_GUARD_AFTER", 20))
GUARD_WINDOW = dt.timedelta(hours=24)
KNOWN_FOR = dt.timedelta(days=180)
GUARDED_MESSAGE = _(
    "这个账号最近在很多地方输错了密码，为了安全，暂时只能在您以前登录过的手机或地点登录。"
    "着急的话请联系社区工作人员或拨打 12349。"
)

LOCKED_MESSAGE = _("密码输错的次数太多，暂时不能修改，请稍后再试。")


def check_not_locked(request: HttpRequest, user: User) -> None:
    from axes.handlers.proxy import AxesProxyHandler

    if AxesProxyHandler.is_locked(request, {"username": user.username}):
        raise Locked(LOCKED_MESSAGE)


def count_wrong_password(request: HttpRequest, user: User) -> None:
    user_login_failed.send(sender=__name__, credentials={"username": user.username}, request=request)


def _address(request: HttpRequest | None) -> str:
    return (client_address(request) or "") if request is not None else ""


def is_guarded(username: str) -> bool:
    since = clock.now() - GUARD_WINDOW
    return LoginFailure.objects.filter(username=username, created_at__gte=since).count() >= GUARD_AFTER


def is_known_address(username: str, address: str) -> bool:
    since = clock.now() - KNOWN_FOR
    return KnownLoginAddress.objects.filter(user__username=username, address=address, last_login_at__gte=since).exists()


def check_guard(request: HttpRequest, username: str) -> None:
    """Before a login's password is checked: a guarded username only from an address it logged in from before."""
    username = username.strip()
    if is_guarded(username) and not is_known_address(username, _address(request)):
        raise Locked(GUARDED_MESSAGE, code="username_guarded")


def record_failure(username: str, request: HttpRequest | None) -> None:
    now = clock.now()
    with transaction.atomic():
        # Older rows count for nobody: dropped here (by the created_at index), for every username.
        LoginFailure.objects.filter(created_at__lt=now - GUARD_WINDOW).delete()
        LoginFailure.objects.create(username=username[:150], address=_address(request)[:45], created_at=now)


def remember_success(request: HttpRequest | None, user: User) -> None:
    address = _address(request)
    if not address:
        return
    now = clock.now()
    if KnownLoginAddress.objects.filter(user=user, address=address).update(last_login_at=now):
        return
    try:
        with transaction.atomic():
            KnownLoginAddress.objects.create(user=user, address=address, last_login_at=now)
    except IntegrityError:
        pass  # the same login from the same address at once: the other request wrote it


def clear_guard(username: str) -> None:
    LoginFailure.objects.filter(username=username).delete()


def _on_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any) -> None:
    username = str(credentials.get("username") or "").strip()
    if username:
        record_failure(username, request)


def _on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if isinstance(user, User):
        remember_success(request, user)


def connect() -> None:
    user_login_failed.connect(_on_failed, dispatch_uid="timebank.orgs.lockout.failed")
    user_logged_in.connect(_on_logged_in, dispatch_uid="timebank.orgs.lockout.logged_in")
