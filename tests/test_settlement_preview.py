"""The settlement form (issue 13, "workbench that tells the truth"): it proposes the next period that can run, shows
a preview (members, minutes to goods and to reserve) computed by the settlement's own rule, and runs only on
confirmation; the preview's numbers are what the settlement then posts (plain rows on SQLite, set-based on
PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from unittest import mock

from django.utils import timezone

from tests.conftest import World, web_client
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Settlement, Transaction
from timebank.ledger.settlement import preview_settlement


def _adjust_days_ago(world: World, persona: str, minutes: int, days: int) -> None:
    """Posted `days` ago: the clock is set back while it posts (ledger rows are immutable once written)."""
    with mock.patch("django.utils.timezone.now", return_value=timezone.now() - dt.timedelta(days=days)):
        do_adjustment(None, member=world.members[persona], minutes=minutes, bucket="earned", reason="服务")


def test_preview_equals_what_the_settlement_posts(world: World, django_capture_on_commit_callbacks: Any) -> None:
    today = timezone.localdate()
    yesterday = today - dt.timedelta(days=1)
    _adjust_days_ago(world, "volunteer", 181, 3)
    _adjust_days_ago(world, "neighbour", 95, 3)
    do_adjustment(None, member=world.members["neighbour"], minutes=40, bucket="earned", reason="今天的服务")  # after
    do_adjustment(None, member=world.members["stranger"], minutes=60, bucket="earned", reason="服务")  # other bank
    admin = web_client(world.users["head_office_admin"])
    url = f"/bank/{world.bank.pk}/settlements/"
    transactions = Transaction.objects.count()

    page = admin.post(url, {"period_end": yesterday.isoformat(), "preview": "1"})
    html = page.content.decode()
    assert page.status_code == 200 and 'id="settlement-preview"' in html
    preview = preview_settlement(world.bank, yesterday)
    # 181 → 90 goods + 91 reserve; 95 → 47 + 48; the 40 minutes posted today wait for the next settlement.
    assert (preview.members, preview.moved_minutes, preview.goods_minutes, preview.reserve_minutes) == (
        2,
        276,
        137,
        139,
    )
    for figure in ("276 分钟", "137 分钟", "139 分钟", f"确认结算到 {yesterday.isoformat()}"):
        assert figure in html, figure
    assert not Settlement.objects.exists() and Transaction.objects.count() == transactions  # a dry run

    with django_capture_on_commit_callbacks(execute=True):
        confirmed = admin.post(url, {"period_end": yesterday.isoformat()})
    assert confirmed.status_code == 302
    done = Settlement.objects.get(head_office=world.bank, period_end=yesterday)
    assert (done.members, done.moved_minutes, done.goods_minutes, done.reserve_minutes) == (
        preview.members,
        preview.moved_minutes,
        preview.goods_minutes,
        preview.reserve_minutes,
    )
    # Previewing that date again says it is done, and moves nothing.
    again = admin.post(url, {"period_end": yesterday.isoformat(), "preview": "1"}).content.decode()
    assert "已经开始或做过了" in again and f"/settlements/{done.pk}/" in again
    assert Settlement.objects.count() == 1


def test_form_proposes_the_next_period_that_can_run(world: World, django_capture_on_commit_callbacks: Any) -> None:
    today = timezone.localdate()
    admin = web_client(world.users["head_office_admin"])
    url = f"/bank/{world.bank.pk}/settlements/"
    # Half-yearly rules, never settled: the last half-year end.
    boundary = dt.date(today.year, 6, 30) if today >= dt.date(today.year, 6, 30) else dt.date(today.year - 1, 12, 31)
    assert f'value="{boundary.isoformat()}"' in admin.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(url, {"period_end": boundary.isoformat()}).status_code == 302
    # That boundary is settled: an early settlement up to today is what can run now.
    assert f'value="{today.isoformat()}"' in admin.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(url, {"period_end": today.isoformat()}).status_code == 302
    assert "现在没有可以结算的期间" in admin.get(url).content.decode()


def test_bad_previews_are_refused_and_write_nothing(world: World, django_capture_on_commit_callbacks: Any) -> None:
    today = timezone.localdate()
    admin = web_client(world.users["head_office_admin"])
    url = f"/bank/{world.bank.pk}/settlements/"
    with django_capture_on_commit_callbacks(execute=True):
        admin.post(url, {"period_end": today.isoformat()})
    for bad in ((today + dt.timedelta(days=1)).isoformat(), (today - dt.timedelta(days=9)).isoformat(), "2026-02-30"):
        assert admin.post(url, {"period_end": bad, "preview": "1"}).status_code == 422, bad
    for persona in ("branch_admin", "staff", "other_bank_admin"):
        resp = web_client(world.users[persona]).post(url, {"period_end": today.isoformat(), "preview": "1"})
        assert resp.status_code == 403
    assert Settlement.objects.count() == 1
