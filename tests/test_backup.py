"""Backup and restore: a restored copy has the same balances and passes `verify`.

On SQLite this exercises the online backup API, on PostgreSQL pg_dump/pg_restore (when DATABASE_URL is
PostgreSQL). The test database must hold committed rows for pg_dump to see them, hence transaction=True.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from tests.conftest import World
from timebank.goods import actions as goods_actions
from timebank.ledger import actions as ledger
from timebank.ledger.models import Account
from timebank.ledger.verify import verify
from timebank.ops.backup import manifest_path, pg_binary

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


def _require_tools() -> None:
    if connection.vendor == "postgresql":
        try:
            pg_binary("pg_dump")
            pg_binary("pg_restore")
        except Exception as exc:
            pytest.skip(f"pg_dump/pg_restore not available: {exc}")


def _fill(world: World) -> None:
    recipient, relative, volunteer = (world.members[p] for p in ("recipient", "relative", "volunteer"))
    ledger.do_adjustment(None, member=recipient, minutes=900, bucket="reserve", reason="开户", idempotency_key="b1")
    ledger.do_adjustment(None, member=volunteer, minutes=300, bucket="goods", reason="开户", idempotency_key="b2")
    ledger.do_transfer(
        world.users["recipient"],
        from_member=recipient,
        to_member=relative,
        minutes=120,
        kind="relative",
        idempotency_key="b3",
    )
    ledger.do_transfer(
        world.users["recipient"],
        from_member=recipient,
        to_member=None,
        minutes=45,
        kind="donation",
        idempotency_key="b4",
    )
    rice = goods_actions.do_create_goods(None, outlet=world.outlet, name="大米 5 斤", price_minutes=120, stock=5)
    goods_actions.do_redeem(
        world.users["volunteer"], member=volunteer, goods=rice, quantity=2, outlet=world.outlet, idempotency_key="b5"
    )


def _balances() -> dict[int, int]:
    return dict(Account.objects.values_list("pk", "balance_minutes"))


def test_restore_puts_back_the_backed_up_balances(world: World, tmp_path: Path) -> None:
    _require_tools()
    _fill(world)
    before = _balances()
    path = tmp_path / "timebank.backup"
    call_command("backup", str(path))
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["vendor"] == connection.vendor and manifest["ledger"]["accounts"] == len(before)

    # Life goes on after the backup; the restore must undo it exactly.
    ledger.do_adjustment(None, member=world.members["neighbour"], minutes=77, bucket="earned", reason="之后")
    assert _balances() != before
    call_command("restore", str(path), yes=True)
    assert _balances() == before
    assert verify().ok


def test_a_damaged_backup_is_refused(world: World, tmp_path: Path) -> None:
    _require_tools()
    _fill(world)
    path = tmp_path / "timebank.backup"
    call_command("backup", str(path))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CommandError, match="does not match its manifest"):
        call_command("restore", str(path), yes=True)


def _fresh_database(tmp_path: Path) -> tuple[str, Callable[[], None]]:
    """A new, empty database next to the test one: its URL and a way to drop it."""
    if connection.vendor == "sqlite":
        target = tmp_path / "fresh.sqlite3"
        return f"sqlite:///{target}", lambda: None
    params = connection.settings_dict
    name = f"{params['NAME']}_restore"[:63]
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')

    password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
    return f"postgres://{params['USER']}{password}@{params['HOST']}:{params['PORT'] or 5432}/{name}", drop


def _manage(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], env=env, capture_output=True, text=True, check=False
    )


def _balances_in(database_url: str) -> dict[int, int]:
    code = (
        "import json; from timebank.ledger.models import Account; "
        "print(json.dumps(list(Account.objects.values_list('pk', 'balance_minutes'))))"
    )
    done = _manage(database_url, "shell", "-c", code)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_restore_into_a_fresh_database_then_verify(world: World, tmp_path: Path) -> None:
    """The documented steps: backup; on the new machine migrate nothing, restore, verify."""
    _require_tools()
    _fill(world)
    before = _balances()
    path = tmp_path / "timebank.backup"
    call_command("backup", str(path))
    url, drop = _fresh_database(tmp_path)
    try:
        if connection.vendor == "sqlite":
            # The restore writes into the configured file; an empty one is a fresh database.
            sqlite3.connect(url.removeprefix("sqlite:///")).close()
        restored = _manage(url, "restore", str(path), "--yes")
        assert restored.returncode == 0, restored.stderr
        assert "verify ok" in restored.stdout
        checked = _manage(url, "verify")
        assert checked.returncode == 0, checked.stderr
        assert _balances_in(url) == before
    finally:
        drop()
