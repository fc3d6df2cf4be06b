"""Issue 14 (elder first): the words, numbers and forms an old person, a relative or an outlet trips over."""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path
from django.utils import timezone, translation

from tests.conftest import World, web_client
from tests.test_sqlite_server import ROOT, free_port
from timebank.catalogue.actions import do_create_service_item
from timebank.goods import actions as goods_actions
from timebank.ledger.actions import do_adjustment
from timebank.lib.phone import PHONE_RE, clean_phone
from timebank.members.models import Member
from timebank.web.templatetags.web import when


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


# Phone numbers: mainland mobile and landline formats, checked in one place -----------------------------


def test_phone_formats_are_checked_in_one_place() -> None:
    for good, stored in [
        ("13900001111", "13900001111"),
        ("139 0000 1111", "13900001111"),
        ("+86 139 0000 1111", "13900001111"),
        ("0632-1234567", "0632-1234567"),
        ("010-12345678", "010-12345678"),
        ("06321234567", "06321234567"),
        ("0632-1234567-801", "0632-1234567-801"),
        ("", ""),
    ]:
        assert clean_phone(good) == stored, good
    for bad in ["12345", "1390000111", "139000011112", "12900001111", "call me", "+86 0632-1234567", "632-1234567"]:
        assert clean_phone(bad) is None, bad
        assert not PHONE_RE.match(bad), bad


def test_a_phone_12345_is_refused_by_the_api_and_the_join_page(world: World) -> None:
    body = {
        "name": "孙桂兰",
        "home_org_id": world.community.pk,
        "phone": "12345",
        "login": {"username": "sunguilan", "password": "long-enough-1"},
    }
    answer = world.api("anonymous").post("/api/v1/register", body)
    assert answer.status_code == 422 and answer.json()["error"]["fields"] == {"phone": "invalid"}
    staff = world.api("staff")
    member = world.members["volunteer"]
    assert staff.patch(f"/api/v1/members/{member.pk}", {"phone": "12345"}).status_code == 422
    call = {"kind": "legal_advice", "summary": "问遗产继承", "phone": "12345"}
    refused = world.api("operator").post("/api/v1/hotline/calls", call)
    assert refused.status_code == 422 and refused.json()["error"]["fields"] == {"phone": "invalid"}
    page = Client().post("/join/", _join_form(world, phone="12345"))
    assert page.status_code == 422
    html = page.content.decode()
    assert "手机号是 1 开头的 11 位数字" in html and 'value="12345"' in html
    assert not Member.objects.filter(name="孙桂兰").exists()
    # Written the way people write them, they are kept as the plain number.
    assert Client().post("/join/", _join_form(world, phone="139 0000 2222")).status_code == 302
    assert Member.objects.get(name="孙桂兰").phone == "13900002222"


# The join form shows every mistake at once ----------------------------------------------------------------


def test_the_join_form_shows_all_its_errors_at_once(world: World) -> None:
    mistakes = _join_form(world, phone="12345", username="volunteer", password1="short", password2="short")
    page = Client().post("/join/", mistakes)
    assert page.status_code == 422
    html = page.content.decode()
    assert "手机号是 1 开头的 11 位数字" in html
    assert "这个用户名已经有人用了" in html
    assert "密码太短了，至少要 8 位。" in html
    assert 'value="孙桂兰"' in html and 'value="12345"' in html and 'value="volunteer"' in html
    assert not Member.objects.filter(name="孙桂兰").exists()


# A past custom time is refused at step 2, where it was chosen -----------------------------------------------


def test_a_past_custom_time_is_refused_at_step_2(world: World) -> None:
    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    recipient = world.members["recipient"]
    client = web_client(world.users["relative"])
    past = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    step2 = client.get(f"/order/{item.pk}/?for={recipient.pk}&start={past}")
    assert step2.status_code == 422
    html = step2.content.decode()
    assert 'id="id_start_error_1"' in html and "这个时间已经过去了，请选一个以后的时间。" in html
    assert f'value="{past}"' in html
    # A time to come still goes on to step 3.
    later = (timezone.localtime() + dt.timedelta(days=2)).replace(hour=9, minute=0).strftime("%Y-%m-%dT%H:%M")
    step3 = client.get(f"/order/{item.pk}/?for={recipient.pk}&start={later}")
    assert step3.status_code == 302 and f"/order/{item.pk}/confirm/" in step3["Location"]


# After a successful hand-over the outlet sees the success, not a red "already used" ------------------------


