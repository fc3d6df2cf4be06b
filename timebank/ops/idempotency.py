"""One idempotency service: every way a write is made safe to repeat goes through here.

A client (a retrying API caller, a browser whose user clicked twice) names a write with a key, unique per
caller. The first request under the key does the write; a repeat with the same request answers what the
first one answered and changes nothing; the key reused for another request is 409 `idempotency_key_reused`;
a request refused with a 4xx does not consume its key. On PostgreSQL two requests under one key at once
do the write once: the second waits on the first's claim (the unique index), then answers as a repeat.

The rules live here once (`check_key`, `scope_of`, `fingerprint`, `key_reused`), and two entry points apply
them, one per place a key is kept:

- `once(scope, key, fp)`: a claim row in `IdempotentRequest`, written in the same database transaction as
  the write and kept 30 days (`purge_idempotency`). It keeps what the write answered: the HTTP answer for
  the API (the `Idempotency-Key` header, or the body's `idempotency_key`, see `IdempotencyMiddleware`), or
  what a page's form made (`form_once`, the pages' hidden `idempotency_key`).
- `write_once(records, actor, key, fp, body)`: for the actions whose own record carries the key (a ledger
  transaction, where the key is part of the hash-chained row and is never forgotten; an approval; a fund
  entry). The record's unique (scope, key) is the claim.

An API write with a body key goes through both: the middleware keeps the answer, the ledger its transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.contrib import messages
from django.db import IntegrityError, OperationalError, connection, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from timebank.lib.errors import ApiError, Conflict, Invalid
from timebank.ops.models import IdempotentRequest
from timebank.orgs.models import User
from timebank.web.views.common import add_form_error

if TYPE_CHECKING:
    from django.utils.functional import _StrPromise as Words  # a lazily translated message
else:
    Words = str

KEY_FIELD = "idempotency_key"
# Fields of a page's POST that are not what the person filled in: the key itself and Django's CSRF token.
NOT_SENT_BY_THE_FORM = frozenset({KEY_FIELD, "csrfmiddlewaretoken"})
KEY_MAX = 64


# ---- the rules ---------------------------------------------------------------------------------------------


def check_key(key: object) -> str | None:
    """A body's or a form's key: None, or a non-blank string of at most 64 characters (else 422)."""
    if key is None:
        return None
    if not isinstance(key, str) or not key.strip():
        raise Invalid(gettext_lazy("幂等键必须是非空字符串。"), fields={KEY_FIELD: "invalid"})
    if len(key) > KEY_MAX:
        raise Invalid(gettext_lazy("幂等键最长 64 个字符。"), fields={KEY_FIELD: "too_long"})
    return key


def scope_of(actor: User | None) -> str:
    """Keys are unique per caller: "user:<id>", or "system" for the jobs."""
    return f"user:{actor.pk}" if actor is not None and actor.pk else "system"


def fingerprint(action: str, params: dict[str, Any]) -> str:
    """What a repeat must match: the action and its parameters."""
    body = json.dumps({"action": action, **params}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


class KeyReused(Conflict):
    """The key was used for another request."""


class KeyBusy(Conflict):
    """The key's claim kept changing hands (claimed, then refused) while this request waited."""


def key_reused() -> KeyReused:
    return KeyReused(gettext_lazy("这个幂等键已用于另一个不同的请求。"), code="idempotency_key_reused")


def _busy() -> KeyBusy:
    return KeyBusy(gettext_lazy("另一个请求同时修改了这条记录，请刷新后重试。"), code="concurrent_update")


# ---- claims kept in IdempotentRequest ----------------------------------------------------------------------


@dataclass
class Claim:
    """Inside `once`: either `replay` (the first request's stored row: answer it and do nothing) or the claim
    this request holds, to `keep` what it made, or `forget` when it made nothing worth answering again."""

    replay: IdempotentRequest | None = None
    row: IdempotentRequest | None = None

    def keep(self, body: str, *, status: int = 0, content_type: str = "") -> None:
        """What a repeat answers: an HTTP answer (`status`), or what a page's form made (status 0)."""
        if self.row is not None:
            self.row.status = status
            self.row.content_type = content_type[:100]
            self.row.body = body
            self.row.save(update_fields=["status", "content_type", "body"])

    def forget(self) -> None:
        """Give the key back (a refused request, an answer with a secret): a repeat runs again."""
        if self.row is not None:
            self.row.delete()
            self.row = None


class _Taken(Exception):
    """The key is claimed already (by a finished request, or one still running)."""


