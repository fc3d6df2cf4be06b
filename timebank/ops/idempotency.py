"""The `Idempotency-Key` header: any API write may be retried safely after a lost answer or a crash.

The contract's `idempotency_key` body field covers the credit-moving writes. Creating an order or moving it
through its states has no key of its own, so a client that lost the answer (the server was killed, the
network dropped) cannot tell whether to send again. With the header, the write and its 2xx answer are stored
in one database transaction: a retry with the same key gets the stored answer and changes nothing; a retry
of a write that never committed runs it now. A 4xx does not consume the key; a 5xx rolls everything back.

An answer that carries a secret the database otherwise keeps only hashed (a Bearer token, a temporary
password, a member-card code) is never stored: a retry runs again and gets a fresh one. So is any answer
marked `Cache-Control: no-store`.

On PostgreSQL a request whose key is being claimed by a running request waits for it (the second INSERT of
the key blocks until the first commits), then answers its stored reply; never a 5xx.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

from timebank.ops.models import IdempotentRequest
from timebank.orgs.models import User

HEADER = "Idempotency-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/"
# Answers with a secret in them: logging in, password resets, member-card codes.
SECRET_ANSWERS = re.compile(
    r"^/api/v1/(auth/token|me/password|(members|staff)/\d+/password-reset|members/\d+/card-code(/[a-z-]+)?)/?$"
)


def keeps_secret(request: HttpRequest, response: HttpResponse | None = None) -> bool:
    """Whether an answer to this request must not be stored for replay."""
    if SECRET_ANSWERS.match(request.path):
        return True
    return response is not None and "no-store" in response.get("Cache-Control", "").lower()


def _error(status: int, code: str, message: str) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "fields": {HEADER: code} if status == 422 else {}}}
    return JsonResponse(body, status=status, json_dumps_params={"ensure_ascii": False})


def _caller(request: HttpRequest) -> User | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        from timebank.orgs.actions import user_for_token

        token = auth[7:].strip()
        user = user_for_token(token)
        # The API's Bearer auth reuses this lookup (same request, same token): one query instead of two.
        request.bearer_user = (token, user)  # type: ignore[attr-defined]
        return user
    user = getattr(request, "user", None)
    return user if isinstance(user, User) and user.is_authenticated else None


def request_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    for part in (request.method or "", request.path):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def replay(row: IdempotentRequest) -> HttpResponse:
    response = HttpResponse(row.body, status=row.status, content_type=row.content_type or "application/json")
    response["Idempotent-Replayed"] = "true"
    return response


class _Taken(Exception):
    """The key is claimed already (by a finished request, or one still running)."""


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if key is None or request.method not in WRITE_METHODS or not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        if not 1 <= len(key) <= 64 or not key.isprintable() or not key.strip():
            return _error(422, "invalid_idempotency_key", _("幂等键必须是 1 到 64 个可见字符。"))
        if keeps_secret(request):
            return self.get_response(request)  # nothing to replay: the retry gets a fresh secret
        user = _caller(request)
        if user is None:
            # Without a caller there is no scope to keep keys apart; the view answers 401 or acts as usual.
            return self.get_response(request)
        scope = f"user:{user.pk}"
        fp = request_fingerprint(request)
        # A claim that loses to a concurrent request with the same key waits for it, then replays its answer.
        # If that request was refused (4xx) its claim is gone, and this one runs: hence the loop. A new key
        # (the usual case) is claimed straight away; a taken one fails the claim, rolling back the empty
        # transaction, and is then read and answered.
        for attempt in range(3):
            if attempt:
                stored = IdempotentRequest.objects.filter(scope=scope, key=key).first()
                if stored is not None:
                    return self._answer(stored, fp)
            try:
                response = self._claim_and_run(request, scope, key, fp)
            except _Taken:
                continue
            return response
        return _error(409, "concurrent_update", _("另一个请求同时修改了这条记录，请刷新后重试。"))

    def _claim_and_run(self, request: HttpRequest, scope: str, key: str, fp: str) -> HttpResponse:
        with transaction.atomic():
            try:
                # No savepoint: when the key is taken, nothing else has run in this transaction yet.
                claim = IdempotentRequest.objects.create(
                    scope=scope, key=key, fingerprint=fp, method=request.method or "", path=request.path[:300]
                )
            except IntegrityError as exc:
                raise _Taken from exc
            response = self.get_response(request)
            if connection.needs_rollback:
                return response
            if 200 <= response.status_code < 300 and (response.streaming or keeps_secret(request, response)):
                # Nothing to store: the API never streams, and a secret is not kept for replay.
                claim.delete()
            elif 200 <= response.status_code < 300:
                claim.status = response.status_code
                claim.content_type = response.get("Content-Type", "")[:100]
                claim.body = response.content.decode()
                claim.save(update_fields=["status", "content_type", "body"])
            elif response.status_code >= 500:
                transaction.set_rollback(True)
            else:
                # A refused request does not consume its key; what it legitimately wrote (a wrong-code
                # count) stays.
                claim.delete()
            return response

    @staticmethod
    def _answer(stored: IdempotentRequest, fp: str) -> HttpResponse:
        if stored.fingerprint != fp:
            return _error(409, "idempotency_key_reused", _("这个幂等键已用于另一个不同的请求。"))
        return replay(stored)
