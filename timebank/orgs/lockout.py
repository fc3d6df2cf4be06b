"""Wrong old passwords count like failed logins (django-axes, per username and client address): someone holding
a stolen session or token cannot guess the password to change it, and so lock its owner out."""

from __future__ import annotations

from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Locked
from timebank.orgs.models import User

LOCKED_MESSAGE = _("密码输错的次数太多，暂时不能修改，请稍后再试。")


def check_not_locked(request: HttpRequest, user: User) -> None:
    from axes.handlers.proxy import AxesProxyHandler

    if AxesProxyHandler.is_locked(request, {"username": user.username}):
        raise Locked(LOCKED_MESSAGE)


def count_wrong_password(request: HttpRequest, user: User) -> None:
    user_login_failed.send(sender=__name__, credentials={"username": user.username}, request=request)
