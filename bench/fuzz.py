"""Full-sized API fuzzing: schemathesis against /api/v1/openapi.json, ≥100 examples per operation.

    .venv/bin/python bench/fuzz.py [--examples 100] [--scenarios 200] [--seed N] [--only /api/v1/orders]
                                   [--workers 2] [--personas staff,ho_admin] [--modes positive,negative]

It builds a scratch SQLite database (a temporary file in /dev/shm when there is one; `--database-url` for
PostgreSQL), migrates it, fills it with the demo's two banks, and sends every operation `--examples` valid and
`--examples` invalid requests as a community's staff member and as a head office's admin. Then the stateful part
follows the document's links for `--scenarios` scenarios per caller. It prints, per operation, the examples
tried, the statuses seen and the failures (5xx, crashes, undeclared statuses, content types or bodies that break
the schema), and the totals. Exit status 1 when anything failed. The CI-sized run of the same code is
tests/test_fuzz_api.py.

Speed (the checks and the examples per operation are the same either way):
- `--workers N` splits the operations round-robin over N processes (`--shard i/N` runs one share), each with its
  own scratch database; the stateful runs are spread over them too. The parent prints the merged totals.
- the scratch SQLite database lives on tmpfs with `synchronous=OFF` (it is thrown away; durability is not what
  is fuzzed), and the 4xx warnings of `django.request` are not logged (5xx still are).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="examples per operation, caller and mode")
    parser.add_argument("--scenarios", type=int, default=200, help="stateful scenarios per caller (0: none)")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: a fixed, derandomized run)")
    parser.add_argument("--only", default="", help="fuzz only operations whose path starts with this")
    parser.add_argument(
        "--database-url", default="", help="default: a temporary SQLite file; postgres://…/NAME uses NAME_s<shard>"
    )
    parser.add_argument("--workers", type=int, default=1, help="processes to split the operations over")
    parser.add_argument("--shard", default="", help="i/N: run only the i-th of N shares (0-based)")
    parser.add_argument("--personas", default="staff,ho_admin", help="callers, comma-separated")
    parser.add_argument("--modes", default="positive,negative", help="generation modes, comma-separated")
    parser.add_argument("--json", default="", help="write the reports here as JSON (used by --workers)")
    parser.add_argument(
        "--until", default="", help="HH:MM (UTC): start no operation after this; the skipped ones are listed"
    )
    return parser.parse_args()


def _summarise(rows: list[dict[str, Any]], skipped: list[str], seconds: float, examples: int) -> int:
    failed = [r for r in rows if r["failures"]]
    operations = {r["label"].rsplit(" [", 1)[0] for r in rows if "[" in r["label"]}
    fewest = min((r["tried"] for r in rows if "[" in r["label"]), default=0)
    tried = sum(r["tried"] for r in rows)
    statuses: Counter[str] = Counter()
    for r in rows:
        statuses.update({str(k): v for k, v in r["statuses"].items()})
    print(
        f"\n{len(operations)} operations, {tried} requests in {seconds:.0f} s; "
        f"fewest examples in one operation × caller × mode: {fewest}; "
        f"failures: {sum(len(r['failures']) for r in failed)} in {len(failed)} runs\n"
        f"statuses: {' '.join(f'{k}:{v}' for k, v in sorted(statuses.items()))}",
        flush=True,
    )
    # An operation without inputs (GET /health) has one valid request and no invalid one: hypothesis stops there.
    few = [f"{r['label']} as {r['persona']}: {r['tried']}" for r in rows if "[" in r["label"] and r["tried"] < examples]
    if few:
        print(f"fewer than {examples} examples (the input space is that small): {'; '.join(few)}", flush=True)
    if skipped:
        print(f"NOT RUN (--until reached): {len(skipped)} operations: {', '.join(sorted(skipped))}", flush=True)
    for r in failed:
        for key, example in r["failures"].items():
            print(f"{r['label']} as {r['persona']}: {key}\n    {example}")
    return 1 if failed else 0


def _run_workers(args: argparse.Namespace) -> int:
    """Start one process per share; they print their rows as they go, the totals are merged here."""
    started = time.perf_counter()
    out = tempfile.TemporaryDirectory(prefix="timebank-fuzz-shards-")
    base = sys.argv[1:]
    skip = {"--workers", "--json", "--shard"}
    argv: list[str] = []
    it = iter(base)
    for a in it:
        name = a.split("=", 1)[0]
        if name in skip:
            if "=" not in a:
                next(it, None)
            continue
        argv.append(a)
    children = []
    for i in range(args.workers):
        path = f"{out.name}/shard{i}.json"
        cmd = [sys.executable, __file__, *argv, "--shard", f"{i}/{args.workers}", "--json", path]
        children.append((path, subprocess.Popen(cmd)))
    codes = [child.wait() for _p, child in children]
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for path, _child in children:
        if Path(path).exists():
            saved = json.loads(Path(path).read_text())
            rows += saved["rows"]
            skipped += saved["skipped"]
    status = _summarise(rows, skipped, time.perf_counter() - started, args.examples)
    if any(code not in (0, 1) for code in codes):
        print(f"a worker crashed: exit codes {codes}")
        return 2
    return status


def _fresh_database(url: str, shard: int) -> str:
    """PostgreSQL: an empty database of its own for each share (`<name>_s<i>`), made afresh."""
    if not url.startswith("postgres"):
        return url
    import psycopg
    from psycopg import sql

    base, _slash, name = url.rpartition("/")
    name = f"{name}_s{shard}"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return f"{base}/{name}"


def main() -> int:
    args = _parse_args()
    if args.workers > 1 and not args.shard:
        return _run_workers(args)
    shard, shards = (int(x) for x in (args.shard or "0/1").split("/"))

    shm = "/dev/shm"  # noqa: S108 (mkdtemp makes a private, randomly named folder in it)
    scratch = tempfile.TemporaryDirectory(prefix="timebank-fuzz-", dir=shm if Path(shm).is_dir() else None)
    os.environ["DATABASE_URL"] = _fresh_database(args.database_url, shard) or f"sqlite:///{scratch.name}/fuzz.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "timebank.settings"
    os.environ.setdefault("AXES_ENABLED", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    # Argon2 costs ~0.1 s a login by design; the fuzzer creates and logs in thousands, and hashing is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if connection.vendor == "sqlite" and not args.database_url:
        # The scratch database is thrown away: no fsync (WAL stays, as in production).
        connection.close()
        connection.settings_dict.setdefault("OPTIONS", {})["init_command"] = (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;"
        )
    # Every 4xx is logged as a warning by django.request: thousands of lines of noise. 5xx are still logged.
    logging.getLogger("django.request").setLevel(logging.ERROR)

    from schemathesis.generation import GenerationMode

    from tests.test_fuzz_api import OperationReport, fuzz_all, fuzz_stateful, seed

    call_command("migrate", verbosity=0, interactive=False)
    callers = {p: h for p, h in seed().items() if p in args.personas.split(",")}
    modes = tuple(GenerationMode(m) for m in args.modes.split(","))
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    deadline = float("inf")
    if args.until:
        now = time.gmtime()
        hour, minute = (int(x) for x in args.until.split(":"))
        deadline = time.time() + ((hour * 60 + minute) - (now.tm_hour * 60 + now.tm_min)) * 60 - now.tm_sec

    def save() -> None:
        if args.json:  # written as we go: a run cut short still tells what it did
            Path(args.json).write_text(json.dumps({"rows": rows, "skipped": skipped}))

    def show(persona: str, report: OperationReport) -> None:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(report.statuses.items()))
        mark = f"FAIL {len(report.failures)}" if report.failures else "ok"
        print(f"{report.label:<70} {persona:<9} {report.tried:>5}  {mark:<7} {statuses}", flush=True)
        rows.append(
            {
                "persona": persona,
                "label": report.label,
                "tried": report.tried,
                "statuses": dict(report.statuses),
                "failures": report.failures,
            }
        )
        save()

    def wanted(operation: Any) -> bool:
        if not operation.path.startswith(args.only) or next(counter) % shards != shard:
            return False
        if time.time() > deadline:
            skipped.append(f"{operation.method.upper()} {operation.path}")
            save()
            return False
        return True

    if shard == 0:
        print(f"{'operation [mode]':<70} {'as':<9} {'tried':>5}  result  statuses", flush=True)
    counter = itertools.count()
    fuzz_all(
        callers,
        examples=args.examples,
        seed=args.seed,
        only=wanted,
        on_report=show,
        modes=modes,
    )
    if args.scenarios > 0:
        for index, (persona, headers) in enumerate(callers.items()):
            if index % shards == shard and time.time() < deadline:
                show(persona, fuzz_stateful(headers, scenarios=args.scenarios, seed=args.seed))

    if args.shard:  # the parent prints the totals
        return 1 if any(r["failures"] for r in rows) else 0
    return _summarise(rows, skipped, time.perf_counter() - started, args.examples)


if __name__ == "__main__":
    sys.exit(main())
