"""API fuzzing with schemathesis against the live OpenAPI document (/api/v1/openapi.json).

Every operation gets generated requests, valid ones and deliberately invalid ones, sent as a staff
member and as a head-office admin (bearer tokens). Each answer must be:
- never a 5xx, never a crash;
- a status the document declares for that operation (the error statuses are declared for all);
- of the declared content type, and with a body that matches the declared schema.

The stateful part follows the document's links (create member → read it, create order → its
transitions, …) with schemathesis' state machine.

Here the numbers are CI-sized (FUZZ_EXAMPLES per operation, caller and mode, default 3;
FUZZ_SCENARIOS stateful scenarios per caller, default 10). The full run,
≥100 examples per operation, is `python bench/fuzz.py`, which uses the same machinery.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from timebank.demo.generator import generate
from timebank.orgs.actions import do_issue_token
from timebank.orgs.models import User

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
FUZZED_PERSONAS = ("staff", "ho_admin")
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
ID_RANGE = 80  # the demo's ids of most kinds lie below this
DEMO_MEMBERS = 30


@dataclass
class OperationReport:
    label: str
    tried: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: dict[str, str] = field(default_factory=dict)  # first line of the failure → one full example


@contextmanager
def in_test_transaction() -> Iterator[None]:
    """Django closes the database connection around each WSGI request; inside a test's transaction that
    would lose the test's data. Django's own test client disconnects the same signal handler."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def load_schema() -> Any:
    # Fetching the document is a WSGI request too: outside the guard it would close a PostgreSQL test connection.
    with in_test_transaction():
        return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())


def _summary(exc: BaseException) -> str:
    """One line that groups failures of the same kind (ids and values vary)."""
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip() and not line.startswith("-")), type(exc).__name__)
    return re.sub(r"\d+", "N", first.strip())[:200]


def _record(report: OperationReport, exc: BaseException, case: Any) -> None:
    failures = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
    for failure in failures:
        key = _summary(failure)
        if key not in report.failures:
            report.failures[key] = (
                f"{case.method} {case.formatted_path} query={case.query} body={case.body!r}"[:600]
                + f"\n    {str(failure)[:1500]}"
            )


def fuzz_operation(
    operation: Any, headers: dict[str, str], *, examples: int, mode: GenerationMode, seed: int | None
) -> OperationReport:
    report = OperationReport(f"{operation.method.upper()} {operation.path} [{mode.value}]")

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        report_multiple_bugs=False,
    )
    def run(case: Any, data: st.DataObject) -> None:
        report.tried += 1
        if mode is GenerationMode.POSITIVE:
            # Valid ids mostly name nothing; aim them at the rows that exist, so the handlers run through.
            for name, value in (case.path_parameters or {}).items():
                if name.endswith("_id") and isinstance(value, int):
                    case.path_parameters[name] = data.draw(st.integers(1, ID_RANGE))
        try:
            response = case.call(headers=headers)
        except Exception as exc:  # a crash in the app itself (the WSGI client re-raises it)
            _record(report, exc, case)
            return
        report.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (AssertionError, BaseExceptionGroup) as exc:
            _record(report, exc, case)

    if seed is not None:
        run = hypothesis.seed(seed)(run)
    with suppress(Unsatisfiable):  # an operation whose negative space is empty (nothing to break)
        run()
    return report


def fuzz_all(
    headers_for: dict[str, dict[str, str]],
    *,
    examples: int,
    seed: int | None = None,
    only: Callable[[Any], bool] = lambda _op: True,
    on_report: Callable[[str, OperationReport], None] | None = None,
    modes: tuple[GenerationMode, ...] = MODES,
) -> list[tuple[str, OperationReport]]:
    schema = load_schema()
    reports: list[tuple[str, OperationReport]] = []
    with in_test_transaction():
        for result in schema.get_all_operations():
            operation = result.ok()
            if not only(operation):
                continue
            for persona, headers in headers_for.items():
                for mode in modes:
                    report = fuzz_operation(operation, headers, examples=examples, mode=mode, seed=seed)
                    reports.append((persona, report))
                    if on_report:
                        on_report(persona, report)
    return reports


def state_machine(headers: dict[str, str], report: OperationReport) -> Any:
    """schemathesis' state machine over the document's links, calling as `headers` and recording into `report`."""
    base = load_schema().as_state_machine()

    class Machine(base):  # type: ignore[misc,valid-type]
        # Each scenario starts from the same data: the writes of the last one are rolled back (and the throttles'
        # counters cleared). Otherwise a scenario's answers, and so the links it may follow, depend on what the
        # scenarios before it left behind, and hypothesis stops with "Inconsistent data generation".
        def setup(self) -> None:
            cache.clear()
            self._scenario = transaction.atomic()
            self._scenario.__enter__()

        def teardown(self) -> None:
            transaction.set_rollback(True)
            self._scenario.__exit__(None, None, None)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": headers}

        def validate_response(self, response: Any, case: Any, additional_checks: Any = None, **kw: Any) -> None:
            report.tried += 1
            report.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (AssertionError, BaseExceptionGroup) as exc:
                _record(report, exc, case)

    return Machine


