"""Consistent copies of the database, and putting one back.

PostgreSQL: `pg_dump` (one repeatable-read snapshot, custom format) and `pg_restore` in one transaction.
SQLite: the online backup API (`sqlite3.Connection.backup`), which copies a consistent state while the
server keeps running. Each backup gets a manifest beside it (`<path>.json`) with a description of what it
holds (`Contents`: the ledger gives a digest of every account balance, `timebank.ledger.backup`), so a
restore can prove it put back the same data. This module knows the database, not the apps' tables.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connection, transaction

from timebank.lib import clock


class BackupError(Exception):
    pass


@dataclass(frozen=True)
class Contents:
    """What a backup's manifest describes under `name`, and a restore must reproduce: `live` reads it from the
    configured database (inside pg_dump's snapshot, and after a restore), `of_sqlite_file` from a SQLite copy."""

    name: str
    live: Callable[[], dict[str, Any]]
    of_sqlite_file: Callable[[sqlite3.Connection], dict[str, Any]]


def manifest_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def pg_binary(name: str) -> str:
    """The newest installed client binary (pg_dump must not be older than the server)."""
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3].split(".")[0])
    )
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found in /usr/lib/postgresql/*/bin or PATH")
    return found


def _pg_env() -> dict[str, str]:
    params = connection.settings_dict
    env = dict(os.environ)
    for var, key in (("PGHOST", "HOST"), ("PGPORT", "PORT"), ("PGUSER", "USER"), ("PGPASSWORD", "PASSWORD")):
        if params.get(key):
            env[var] = str(params[key])
    env["PGDATABASE"] = str(params["NAME"])
    return env


def _run(args: list[str]) -> None:
    done = subprocess.run(args, env=_pg_env(), capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _sqlite_conn() -> sqlite3.Connection:
    connection.ensure_connection()
    raw = connection.connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def backup(path: Path, contents: Contents) -> dict[str, Any]:
    """Write a consistent copy to `path` and its manifest to `path`.json. Returns the manifest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    if connection.vendor == "postgresql":
        snapshot = _pg_dump(partial, contents)
    elif connection.vendor == "sqlite":
        target = sqlite3.connect(partial)
        try:
            with target:
                _sqlite_conn().backup(target)
            snapshot = _snapshot_of_sqlite_file(partial, contents)
        finally:
            target.close()
    else:
        raise BackupError(f"no backup method for {connection.vendor}")
    os.replace(partial, path)
    manifest = {
        "vendor": connection.vendor,
        "created_at": clock.now().isoformat(),
        "file": path.name,
        "bytes": path.stat().st_size,
        "file_sha256": _file_sha256(path),
        contents.name: snapshot,
    }
    manifest_path(path).write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


def _pg_dump(target: Path, contents: Contents) -> dict[str, Any] | None:
    """pg_dump reads one snapshot; exporting it from here lets the manifest describe exactly that state."""
    args = [pg_binary("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)]
    if connection.in_atomic_block:  # inside a caller's transaction the snapshot cannot be chosen
        _run(args)
        return None
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot_id = cursor.fetchone()[0]
        snapshot = contents.live()
        _run([*args, "--snapshot", snapshot_id])
    return snapshot


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _snapshot_of_sqlite_file(path: Path, contents: Contents) -> dict[str, Any]:
    """The snapshot read from the copy itself, so it describes exactly what was saved."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return contents.of_sqlite_file(con)
    finally:
        con.close()


def restore(path: Path, contents: Contents) -> dict[str, Any]:
    """Replace the configured database's contents with the backup at `path`. Returns the new snapshot."""
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    manifest_file = manifest_path(path)
    manifest = json.loads(manifest_file.read_text()) if manifest_file.is_file() else None
    if manifest and manifest.get("file_sha256") and manifest["file_sha256"] != _file_sha256(path):
        raise BackupError(f"{path} does not match its manifest: the file is damaged or was replaced")
    if connection.vendor == "postgresql":
        connection.close()
        _run(
            [
                pg_binary("pg_restore"),
                "--clean",
                "--if-exists",
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "--exit-on-error",
                "--dbname",
                str(connection.settings_dict["NAME"]),
                str(path),
            ]
        )
    elif connection.vendor == "sqlite":
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            source.backup(_sqlite_conn())
        finally:
            source.close()
    else:
        raise BackupError(f"no restore method for {connection.vendor}")
    snapshot = contents.live()
    expected = (manifest or {}).get(contents.name)
    if expected and expected != snapshot:
        raise BackupError(f"restored {contents.name} differs from the backup's manifest: {expected} != {snapshot}")
    return snapshot
