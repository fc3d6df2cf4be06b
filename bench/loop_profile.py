"""Where one order loop's requests spend their time: SQL statements, commits and CPU per step.

    .venv/bin/python bench/loop_profile.py [--loops 40] [--profile confirm] [--no-idempotency-header]

The same loop as bench/http_loop.py (create → dispatch → accept → check-in → check-out → confirm → review,
each a POST with a Bearer token, a body `idempotency_key` and an `Idempotency-Key` header), sent one request
at a time through Django's test client in this process, in production settings (tasks queued in the
database) on PostgreSQL. No server, no concurrency: the cost of one request, not queueing.

It drops and recreates the database `timebank_perf` (`--database` to change), builds one bank with
bench/http_loop.py's `build`, then per step prints the SQL statements (COMMIT and SAVEPOINT statements
counted apart), the commits, and the median wall and CPU time of the request. The first `--queries-loops`
loops capture the statements (the capture itself costs CPU); the rest are timed without it.
`--profile STEP` prints a cProfile listing of that step over the timed loops; `--show-sql STEP` prints
its statements.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import importlib.util
import io
import json
import os
import pstats
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
bench_dir = str(ROOT / "bench")


def _http_loop() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_http_loop", Path(bench_dir) / "http_loop.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class Counter:
    """Counts commits on the default connection (COMMIT is not a captured query in Django)."""

    def __init__(self) -> None:
        self.commits = 0

    def install(self) -> None:
        from django.db import connection

        inner: Callable[[], None] = connection._commit  # type: ignore[attr-defined]

        def counted() -> None:
            self.commits += 1
            inner()

        connection._commit = counted  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loops", type=int, default=40, help="order loops to run")
    parser.add_argument("--queries-loops", type=int, default=3, help="loops whose SQL is captured (not timed)")
    parser.add_argument("--database", default="timebank_perf")
    parser.add_argument("--profile", default="", help="a step (e.g. confirm) to print a cProfile listing of")
    parser.add_argument("--sort", default="cumulative", help="cProfile sort key (cumulative, tottime, ...)")
    parser.add_argument("--lines", type=int, default=45, help="lines of the cProfile listing")
    parser.add_argument("--show-sql", default="", help="a step whose statements to print")
    parser.add_argument(
        "--no-idempotency-header", dest="header", action="store_false", help="send no Idempotency-Key headers"
    )
    args = parser.parse_args(argv)

    http_loop = _http_loop()
    http_loop.BENCH_DB = args.database  # type: ignore[attr-defined]
    http_loop.configure_env()
    http_loop.recreate_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    call_command("migrate", verbosity=0)
    pair = http_loop.build(1, 1)[0]
    client = Client(HTTP_HOST="127.0.0.1", HTTP_X_FORWARDED_PROTO="https")
    counter = Counter()
    counter.install()

    queries: dict[str, list[int]] = defaultdict(list)
    savepoints: dict[str, list[int]] = defaultdict(list)
    commits: dict[str, list[int]] = defaultdict(list)
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    sql: dict[str, list[str]] = {}
    profiler = cProfile.Profile(time.process_time) if args.profile else None  # CPU, not waits

    def post(path: str, body: dict[str, Any], token: str, key: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        if args.header:
            headers["Idempotency-Key"] = key
        response = client.post(path, json.dumps(body), content_type="application/json", headers=headers)
        return response.status_code, response.content

    for n in range(args.loops + args.queries_loops):
        capture = n < args.queries_loops
        key = f"perf-{n}"
        order_id: int | None = None
        for step in http_loop.LOOP:
            if step == "create":
                body: dict[str, Any] = {
                    "recipient_id": pair.recipient_id,
                    "service_item_id": pair.item_id,
                    "scheduled_start": dt.datetime.now(dt.UTC).isoformat(),
                    "planned_minutes": 60,
                    "payer": "subsidy",
                    "channel": "hotline",
                    "notes": "压测",
                }
                path, token = "/api/v1/orders", pair.staff_token
            else:
                body = {"idempotency_key": f"{key}-{step}"}
                token = pair.volunteer_token
                if step == "dispatch":
                    body["volunteer_id"] = pair.volunteer_id
                    token = pair.staff_token
                elif step in ("confirm", "review"):
                    token = pair.recipient_token
                    if step == "review":
                        body.update(rating=5, comment="很好")
                path = f"/api/v1/orders/{order_id}/{step}"
            before = counter.commits
            if capture:
                with CaptureQueriesContext(connection) as ctx:
                    status, payload = post(path, body, token, f"{key}-{step}")
                statements = [q["sql"] for q in ctx.captured_queries]
                points = [s for s in statements if s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO"))]
                queries[step].append(len(statements) - len(points))
                savepoints[step].append(len(points))
                sql.setdefault(step, statements)
            else:
                w0, c0 = time.perf_counter(), time.process_time()
                if profiler is not None and step == args.profile:
                    profiler.enable()
                status, payload = post(path, body, token, f"{key}-{step}")
                if profiler is not None and step == args.profile:
                    profiler.disable()
                wall[step].append((time.perf_counter() - w0) * 1000)
                cpu[step].append((time.process_time() - c0) * 1000)
            commits[step].append(counter.commits - before)
            if status not in (200, 201):
                raise SystemExit(f"{step}: {status} {payload[:300]!r}")
            if step == "create":
                order_id = json.loads(payload)["id"]

    print(
        f"{args.loops} timed loops, {args.queries_loops} captured; Idempotency-Key header "
        f"{'on' if args.header else 'off'}; load {http_loop.loadavg()}"
    )
    print()
    print("| step | SQL statements | savepoints | commits | wall ms (median) | CPU ms (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    totals = [0.0, 0.0, 0.0, 0.0, 0.0]
    for step in http_loop.LOOP:
        row = (
            statistics.median(queries[step]),
            statistics.median(savepoints[step]),
            statistics.median(commits[step]),
            statistics.median(wall[step]),
            statistics.median(cpu[step]),
        )
        totals = [t + r for t, r in zip(totals, row, strict=True)]
        print(f"| {step} | {row[0]:.0f} | {row[1]:.0f} | {row[2]:.0f} | {row[3]:.1f} | {row[4]:.1f} |")
    n = len(http_loop.LOOP)
    print(
        f"| mean per step | {totals[0] / n:.1f} | {totals[1] / n:.1f} | {totals[2] / n:.1f} "
        f"| {totals[3] / n:.1f} | {totals[4] / n:.1f} |"
    )
    if args.show_sql:
        print()
        for i, statement in enumerate(sql.get(args.show_sql, []), 1):
            print(f"{i:3}. {statement[:400]}")
    if profiler is not None:
        print()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(args.sort).print_stats(args.lines)
        print(out.getvalue())
    connection.close()
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
