"""Full-sized API fuzzing: schemathesis against /api/v1/openapi.json, ≥100 examples per operation.

    .venv/bin/python bench/fuzz.py [--examples 100] [--scenarios 200] [--seed N] [--only /api/v1/orders]

It builds a scratch SQLite database (a temporary file; `--database-url` for PostgreSQL), migrates it, fills it
with the demo's two banks, and sends every operation `--examples` valid and `--examples` invalid requests as a
community's staff member and as a head office's admin. Then the stateful part follows the document's links for
`--scenarios` scenarios per caller. It prints, per operation, the examples tried, the statuses seen and the
failures (5xx, crashes, undeclared statuses, content types or bodies that break the schema), and the totals.
Exit status 1 when anything failed. The CI-sized run of the same code is tests/test_fuzz_api.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/http.py would shadow the standard library's `http` for a script run from this folder.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=100, help="examples per operation, caller and mode")
    parser.add_argument("--scenarios", type=int, default=200, help="stateful scenarios per caller")
    parser.add_argument("--seed", type=int, default=None, help="hypothesis seed (default: a fixed, derandomized run)")
    parser.add_argument("--only", default="", help="fuzz only operations whose path starts with this")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = parser.parse_args()

    scratch = tempfile.TemporaryDirectory(prefix="timebank-fuzz-")
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{scratch.name}/fuzz.sqlite3"
    os.environ["DJANGO_SETTINGS_MODULE"] = "timebank.settings"
    os.environ.setdefault("AXES_ENABLED", "1")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # Argon2 costs ~0.1 s a login by design; the fuzzer creates and logs in thousands, and hashing is not under test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

    from tests.test_fuzz_api import OperationReport, format_failures, fuzz_all, fuzz_stateful, seed

    call_command("migrate", verbosity=0, interactive=False)
    callers = seed()
    started = time.perf_counter()

    def show(persona: str, report: OperationReport) -> None:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(report.statuses.items()))
        mark = f"FAIL {len(report.failures)}" if report.failures else "ok"
        print(f"{report.label:<70} {persona:<9} {report.tried:>5}  {mark:<7} {statuses}", flush=True)

    print(f"{'operation [mode]':<70} {'as':<9} {'tried':>5}  result  statuses")
    reports = fuzz_all(
        callers, examples=args.examples, seed=args.seed, only=lambda op: op.path.startswith(args.only), on_report=show
    )
    for persona, headers in callers.items():
        report = fuzz_stateful(headers, scenarios=args.scenarios, seed=args.seed)
        show(persona, report)
        reports.append((persona, report))

    tried = sum(r.tried for _p, r in reports)
    failed = [(p, r) for p, r in reports if r.failures]
    operations = {r.label.rsplit(" [", 1)[0] for _p, r in reports}
    fewest = min((r.tried for _p, r in reports if "[" in r.label), default=0)
    print(
        f"\n{len(operations)} operations, {tried} requests in {time.perf_counter() - started:.0f} s; "
        f"fewest examples in one operation × caller × mode: {fewest}; "
        f"failures: {sum(len(r.failures) for _p, r in failed)} in {len(failed)} runs"
    )
    if failed:
        print(format_failures(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
