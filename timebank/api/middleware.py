"""The contract's error body for what never reaches an API view: an unknown URL or a wrong method."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _

API_PREFIX = "/api/"


class ApiErrorBodyMiddleware:
    """Django answers an unknown URL (404) and ninja a wrong method (405) with HTML or plain text.
    Under /api/ every error is `{"error": {"code", "message", "fields"}}`."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code in (404, 405)
            and request.path.startswith(API_PREFIX)
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            from timebank.api.core import error_body

            if response.status_code == 404:
                body = error_body("not_found", _("找不到。"))
            else:
                body = error_body("method_not_allowed", _("这个地址不接受这种请求方法。"))
            replaced = JsonResponse(body, status=response.status_code, json_dumps_params={"ensure_ascii": False})
            if response.has_header("Allow"):
                replaced["Allow"] = response["Allow"]
            return replaced
        return response