def test_after_a_hand_over_the_outlet_sees_its_success_not_a_refusal(world: World) -> None:
    volunteer = world.members["volunteer"]
    do_adjustment(None, member=volunteer, minutes=300, bucket="goods", reason="开户")
    rice = goods_actions.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=2)
    redemption, _replayed = goods_actions.do_redeem(
        world.users["volunteer"], member=volunteer, goods=rice, quantity=1, outlet=world.outlet, idempotency_key="k1"
    )
    staff = web_client(world.users["staff"])
    done = staff.post(f"/outlet/voucher/{redemption.voucher_code}/hand-over/")
    assert done.status_code == 302  # post, redirect, get
    page = staff.get(done["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert "已交付：大米 5 斤 × 1" in html and "交付完成" in html
    assert 'class="notice error"' not in html and "不能再领。</p>" in html
    # Looked up again later, the voucher says plainly it was used.
    again = staff.get(done["Location"]).content.decode()
    assert 'class="notice error"' in again and "已经用过" in again and "交付完成" not in again


# The demo shows the product's own 404 and 500 pages ---------------------------------------------------------


def _boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a bug")


urlpatterns = [path("boom/", _boom)]


@override_settings(ROOT_URLCONF=__name__)
def test_a_server_error_shows_the_products_own_500_page() -> None:
    answer = Client(raise_request_exception=False).get("/boom/")
    assert answer.status_code == 500
    html = answer.content.decode()
    assert "出了点问题" in html and "12349" in html and 'href="/"' in html


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the demo runs on SQLite")
def test_the_demo_server_shows_the_products_404_page_and_serves_static_files(tmp_path: Path) -> None:
    """`make demo`'s own recipe (make -n) on a fresh SQLite file and an empty STATIC_ROOT, as on a fresh clone:
    every manage.py line but the demo data's (slow, and not what is checked here). With DEBUG off and no
    --insecure, WhiteNoise serves the collected static files and a wrong address shows the product's 404 page."""
    port = free_port()
    make = shutil.which("make")
    assert make is not None
    planned = subprocess.run(
        [make, "-n", "demo", f"PORT={port}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    steps = [shlex.split(line) for line in planned.splitlines() if "manage.py" in line and "seed_demo" not in line]
    assert [words[words.index("manage.py") + 1] for words in steps] == [
        "migrate",
        "collectstatic",
        "runserver",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "TASKS_BACKEND", "DJANGO_SETTINGS_MODULE")}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "TIMEBANK_LOCAL_SECRETS": str(tmp_path / "secrets.json"),
        "STATIC_ROOT": str(tmp_path / "static"),
    }
    *setup, serve = steps
    for words in setup:
        subprocess.run(words, env=env, cwd=ROOT, check=True)
    # The recipe's last line, as make would run it: its VAR=value words are the server's environment.
    settings_env = dict(w.split("=", 1) for w in serve if "=" in w and not w.startswith("-") and "/" not in w)
    assert settings_env.get("DEBUG") == "0" and "--insecure" not in serve
    command = [w for w in serve if w.split("=", 1)[0] not in settings_env]
    server = subprocess.Popen(
        [*command, "--noreload"], env=env | settings_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/about/", timeout=5)
                break
            except OSError:
                assert server.poll() is None, "the demo server exited"
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "/no-such-page/", timeout=10)
        assert missing.value.code == 404
        html = missing.value.read().decode()
        assert "找不到这个页面" in html and "URLconf" not in html and "DEBUG = True" not in html
        site_css = (ROOT / "timebank/web/static/web/site.css").read_bytes()
        with urllib.request.urlopen(base + "/static/web/site.css", timeout=10) as css:
            assert css.status == 200 and css.headers.get_content_type() == "text/css" and css.read() == site_css
        with urllib.request.urlopen(base + "/static/web/vendor/htmx.min.js", timeout=10) as js:
            assert js.status == 200 and js.headers.get_content_type() == "text/javascript"
        # A static file that is not there is the product's 404 page too.
        with pytest.raises(urllib.error.HTTPError) as no_file:
            urllib.request.urlopen(base + "/static/web/no-such-file.css", timeout=10)
        assert no_file.value.code == 404 and "找不到这个页面" in no_file.value.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)


# Dates show the year where it is not this year, and pad evenly ------------------------------------------------


def test_dates_show_the_year_where_it_is_not_this_years_and_pad_evenly() -> None:
    now = timezone.localtime()
    month = 3 if now.month != 3 else 9
    this_year = now.replace(month=month, day=5, hour=9, minute=0)
    with translation.override("zh-hans"):
        assert when(this_year).startswith(f"{month}月5日 星期") and when(this_year).endswith(" 09:00")
        last_year = now.replace(year=now.year - 1, month=4, day=5, hour=14, minute=30)
        assert when(last_year).startswith(f"{now.year - 1}年4月5日 星期") and when(last_year).endswith(" 14:30")
        assert when(now).startswith("今天 ")


def test_a_slot_that_has_passed_goes_back_to_step_2_with_the_reason(world: World) -> None:
    item = do_create_service_item(
        None, head_office=world.bank, name="家庭保洁", category="mutual_care", tier="ordinary"
    )
    recipient = world.members["recipient"]
    client = web_client(world.users["relative"])
    past = (timezone.localtime() - dt.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    step3 = client.get(f"/order/{item.pk}/confirm/?for={recipient.pk}&start={past}")
    assert step3.status_code == 302
    step2 = client.get(step3["Location"])
    assert step2.status_code == 422
    assert "这个时间已经过去了，请选一个以后的时间。" in step2.content.decode()