def fuzz_stateful(
    headers: dict[str, str], *, scenarios: int, steps: int = 10, seed: int | None = None
) -> OperationReport:
    """Follow the document's links: create something, then read and act on it with the id the answer gave."""
    report = OperationReport("stateful (links)")
    Machine = state_machine(headers, report)
    options = settings(
        max_examples=scenarios,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    machine = Machine if seed is None else hypothesis.seed(seed)(Machine)
    with in_test_transaction():
        try:
            machine.run(settings=options)
        except Exception as exc:  # a crash in the app itself
            report.failures.setdefault(_summary(exc), str(exc)[:1500])
    return report


def bearer(username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {do_issue_token(User.objects.get(username=username))}"}


def seed() -> dict[str, dict[str, str]]:
    """The demo's two banks, with every kind of object in them, and the callers: a community's staff
    member and a head office's admin (the demo's logins)."""
    generate(members=DEMO_MEMBERS, seed=1)
    return {persona: bearer(persona) for persona in FUZZED_PERSONAS}


def format_failures(reports: list[tuple[str, OperationReport]]) -> str:
    lines = []
    for persona, report in reports:
        for key, example in report.failures.items():
            lines.append(f"{report.label} as {persona}: {key}\n    {example}")
    return "\n".join(lines)


EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))
STATEFUL_SCENARIOS = int(os.environ.get("FUZZ_SCENARIOS", "10"))


@pytest.mark.fuzz
def test_every_operation_answers_within_its_schema(db: None) -> None:
    reports = fuzz_all(seed(), examples=EXAMPLES)
    tried = sum(r.tried for _p, r in reports)
    print(f"fuzz: {tried} examples over {len(reports)} operation × persona × mode runs")
    assert tried > 0
    failed = [(p, r) for p, r in reports if r.failures]
    assert not failed, f"{len(failed)} operations failed:\n" + format_failures(failed)


@pytest.mark.fuzz
def test_following_links_between_operations(db: None) -> None:
    callers = seed()
    reports = [(p, fuzz_stateful(h, scenarios=STATEFUL_SCENARIOS)) for p, h in callers.items()]
    for persona, report in reports:
        print(f"fuzz stateful as {persona}: {report.tried} calls, {dict(report.statuses)}")
        assert report.tried > 0
    failed = [(p, r) for p, r in reports if r.failures]
    assert not failed, format_failures(failed)


@pytest.mark.fuzz
def test_the_document_declares_errors_and_links(db: None) -> None:
    raw = load_schema().raw_schema
    ops = [
        (path, m, op)
        for path, item in raw["paths"].items()
        for m, op in item.items()
        if m in ("get", "post", "patch", "put")
    ]
    assert ops
    for path, method, op in ops:
        for status in ("400", "401", "403", "404", "409", "422"):
            assert status in op["responses"], f"{method} {path} does not declare {status}"
    links = {
        (path, name)
        for path, method, op in ops
        for response in op["responses"].values()
        for name in response.get("links", {})
    }
    for expected in [
        ("/api/v1/members", "members_api_get_member"),
        ("/api/v1/orders", "orders_api_get_order"),
        ("/api/v1/orders/{order_id}/dispatch", "order_accept"),
        ("/api/v1/transfers", "ledger_api_get_transaction"),
    ]:
        assert expected in links, expected


def _schema_definitions() -> Iterator[tuple[str, str, dict[str, Any], str]]:
    """(mode, name, JSON schema, where) of every model the API's operations read or answer, nested ones too."""
    from ninja.schema import NinjaGenerateJsonSchema

    from timebank.api_root import api

    ref = "#/components/schemas/{model}"
    for _prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                where = f"{operation.view_func.__module__}.{operation.view_func.__name__} ({path})"
                wanted: list[tuple[str, Any]] = [("validation", m) for m in operation.models]
                wanted += [("serialization", m) for m in operation.response_models.values() if isinstance(m, type)]
                for mode, model in wanted:
                    schema = model.model_json_schema(
                        ref_template=ref, by_alias=True, mode=mode, schema_generator=NinjaGenerateJsonSchema
                    )
                    for name, definition in schema.get("$defs", {}).items():
                        yield mode, name, definition, where


def test_no_two_schemas_share_a_name() -> None:
    """django-ninja files every model under its class name in the document's components: two different
    classes of one name (say `RulesOut` in two apps) silently replace each other, and the document then
    describes one operation with another's schema."""
    seen: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
    clashes: set[str] = set()
    for mode, name, definition, where in _schema_definitions():
        first = seen.setdefault((mode, name), (definition, where))
        if first[0] != definition:
            clashes.add(f"{name}: {first[1]} and {where} (rename one of the classes)")
    assert not clashes, "\n".join(sorted(clashes))
