"""Logins and the web: Argon2, login throttling, CSRF on every form, secure cookies, a strict Content Security
Policy, `check --deploy` clean in production settings, and API tokens that can be revoked and expire."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.test import Client
from django.utils import timezone

import timebank.settings as project_settings
from tests.conftest import Api, World, web_client
from timebank.orgs.actions import do_create_staff, do_issue_token
from timebank.orgs.models import ApiToken

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIRS = [p for p in (ROOT / "timebank").rglob("templates") if p.is_dir()]


def production_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEBUG", "TIMEBANK_", "DATABASE_URL"))}
    env.update(
        TIMEBANK_PRODUCTION="1",
        SECRET_KEY="a-production-secret-key-for-the-test-" + "x" * 40,
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        FIELD_HASH_KEY="h" * 40,
        CHAIN_KEY="c" * 40,
        CHECKPOINT_SIGNING_KEY="A" * 43 + "=",
        ALLOWED_HOSTS="timebank.example.org",
        DJANGO_SETTINGS_MODULE="timebank.settings",
    )
    return env


def run_production(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=production_env(), capture_output=True, text=True, timeout=120
    )


# Passwords -----------------------------------------------------------------------------------------------------


def test_passwords_are_hashed_with_argon2(world: World, settings: Any) -> None:
    # The suite uses a fast hasher for speed; this test puts the real setting back.
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS
    assert settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    user = do_create_staff(
        world.users["superuser"], org=world.community, username="argon", password="pass-word-9", name="A", role="staff"
    )
    user.refresh_from_db()
    assert user.password.startswith("argon2$")
    assert user.check_password("pass-word-9")


# Throttling ----------------------------------------------------------------------------------------------------


def test_ten_failed_logins_lock_the_username(world: World) -> None:
    api = Api(None)
    for _ in range(10):
        resp = api.post("/api/v1/auth/token", {"username": "staff", "password": "wrong-password"})
        assert resp.status_code in (401, 403, 429)
    resp = api.post("/api/v1/auth/token", {"username": "staff", "password": "pass-word-1"})
    assert resp.status_code in (403, 429), resp.content
    assert resp.json()["error"]["code"]
    # Another username is not locked.
    assert api.post("/api/v1/auth/token", {"username": "volunteer", "password": "pass-word-1"}).status_code == 200


# CSRF ----------------------------------------------------------------------------------------------------------

POST_FORM = re.compile(r"<form\b[^>]*\bmethod=[\"']?post[\"']?[^>]*>(.*?)</form>", re.I | re.S)


def test_every_post_form_carries_the_csrf_token() -> None:
    missing = []
    forms = 0
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            for match in POST_FORM.finditer(path.read_text(encoding="utf-8")):
                forms += 1
                if "{% csrf_token %}" not in match.group(1):
                    missing.append(f"{path.relative_to(ROOT)}: {match.group(0)[:80]!r}")
    assert forms > 10
    assert not missing, "POST forms without {% csrf_token %}:\n" + "\n".join(missing)


def test_a_post_without_the_csrf_token_is_refused(world: World) -> None:
    client = Client(enforce_csrf_checks=True)
    resp = client.post("/login/", {"username": "staff", "password": "pass-word-1"})
    assert resp.status_code == 403
    # Logged in by session, a page's form is refused without the token too.
    client.force_login(world.users["staff"], backend="django.contrib.auth.backends.ModelBackend")
    resp = client.post("/i18n/setlang/", {"language": "en"})
    assert resp.status_code == 403


def test_session_api_calls_need_the_csrf_token(world: World) -> None:
    """A browser session may call the API, but then a cross-site page could too: unsafe methods need the token."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["staff"], backend="django.contrib.auth.backends.ModelBackend")
    resp = client.post("/api/v1/orgs", {"name": "x", "kind": "outlet"}, content_type="application/json")
    assert resp.status_code in (401, 403), resp.content


# Content Security Policy ---------------------------------------------------------------------------------------


def _policy(resp: Any) -> dict[str, list[str]]:
    header = resp.get("Content-Security-Policy", "")
    assert header, "no Content-Security-Policy header"
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0]] = words[1:]
    return directives


@pytest.mark.parametrize("url", ["/login/", "/", "/api/v1/docs"])
def test_pages_carry_a_strict_content_security_policy(world: World, url: str) -> None:
    resp = web_client(world.users["staff"]).get(url, follow=True)
    assert resp.status_code == 200
    policy = _policy(resp)
    assert policy["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src"):
        assert policy[directive] == ["'self'"], policy
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    text = resp.content.decode()
    assert "unsafe-inline" not in resp["Content-Security-Policy"]
    assert "cdn." not in text, "the page loads something from a CDN, which the policy blocks"
    # No inline script may run under this policy: every <script> has a src or is data (type=application/json).
    for tag in re.findall(r"<script\b[^>]*>", text, re.I):
        assert "src=" in tag or "application/json" in tag, tag


def test_production_settings_pass_check_deploy_and_secure_cookies() -> None:
    check = run_production("manage.py", "check", "--deploy", "--fail-level", "WARNING")
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout, check.stdout
    shown = run_production(
        "-c",
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DEBUG, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, "
        "s.SECURE_HSTS_SECONDS > 0, s.SECURE_SSL_REDIRECT, 'csp.middleware.CSPMiddleware' in s.MIDDLEWARE)",
    )
    assert shown.stdout.split() == ["False", "True", "True", "True", "True", "True", "True"], shown.stderr


# API tokens ----------------------------------------------------------------------------------------------------


def test_a_revoked_token_stops_working(world: World) -> None:
    key = do_issue_token(world.users["staff"])
    headers = {"Authorization": f"Bearer {key}"}
    client = Client()
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    resp = client.post("/api/v1/auth/revoke", {"token": key}, content_type="application/json", headers=headers)
    assert resp.status_code == 200 and resp.json() == {"revoked": True}
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    # Nobody revokes another caller's token.
    other = do_issue_token(world.users["volunteer"])
    mine = {"Authorization": f"Bearer {do_issue_token(world.users['staff'])}"}
    resp = client.post("/api/v1/auth/revoke", {"token": other}, content_type="application/json", headers=mine)
    assert resp.json() == {"revoked": False}
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {other}"}).status_code == 200


def test_tokens_expire(world: World) -> None:
    key = do_issue_token(world.users["staff"])
    headers = {"Authorization": f"Bearer {key}"}
    token = ApiToken.objects.get(user=world.users["staff"], revoked_at__isnull=True)
    assert token.expires_at <= timezone.now() + dt.timedelta(days=django_settings.API_TOKEN_DAYS, minutes=1)
    assert Client().get("/api/v1/me", headers=headers).status_code == 200
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert Client().get("/api/v1/me", headers=headers).status_code == 401


def test_tokens_are_stored_hashed(world: World) -> None:
    key = do_issue_token(world.users["staff"])
    stored = [str(v) for row in ApiToken.objects.values_list() for v in row]
    assert not any(key in value for value in stored)
