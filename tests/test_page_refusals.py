"""A refusal that a page view does not catch itself still reaches the person as a page with its reason."""

from __future__ import annotations

from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from tests.conftest import World
from timebank.lib.errors import Conflict, Invalid
from timebank.web.views.common import page


@page("public")
def _refuses_conflict(request: HttpRequest) -> HttpResponse:
    raise Conflict("这张兑换券已经用过了。", code="voucher_used")


@page("public")
def _refuses_invalid(request: HttpRequest) -> HttpResponse:
    raise Invalid("数量不合理。", fields={"quantity": "out_of_range"})


def _request(referer: str = "") -> HttpRequest:
    request = RequestFactory().post("/somewhere/", HTTP_REFERER=referer) if referer else RequestFactory().post("/x/")
    SessionMiddleware(lambda r: HttpResponse()).process_request(request)
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    return request


def test_uncaught_conflict_is_a_409_page_with_the_reason(world: World) -> None:
    response = _refuses_conflict(_request("http://testserver/outlet/"))
    assert response.status_code == 409
    body = response.content.decode()
    assert "这张兑换券已经用过了。" in body
    assert 'href="http://testserver/outlet/"' in body


def test_uncaught_invalid_is_a_422_page_and_an_outside_referer_is_not_offered(world: World) -> None:
    response = _refuses_invalid(_request("https://evil.example/phish"))
    assert response.status_code == 422
    body = response.content.decode()
    assert "数量不合理。" in body
    assert "evil.example" not in body
