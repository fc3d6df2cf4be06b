"""Issue 14 (elder first): the words, numbers and forms an old person, a relative or an outlet trips over."""

from __future__ import annotations

from typing import Any

from django.test import Client

from tests.conftest import World


def _join_form(world: World, **changes: Any) -> dict[str, Any]:
    return {
        "home_org": world.community.pk,
        "name": "孙桂兰",
        "phone": "13900001111",
        "gender": "female",
        "birth_date": "1958-04-02",
        "roles": ["volunteer"],
        "username": "sunguilan",
        "password1": "long-enough-1",
        "password2": "long-enough-1",
        **changes,
    }


# A too-short password is refused in Chinese -------------------------------------------------------------


def test_a_too_short_password_is_refused_in_chinese(world: World) -> None:
    page = Client().post("/join/", _join_form(world, password1="short", password2="short"))
    assert page.status_code == 422
    html = page.content.decode()
    assert "密码太短了，至少要 8 位。" in html and "too short" not in html
    body = {
        "name": "孙桂兰",
        "home_org_id": world.community.pk,
        "phone": "13900001111",
        "login": {"username": "sunguilan", "password": "short"},
    }
    answer = world.api("anonymous").post("/api/v1/register", body)
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["message"] == "密码太短了，至少要 8 位。" and error["fields"] == {"password": "weak"}