@contextmanager
def once(scope: str, key: str | None, fp: str, *, method: str = "", path: str = "") -> Iterator[Claim]:
    """Do the block once per (scope, key): `with once(...) as claim: if claim.replay: <answer it>; ...`.

    The claim and the block's writes commit together (one atomic block); an exception out of the block rolls
    both back, so a refused request does not consume its key. Without a key the block just runs. A key used
    for another request raises `KeyReused` (409). A claim that loses to a concurrent request with the same key
    waits for it (PostgreSQL's unique index), then replays it; if that one was refused its claim is gone and
    this one runs: hence the loop."""
    if not key:
        yield Claim()
        return
    for attempt in range(3):
        if attempt:
            stored = IdempotentRequest.objects.filter(scope=scope, key=key).first()
            if stored is not None:
                if stored.fingerprint != fp:
                    raise key_reused()
                yield Claim(replay=stored)
                return
        try:
            with transaction.atomic():
                try:
                    # A new key (the usual case) is claimed straight away; a taken one fails the claim, rolling
                    # back this (still empty) atomic block, and is then read and answered.
                    row = IdempotentRequest.objects.create(
                        scope=scope, key=key, fingerprint=fp, method=method[:10], path=path[:300]
                    )
                except IntegrityError as exc:
                    raise _Taken from exc
                yield Claim(row=row)
            return
        except _Taken:
            continue
    raise _busy()


@contextmanager
def form_once(request: HttpRequest, key: object, action: str) -> Iterator[Claim]:
    """A page's form, named by the hidden `idempotency_key` it got when rendered: a double submit (a double
    click, a browser's resend) does `action` once. The block keeps what it made (`claim.keep(str(pk))`); the
    repeat gets `claim.replay.body` to show the same result. A refusal raised out of the block gives the key
    back, so the corrected form can be sent again. A form without a key just runs.

    The key is bound to what the form sent (its path with the query, its fields, the files' names and sizes):
    the same key with anything else (another object's form, a page restored by Back and changed) is refused as
    a reused key (409) instead of answering a "done" that wrote nothing."""
    user = getattr(request, "user", None)
    sent: dict[str, Any] = {
        "path": request.get_full_path(),
        "fields": {k: request.POST.getlist(k) for k in sorted(request.POST) if k not in NOT_SENT_BY_THE_FORM},
        "files": {k: [(f.name, f.size) for f in request.FILES.getlist(k)] for k in sorted(request.FILES)},
    }
    with once(
        scope_of(user if isinstance(user, User) else None),
        key if isinstance(key, str) and key else None,
        fingerprint(action, sent),
        method=request.method or "",
        path=request.path,
    ) as claim:
        yield claim


def submit_once(
    request: HttpRequest,
    form: Any,
    action: str,
    act: Callable[[dict[str, Any]], object],
    *,
    done: Callable[[str], HttpResponse],
    again: Callable[[int], HttpResponse],
    success: str | Words | None = None,
    aliases: dict[str, str] | None = None,
    refusal_status: bool = False,
    refused: Callable[[Any, ApiError], int] | None = None,
) -> HttpResponse:
    """A page's keyed form, written once: validate the form; run `act(cleaned_data)` under its hidden key
    (`form_once`), so a double submit acts once and goes where the first one went; an action's refusal is put
    beside the field it names (`add_form_error`, its field names mapped by `aliases`), the page is a 422 (or the
    refusal's own status, 409 or 403, with `refusal_status`), and the claim is rolled back, so the corrected form can be sent again. A page that answers otherwise passes
    `refused(form, exc)`, which puts the error on the form and says the status (or re-raises an access refusal
    so it stays a 403/404 page). A form without a key field just runs the action.

    `act` returns what it made (a model, whose pk is kept, or a string); `done(kept)` answers the success
    (usually a redirect), after the `success` message; a replay gets the first submit's `kept`.
    `again(status)` shows the page again with the form's errors (422 for a form that does not validate)."""
    status = 422
    kept = ""
    if form.is_valid():
        data = form.cleaned_data
        try:
            with form_once(request, data.get(KEY_FIELD), action) as claim:
                if claim.replay is None:
                    made = act(data)
                    kept = str(getattr(made, "pk", made) if made is not None else "")
                    claim.keep(kept)
                else:
                    kept = claim.replay.body
        except ApiError as exc:
            if refused is not None:
                status = refused(form, exc)
            else:
                add_form_error(form, exc, aliases)
                status = exc.status if refusal_status else 422
    if form.errors:
        return again(status)
    if success is not None:
        messages.success(request, success)
    return done(kept)


# ---- keys kept on the action's own record ------------------------------------------------------------------

R = TypeVar("R")


def recorded(records: QuerySet[Any], actor: User | None, key: str | None, fp: str) -> Any:
    """The record this caller already made with this key (its `idem_scope`, `idempotency_key` and
    `fingerprint` columns), or None. The key used for another request is 409."""
    if not key:
        return None
    existing = records.filter(idem_scope=scope_of(actor), idempotency_key=key).first()
    if existing is not None and existing.fingerprint != fp:
        raise key_reused()
    return existing


