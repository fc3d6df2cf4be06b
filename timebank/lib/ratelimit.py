"""Counting requests per client address in the shared cache, for what anyone may call without a login.

The address is the one the login lockout uses (`timebank.lib.client.client_address`: behind nginx, with
`TRUSTED_PROXY_COUNT`, the address the proxy saw). Counters live in the default cache, so several server
processes share them when `CACHE_URL` is set (see settings).
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from timebank.lib.client import client_address
from timebank.lib.errors import Locked

# Requests per client address and hour, by scope: (the setting that changes it, its default).
LIMITS: dict[str, tuple[str, int]] = {
    # Self-registration, through `POST /api/v1/register` and the join page together.
    "register": ("REGISTER_LIMIT_PER_HOUR", 20),
    # Login codes by SMS (`POST /api/v1/auth/sms-code`): per client address, and per phone number (`hit_key`).
    "sms_code": ("SMS_CODE_LIMIT_PER_HOUR", 20),
    "sms_code_phone": ("SMS_CODE_PHONE_LIMIT_PER_HOUR", 5),
}
WINDOW_SECONDS = 3600


def limit_of(scope: str) -> int:
    name, default = LIMITS[scope]
    return int(getattr(settings, name, default))


def hit(request: HttpRequest, scope: str) -> None:
    """Count one request of `scope` from the caller's address; past its limit in the current hour, 429
    `rate_limited` (the request is refused before anything is read or written)."""
    hit_key(scope, client_address(request) or "unknown")


def hit_key(scope: str, key: str) -> None:
    """Count one request of `scope` for `key` (a client address, a phone number); past its limit in the current
    hour, 429 `rate_limited`."""
    limit, window_seconds = limit_of(scope), WINDOW_SECONDS
    window = int(time.time()) // window_seconds
    # The key is hashed: the cache (a table or Redis) then holds no list of who called.
    who = hashlib.sha256(key.encode()).hexdigest()[:32]
    key = f"ratelimit:{scope}:{who}:{window}"
    cache.add(key, 0, timeout=window_seconds + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=window_seconds + 60)
        count = 1
    if count > limit:
        raise Locked(MESSAGES.get(scope, ADDRESS_MESSAGE), code="rate_limited")


ADDRESS_MESSAGE = _("这个网络地址的请求太频繁了，请过一个小时再试，或请社区工作人员帮您登记。")
MESSAGES = {"sms_code_phone": _("这个手机号的验证码发得太多了，请过一个小时再试。")}
