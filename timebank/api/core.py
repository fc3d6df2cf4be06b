"""The one django-ninja API under /api/v1/: auth, the contract's error body, and the routers."""

from __future__ import annotations

import datetime as dt
import json
import logging
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
from ninja.security import HttpBearer
from ninja.security import SessionAuth as NinjaSessionAuth

from timebank.lib.errors import ApiError, Forbidden
from timebank.orgs.actions import user_for_token
from timebank.orgs.models import User

log = logging.getLogger(__name__)

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


class TimebankApi(NinjaAPI):
    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None) -> Any:
        # Error answers and links between operations, which ninja does not write itself.
        from timebank.api.openapi import complete, use_unique_names

        use_unique_names(self)
        return complete(super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params))


api = TimebankApi(
    renderer=Renderer(),
    parser=ObjectParser(),
    title="时间银行 Time Bank API",
    version="1",
    description="互助养老时间银行的公开接口 / The public API of the mutual-aid elderly-care time bank.",
    auth=[BearerToken(), SessionAuth()],
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def error_body(code: str, message: Any, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": str(message), "fields": fields or {}}}


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return api.create_response(request, error_body(exc.code, exc.message, exc.fields), status=exc.status)


@api.exception_handler(ValidationError)
def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields: dict[str, Any] = {}
    for err in exc.errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "payload", "query", "path")]
        fields[".".join(loc) or "body"] = err.get("type", "invalid")
    return api.create_response(
        request, error_body("validation_error", _("输入有误，请检查标出的字段。"), fields), status=422
    )


@api.exception_handler(AuthenticationError)
def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(request, error_body("not_authenticated", _("请先登录。")), status=401)


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        return api.create_response(request, error_body("malformed_request", _("请求格式无法解析。")), status=400)
    return api.create_response(request, error_body("http_error", str(exc)), status=exc.status_code)


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, error_body("not_found", _("找不到。")), status=404)


# A safety net only: each action turns its own lost races into its own 409 (timebank.lib.races). What still
# escapes is a duplicate or a lost race all the same, never the server's fault: 409, logged to be fixed where
# it happened. The action's transaction was rolled back by its atomic block on the way out.
@api.exception_handler(IntegrityError)
def _integrity_error(request: HttpRequest, exc: IntegrityError) -> HttpResponse:
    log.warning("IntegrityError escaped an action on %s %s: %s", request.method, request.path, exc)
    if connection.in_atomic_block:
        transaction.set_rollback(True)  # an Idempotency-Key's transaction: nothing of this request is kept
    return api.create_response(
        request, error_body("conflict", _("这条记录与已有的记录冲突，请刷新后重试。")), status=409
    )


@api.exception_handler(OperationalError)
def _operational_error(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    from timebank.lib.races import is_lost_race

    if not is_lost_race(exc):
        raise exc  # the database is down or broken: a real 5xx
    log.warning("A deadlock or serialization failure escaped on %s %s: %s", request.method, request.path, exc)
    if connection.in_atomic_block:
        transaction.set_rollback(True)
    return api.create_response(
        request,
        error_body("concurrent_update", _("另一个请求同时修改了这条记录，请刷新后重试。")),
        status=409,
    )


class HealthOut(Schema):
    status: str


@api.get("/health", auth=None, response=HealthOut, tags=["health"])
def health(request: HttpRequest) -> dict[str, str]:
    """For load balancers and the HTTP benchmark: no login, no database, the smallest answer the stack gives."""
    return {"status": "ok"}


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


def _mount() -> None:
    from timebank.approvals.api import router as approvals_router
    from timebank.catalogue.api import router as catalogue_router
    from timebank.evaluation.api import router as evaluation_router
    from timebank.exports.api import router as exports_router
    from timebank.funds.api import router as funds_router
    from timebank.goods.api import router as goods_router
    from timebank.hotline.api import router as hotline_router
    from timebank.ledger.api import router as ledger_router
    from timebank.members.api import router as members_router
    from timebank.needs.api import router as needs_router
    from timebank.notices.api import router as notices_router
    from timebank.notify.api import router as notify_router
    from timebank.orders.api import router as orders_router
    from timebank.orgs.api import router as orgs_router
    from timebank.reports.api import router as reports_router
    from timebank.safety.api import router as safety_router
    from timebank.teams.api import router as teams_router

    api.add_router("/", orgs_router)
    api.add_router("/", members_router)
    api.add_router("/", ledger_router)
    api.add_router("/", catalogue_router)
    api.add_router("/", orders_router)
    api.add_router("/", needs_router)
    api.add_router("/", hotline_router)
    api.add_router("/", notify_router)
    api.add_router("/", notices_router)
    api.add_router("/", goods_router)
    api.add_router("/", funds_router)
    api.add_router("/", safety_router)
    api.add_router("/", teams_router)
    api.add_router("/", reports_router)
    api.add_router("/", evaluation_router)
    api.add_router("/", exports_router)
    api.add_router("/", approvals_router)


_mount()