def write_once(
    records: QuerySet[Any], actor: User | None, key: str | None, fp: str, body: Callable[[], R]
) -> tuple[R, bool]:
    """Run `body` atomically once per (caller, key), where `body` writes a record of `records` that carries
    the key. Returns (record, replayed). A refused request raises before anything is written, so it does not
    consume its key; a deadlock (should not happen: accounts are locked in pk order) is retried when this is
    the outermost transaction, and never becomes a 5xx otherwise."""
    outer = connection.in_atomic_block
    attempts = 1 if outer else 4
    for attempt in range(attempts):
        if (existing := recorded(records, actor, key, fp)) is not None:
            return existing, True
        try:
            with transaction.atomic():
                return body(), False
        except IntegrityError:
            # A concurrent request with the same key committed first: answer as a replay.
            if (existing := recorded(records, actor, key, fp)) is not None:
                return existing, True
            # Another writer won a race on a unique row (e.g. a second reversal): a conflict, not a crash. Inside
            # a caller's transaction too (an Idempotency-Key header's, an action's): the body ran in a savepoint,
            # so that transaction is still usable and the caller answers the 409.
            raise _busy() from None
        except OperationalError as exc:
            if outer or attempt == attempts - 1 or not _retryable(exc):
                raise
    raise AssertionError("unreachable")


def _retryable(exc: OperationalError) -> bool:
    text = str(exc).lower()
    return "deadlock" in text or "could not serialize" in text or "database is locked" in text


# ---- the API: the Idempotency-Key header and the body's idempotency_key --------------------------------------

HEADER = "Idempotency-Key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIX = "/api/"
# Answers with a secret in them: logging in, password resets, member-card codes.
SECRET_ANSWERS = re.compile(
    r"^/api/v1/(auth/token|me/password|(members|staff)/\d+/password-reset|members/\d+/card-code(/[a-z-]+)?)/?$"
)

# Writes whose action keeps the body's key on its own record (write_once) and must reach the network after its
# commit, not inside this middleware's transaction: a transfer to a peer node is delivered once its debit committed.
KEEPS_OWN_KEY = re.compile(r"^/api/v1/federation/transfers/?$")


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


def body_key(request: HttpRequest) -> str | None:
    """The JSON body's `idempotency_key`, when it is a valid key (an invalid one is the endpoint's 422)."""
    if not (request.content_type or "").endswith("json"):
        return None
    try:
        data = json.loads(request.body or b"null")
    except ValueError:
        return None
    key = data.get(KEY_FIELD) if isinstance(data, dict) else None
    return key if isinstance(key, str) and 1 <= len(key) <= KEY_MAX and key.isprintable() and key.strip() else None


def replay(row: IdempotentRequest) -> HttpResponse:
    response = HttpResponse(row.body, status=row.status, content_type=row.content_type or "application/json")
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    """An API write named by a key (the `Idempotency-Key` header, else the JSON body's `idempotency_key`)
    runs in `once`: the write and its 2xx answer are stored in one database transaction, so a retry after a
    lost answer or a crash either gets the stored answer or runs the write now. A 4xx does not consume the
    key; a 5xx rolls everything back. An answer that carries a secret the database otherwise keeps only
    hashed (a Bearer token, a temporary password, a member-card code) is never stored: a retry runs again and
    gets a fresh one. So is any answer marked `Cache-Control: no-store`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method not in WRITE_METHODS or not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        key = request.headers.get(HEADER)
        if key is not None and (not 1 <= len(key) <= KEY_MAX or not key.isprintable() or not key.strip()):
            return _error(422, "invalid_idempotency_key", _("幂等键必须是 1 到 64 个可见字符。"))
        from_body = key is None
        if from_body and KEEPS_OWN_KEY.match(request.path):
            return self.get_response(request)
        if key is None and (key := body_key(request)) is None:
            return self.get_response(request)
        if keeps_secret(request):
            return self.get_response(request)  # nothing to replay: the retry gets a fresh secret
        user = _caller(request)
        if user is None:
            # Without a caller there is no scope to keep keys apart; the view answers 401 or acts as usual.
            return self.get_response(request)
        try:
            with once(
                scope_of(user), key, request_fingerprint(request), method=request.method or "", path=request.path
            ) as claim:
                if claim.replay is not None:
                    return replay(claim.replay)
                response = self.get_response(request)
                if connection.needs_rollback:
                    return response
                if 200 <= response.status_code < 300 and not response.streaming:
                    if keeps_secret(request, response):
                        claim.forget()  # a secret is not kept for replay
                    else:
                        claim.keep(
                            response.content.decode(),
                            status=response.status_code,
                            content_type=response.get("Content-Type", ""),
                        )
                elif response.status_code >= 500:
                    transaction.set_rollback(True)
                else:
                    # A refused request does not consume its key; what it legitimately wrote (a wrong-code
                    # count) stays. (The API never streams.)
                    claim.forget()
                return response
        except KeyReused as exc:
            if from_body and (invalid := self._invalid(request)) is not None:
                return invalid
            return _error(409, exc.code, str(exc.message))
        except KeyBusy as exc:
            return _error(409, exc.code, str(exc.message))

    def _invalid(self, request: HttpRequest) -> HttpResponse | None:
        """The contract checks validation (422) before conflicts (409), and the endpoints check a body's key
        after its schema: a reused body key on an invalid body answers the endpoint's 422. Found by running
        the request in a transaction that is always rolled back (only on this rare path)."""
        with transaction.atomic():
            response = self.get_response(request)
            transaction.set_rollback(True)
        return response if response.status_code == 422 else None
