"""The kit of the one django-ninja API under /api/v1/: the contract's error body, the JSON in and out, and the
safety net for races. It imports no app: the project (timebank/api_root.py) gives it its auth and mounts the
apps' routers."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, OperationalError, connection, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import JSONRenderer
from ninja.responses import NinjaJSONEncoder

from timebank.lib.errors import ApiError
from timebank.lib.races import is_lost_race

log = logging.getLogger(__name__)


class LocalTimeEncoder(NinjaJSONEncoder):
    """Times go out with the +08:00 offset people read, not UTC."""

    def default(self, o: Any) -> Any:
        if isinstance(o, dt.datetime) and timezone.is_aware(o):
            o = timezone.localtime(o)
        return super().default(o)


class Renderer(JSONRenderer):
    encoder_class = LocalTimeEncoder
    json_dumps_params = {"ensure_ascii": False}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class ObjectParser(Parser):
    """A request body is one JSON object. Anything else (an array, null, NaN) is malformed (400),
    not an empty object that an all-optional PATCH would accept."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        if not request.body.strip():
            # No body at all: the operations whose body is optional (order actions) take their defaults,
            # the others answer 422 naming the missing fields.
            return {}
        data = json.loads(request.body, parse_constant=_no_constant)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        return data


def error_body(code: str, message: Any, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


class HealthOut(Schema):
    status: str


def health(request: HttpRequest) -> dict[str, str]:
    """For load balancers and the HTTP benchmark: no login, no database, the smallest answer the stack gives."""
    return {"status": "ok"}


class TimebankApi(NinjaAPI):
    """The API under /api/v1/ with the contract's error answers and /health. `auth` says who calls (the
    project passes timebank.orgs.auth's bearer token and session); the project mounts each app's router."""

    def __init__(self, *, auth: Sequence[Any]) -> None:
        super().__init__(
            renderer=Renderer(),
            parser=ObjectParser(),
            title="时间银行 Time Bank API",
            version="1",
            description="互助养老时间银行的公开接口 / The public API of the mutual-aid elderly-care time bank.",
            auth=list(auth),
            urls_namespace="api",
            docs_url="/docs",
            openapi_url="/openapi.json",
        )
        self.exception_handler(ApiError)(self._api_error)
        self.exception_handler(ValidationError)(self._validation_error)
        self.exception_handler(AuthenticationError)(self._auth_error)
        self.exception_handler(HttpError)(self._http_error)
        self.exception_handler(Http404)(self._not_found)
        self.exception_handler(IntegrityError)(self._integrity_error)
        self.exception_handler(OperationalError)(self._operational_error)
        self.get("/health", auth=None, response=HealthOut, tags=["health"])(health)

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None) -> Any:
        # Error answers and links between operations, which ninja does not write itself.
        # Schema names are the classes' own: each is unique (tests/test_fuzz_api.py checks it).
        from timebank.api.openapi import complete

        return complete(super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params))

    def _api_error(self, request: HttpRequest, exc: ApiError) -> HttpResponse:
        return self.create_response(request, error_body(exc.code, exc.message, exc.fields), status=exc.status)

    def _validation_error(self, request: HttpRequest, exc: ValidationError) -> HttpResponse:
        fields: dict[str, Any] = {}
        for err in exc.errors:
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "payload", "query", "path")]
            kind = err.get("type", "invalid")
            # A value outside a fixed set is `literal_error` whether the schema lists the set (Literal) or takes
            # it from the model's choices (an enum, which pydantic calls `enum`).
            fields[".".join(loc) or "body"] = "literal_error" if kind == "enum" else kind
        return self.create_response(
            request, error_body("validation_error", _("输入有误，请检查标出的字段。"), fields), status=422
        )

    def _auth_error(self, request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return self.create_response(request, error_body("not_authenticated", _("请先登录。")), status=401)

    def _http_error(self, request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400:
            return self.create_response(request, error_body("malformed_request", _("请求格式无法解析。")), status=400)
        return self.create_response(request, error_body("http_error", str(exc)), status=exc.status_code)

    def _not_found(self, request: HttpRequest, exc: Http404) -> HttpResponse:
        return self.create_response(request, error_body("not_found", _("找不到。")), status=404)

    # A safety net only: each action turns its own lost races into its own 409 (timebank.lib.races). What still
    # escapes is a duplicate or a lost race all the same, never the server's fault: 409, logged to be fixed where
    # it happened. The action's transaction was rolled back by its atomic block on the way out.
    def _integrity_error(self, request: HttpRequest, exc: IntegrityError) -> HttpResponse:
        log.warning("IntegrityError escaped an action on %s %s: %s", request.method, request.path, exc)
        if connection.in_atomic_block:
            transaction.set_rollback(True)  # an Idempotency-Key's transaction: nothing of this request is kept
        return self.create_response(
            request, error_body("conflict", _("这条记录与已有的记录冲突，请刷新后重试。")), status=409
        )

    def _operational_error(self, request: HttpRequest, exc: OperationalError) -> HttpResponse:
        if not is_lost_race(exc):
            raise exc  # the database is down or broken: a real 5xx
        log.warning("A deadlock or serialization failure escaped on %s %s: %s", request.method, request.path, exc)
        if connection.in_atomic_block:
            transaction.set_rollback(True)
        return self.create_response(
            request,
            error_body("concurrent_update", _("另一个请求同时修改了这条记录，请刷新后重试。")),
            status=409,
        )


def axes_lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """django-axes replaces the answer to a locked-out login. Under /api/ the view has already
    answered with the contract's error body (429 locked_out), and the web login page shows its own
    message (it sets `request.web_lockout_shown`): keep those."""
    from axes.helpers import get_lockout_message
    from django.conf import settings

    handled = request.path.startswith("/api/") or getattr(request, "web_lockout_shown", False)
    if isinstance(original_response, HttpResponse) and handled:
        return original_response
    return HttpResponse(get_lockout_message(), status=getattr(settings, "AXES_HTTP_RESPONSE_CODE", 429))
