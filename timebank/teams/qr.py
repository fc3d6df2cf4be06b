"""The activity's rotating check-in code.

The code is an HMAC over the activity id and the current time window (60 s). The venue's screen shows a
fresh code every window; the server accepts the current and the previous window only, so a photo sent to
a friend stops working within two minutes, and a code of one activity never checks in to another.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from django.conf import settings

from timebank.teams.models import Activity

WINDOW_SECONDS = 60
TOKEN_LENGTH = 20


def _window(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // WINDOW_SECONDS)


def token_for(activity: Activity, window: int) -> str:
    key = f"{settings.SECRET_KEY}:teams.activity-qr:{activity.qr_salt}".encode()
    message = f"{activity.pk}:{window}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:TOKEN_LENGTH]


def current_token(activity: Activity, at: float | None = None) -> str:
    return token_for(activity, _window(at))


def token_is_valid(activity: Activity, token: str, at: float | None = None) -> bool:
    """Current or previous window; compared in constant time."""
    if not isinstance(token, str) or len(token) != TOKEN_LENGTH:
        return False
    now = _window(at)
    return any(hmac.compare_digest(token_for(activity, w), token) for w in (now, now - 1))


def seconds_left(at: float | None = None) -> int:
    now = time.time() if at is None else at
    return WINDOW_SECONDS - int(now % WINDOW_SECONDS)
