"""The clock has one seam (`timebank.lib.clock`), and nothing that ships patches Django's clock (issue 15).

The demo replays a hundred days through the actions inside `clock.running(...)`. Before, the first `running()`
replaced `django.utils.timezone.now` for the whole process, because `auto_now` fields had no other hook; now the
rows stamp themselves through `ClockDateTimeField` and every module reads the seam."""

from __future__ import annotations

import ast
import datetime as dt
import pathlib
import threading

import pytest
from django.apps import apps
from django.db import models
from django.utils import timezone

from tests.conftest import World
from timebank.lib import clock
from timebank.lib.clock import ClockDateTimeField
from timebank.orgs.models import Org

ROOT = pathlib.Path(__file__).resolve().parent.parent / "timebank"
DJANGO_NOW = timezone.now
MOMENT = dt.datetime(2024, 2, 29, 3, 4, 5, tzinfo=dt.UTC)


def _reads_of_django_clock(source: str) -> list[int]:
    """Lines that call `timezone.now()`, or `localdate()` / `localtime()` without a value (both read the clock)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        owner = node.func.value
        if not (isinstance(owner, ast.Name) and owner.id == "timezone"):
            continue
        if node.func.attr == "now" or (node.func.attr in {"localdate", "localtime"} and not node.args):
            lines.append(node.lineno)
    return lines


def test_no_module_reads_djangos_clock_but_the_seam() -> None:
    found = {}
    for path in ROOT.rglob("*.py"):
        if "migrations" in path.parts or path == ROOT / "lib" / "clock.py":
            continue
        if lines := _reads_of_django_clock(path.read_text()):
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}


def test_the_scan_sees_a_read() -> None:
    assert _reads_of_django_clock("from django.utils import timezone\nx = timezone.now()\ny = timezone.localdate()\n")
    assert not _reads_of_django_clock("timezone.localdate(value)\nclock.now()\n")


def test_every_self_stamping_field_reads_the_seam() -> None:
    plain = [
        f"{model._meta.label}.{field.name}"
        for model in apps.get_models()
        if model.__module__.startswith("timebank.")
        for field in model._meta.get_fields()
        if isinstance(field, models.DateField)
        and (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))
        and not isinstance(field, ClockDateTimeField)
    ]
    assert plain == []


def test_running_moves_the_seam_and_the_stamps_not_djangos_clock(world: World) -> None:
    with clock.running(lambda: MOMENT):
        assert clock.now() == MOMENT
        assert clock.localdate() == dt.date(2024, 2, 29)  # 11:04 in Shanghai
        org = Org.objects.create(
            name="时钟测试社区",
            kind=world.community.kind,
            parent=world.community.parent,
            head_office=world.community.head_office,
        )
        assert timezone.now is DJANGO_NOW  # nothing patched
        assert abs(timezone.now() - MOMENT) > dt.timedelta(days=300)
    org.refresh_from_db()
    assert org.created_at == MOMENT
    assert abs(clock.now() - timezone.now()) < dt.timedelta(seconds=5)


def test_a_running_block_is_its_threads_own() -> None:
    seen: list[dt.datetime] = []
    with clock.running(lambda: MOMENT):
        other = threading.Thread(target=lambda: seen.append(clock.now()))
        other.start()
        other.join()
        assert clock.now() == MOMENT
    assert abs(seen[0] - timezone.now()) < dt.timedelta(seconds=5)


def test_a_test_that_patches_djangos_clock_moves_the_seam_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timezone, "now", lambda: MOMENT)
    assert clock.now() == MOMENT
