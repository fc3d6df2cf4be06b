"""Issue 13: every write operation of the API has a page, for a role allowed to do it.

Generated from the OpenAPI document: each write operation (POST/PUT/PATCH/DELETE) must be in exactly one of
- PAGES: the url names of the pages that perform it, with a persona (tests/conftest.py's world) allowed to do it;
- API_ONLY: operations that are for programs, not people (tokens), each with its reason;
- KNOWN_MISSING: operations that have no page yet, named honestly, each with who would use the page.

A new endpoint without a page fails here until it is classified. The checks:
- every url name in PAGES resolves, and at least one of its views calls the action the endpoint calls (found by
  reading the sources: the endpoint's `do_*` functions, including those it reaches through a closure, a table or a
  helper of its module, against the pages' ones), unless SAME_WORK says why the page does the same work another way;
- no page calls the action of a KNOWN_MISSING operation (other than a page listed in PAGES for another operation
  with the same action): once a page performs it, move the entry to PAGES;
- a sample of the pages answers GET 200 to the persona named, with the form that performs the operation.
"""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import World, web_client

API = "/api/v1"

# operation ("METHOD path" as in the OpenAPI document) -> (a persona allowed to do it, the url names doing it).
PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    # orgs: passwords, staff logins, the org tree, rules
    "POST /api/v1/me/password": ("volunteer", ("web:password",)),
    "POST /api/v1/orgs": ("branch_admin", ("web:org_tree",)),
    "PATCH /api/v1/orgs/{org_id}/rules": ("head_office_admin", ("web:rules",)),
    "POST /api/v1/staff": ("branch_admin", ("web:staff_logins",)),
    "PATCH /api/v1/staff/{staff_id}": ("branch_admin", ("web:staff_login",)),
    "POST /api/v1/staff/{staff_id}/password-reset": ("branch_admin", ("web:staff_login_reset",)),
    "POST /api/v1/staff/{staff_id}/handover": ("branch_admin", ("web:staff_handover",)),
    # members
    "POST /api/v1/members": ("staff", ("web:staff_member_new",)),
    "POST /api/v1/register": ("anonymous", ("web:join",)),
    "PATCH /api/v1/members/{member_id}": ("staff", ("web:staff_member_edit", "web:staff_member_login")),
    "POST /api/v1/members/{member_id}/approve": ("staff", ("web:staff_member_approve",)),
    "POST /api/v1/members/{member_id}/suspend": ("staff", ("web:staff_member_status",)),
    "POST /api/v1/members/{member_id}/reactivate": ("staff", ("web:staff_member_status",)),
    "POST /api/v1/members/{member_id}/leave": ("staff", ("web:staff_member_status",)),
    "POST /api/v1/members/{member_id}/relatives": ("staff", ("web:staff_member_relative",)),
    "POST /api/v1/members/{member_id}/password-reset": ("staff", ("web:staff_member_password_reset",)),
    "POST /api/v1/members/{member_id}/consents": ("staff", ("web:staff_member_consent",)),
    "POST /api/v1/me/consents": ("volunteer", ("exports:my_consents",)),
    "POST /api/v1/members/{member_id}/anonymise": ("staff", ("web:staff_member_anonymise",)),
    # ledger
    "POST /api/v1/transfers": ("volunteer", ("web:give",)),
    "POST /api/v1/federation/transfers": ("volunteer", ("web:federation_send",)),
    # Moving home across nodes (跨城迁移): staff ask from the member's page; the receiving head office decides on
    # the move's page, linked from its federation page (federation/views_moves.py).
    "POST /api/v1/federation/moves": ("staff", ("web:federation_member_moves",)),
    "POST /api/v1/federation/moves/{federated_move_id}/approve": (
        "head_office_admin",
        ("web:federation_move_approve",),
    ),
    "POST /api/v1/federation/moves/{federated_move_id}/reject": ("head_office_admin", ("web:federation_move_reject",)),
    "POST /api/v1/ledger/adjustments": ("staff", ("web:staff_adjustment",)),
    "POST /api/v1/ledger/reversals": ("staff", ("web:staff_transaction_reverse",)),
    "POST /api/v1/ledger/withdrawals": ("staff", ("web:staff_withdrawal",)),
    "POST /api/v1/settlements": ("head_office_admin", ("web:settlements", "web:settlement_resume")),
    "POST /api/v1/approvals/{approval_id}/approve": ("head_office_admin", ("approvals:approve",)),
    "POST /api/v1/approvals/{approval_id}/reject": ("head_office_admin", ("approvals:reject",)),
    "POST /api/v1/interbank-moves": ("staff", ("web:interbank_member",)),
    "POST /api/v1/interbank-moves/{move_id}/approve": ("head_office_admin", ("web:interbank_move_approve",)),
    "POST /api/v1/interbank-moves/{move_id}/reject": ("head_office_admin", ("web:interbank_move_reject",)),
    # catalogue
    "POST /api/v1/catalogue/items": ("head_office_admin", ("web:catalogue",)),
    "PUT /api/v1/orgs/{org_id}/menu": ("staff", ("web:menu_entry",)),
    # orders
    "POST /api/v1/orders": (
        "recipient",
        ("web:order_confirm", "web:order_emergency", "web:hotline_order"),
    ),
    "POST /api/v1/orders/{order_id}/dispatch": ("staff", ("web:staff_order_action", "web:hotline_dispatch")),
    "POST /api/v1/orders/{order_id}/take": ("volunteer", ("web:volunteer_action",)),
    # Also for the volunteer in paper mode: a day's filled sign-in sheet, entered on one page (orders/views_sheets.py).
    "POST /api/v1/orders/{order_id}/accept": ("volunteer", ("web:volunteer_action", "web:staff_order_sheet")),
    "POST /api/v1/orders/{order_id}/check-in": ("volunteer", ("web:volunteer_action", "web:staff_order_sheet")),
    "POST /api/v1/orders/{order_id}/check-out": ("volunteer", ("web:volunteer_action", "web:staff_order_sheet")),
    "POST /api/v1/orders/{order_id}/decline": ("volunteer", ("web:volunteer_action",)),
    "POST /api/v1/orders/{order_id}/no-show": ("staff", ("web:staff_order_action",)),
    "POST /api/v1/orders/{order_id}/confirm": ("recipient", ("web:care_action", "web:staff_order_action")),
    "POST /api/v1/orders/{order_id}/review": ("recipient", ("web:care_action",)),
    "POST /api/v1/orders/{order_id}/cancel": ("recipient", ("web:care_action", "web:staff_order_action")),
    "POST /api/v1/orders/{order_id}/dispute": ("recipient", ("web:care_action",)),
    "POST /api/v1/service-records": ("staff", ("web:staff_service_record",)),
    "POST /api/v1/auth/sms-code": ("anonymous", ("web:sms_login",)),
    # notifications: one's own messages (everyone logged in), and duty (staff and operators)
    "POST /api/v1/notifications/{notification_id}/read": ("volunteer", ("web:inbox_read",)),
    "POST /api/v1/notifications/read-all": ("volunteer", ("web:inbox_read_all",)),
    "POST /api/v1/duty": ("staff", ("web:duty",)),
    # needs: an unknown caller's need and linking an order to a need, from the hotline
    "POST /api/v1/needs": ("operator", ("web:hotline_new_caller_need",)),
    "POST /api/v1/needs/{need_id}/orders": ("operator", ("web:hotline_order", "web:hotline_new_caller_need")),
    # needs: the register's need page (staff of the recipient's home subtree) and the census import
    "PATCH /api/v1/needs/{need_id}": ("staff", ("web:staff_need_edit",)),
    "POST /api/v1/needs/{need_id}/follow-ups": ("staff", ("web:staff_need_follow_up",)),
    "POST /api/v1/needs/{need_id}/close": ("staff", ("web:staff_need_close",)),
    "POST /api/v1/census-imports": ("staff", ("web:census_imports",)),
    "POST /api/v1/census-imports/{import_id}/confirm": ("staff", ("web:census_import",)),
    # hotline
    "POST /api/v1/hotline/calls": ("operator", ("web:hotline_call", "web:hotline_unknown_call")),
    "PATCH /api/v1/hotline/calls/{call_id}": ("operator", ("web:hotline_call_edit",)),
    "POST /api/v1/hotline/return-visits": ("operator", ("web:hotline_return_visit",)),
    "POST /api/v1/hotline/welfare-checks": ("operator", ("web:hotline_welfare_check",)),
    # notices
    "POST /api/v1/notices": ("staff", ("notices:new",)),
    "POST /api/v1/notices/{notice_id}/read": ("volunteer", ("notices:detail",)),
    "POST /api/v1/notices/{notice_id}/withdraw": ("staff", ("notices:withdraw",)),
    # goods
    "POST /api/v1/goods": ("staff", ("web:outlet_add_goods",)),
    "POST /api/v1/goods/{goods_id}/restock": ("staff", ("web:goods_restock",)),
    "POST /api/v1/goods/{goods_id}/count": ("staff", ("web:goods_count",)),
    "POST /api/v1/goods/redemptions": ("volunteer", ("web:my_goods", "web:outlet_redeem")),
    "POST /api/v1/vouchers/{code}/hand-over": ("staff", ("web:voucher_hand_over",)),
    "POST /api/v1/members/{member_id}/card-code/reissue": ("staff", ("web:staff_member_card", "web:card_reissue")),
    "POST /api/v1/members/{member_id}/card-code/unlock": ("staff", ("web:staff_member_card",)),
    # funds
    "POST /api/v1/funds/entries": ("head_office_admin", ("web:funds",)),
    "POST /api/v1/funds/entries/{entry_id}/reverse": ("head_office_admin", ("web:fund_reverse",)),
    "POST /api/v1/funds/in-kind": ("staff", ("web:fund_in_kind",)),
    "POST /api/v1/orders/{order_id}/buy-service": ("staff", ("web:order_buy_service",)),
    # safety
    "POST /api/v1/members/{member_id}/insurance-policies": ("staff", ("web:member_insurance_policy",)),
    "POST /api/v1/insurance-policies/bulk": ("staff", ("web:group_policy",)),
    "POST /api/v1/members/{member_id}/certificates": ("staff", ("web:member_certificate",)),
    "POST /api/v1/trainings": ("staff", ("web:trainings",)),
    "POST /api/v1/trainings/{training_id}/attendance": ("staff", ("web:training",)),
    "POST /api/v1/incidents": ("staff", ("web:incidents",)),
    "POST /api/v1/incidents/{incident_id}/follow-ups": ("staff", ("web:incident_step",)),
    "POST /api/v1/incidents/{incident_id}/decision": ("branch_admin", ("web:incident_step",)),
    "POST /api/v1/incidents/{incident_id}/claim": ("staff", ("web:incident_step",)),
    "POST /api/v1/incidents/{incident_id}/close": ("staff", ("web:incident_step",)),
    "POST /api/v1/incidents/{incident_id}/reopen": ("staff", ("web:incident_step",)),
    # evaluation: the kinds of yearly award (head-office admins)
    "POST /api/v1/orgs/{org_id}/award-kinds": ("head_office_admin", ("evaluation:award_kinds",)),
    "PATCH /api/v1/award-kinds/{kind_id}": ("head_office_admin", ("evaluation:award_kind",)),
    # teams and activities
    "POST /api/v1/teams": ("staff", ("teams:team_new",)),
    "POST /api/v1/teams/{team_id}/members": ("staff", ("teams:team_add_member",)),
    "PATCH /api/v1/teams/{team_id}": ("staff", ("teams:team_edit",)),
    "POST /api/v1/teams/{team_id}/members/{member_id}/remove": ("staff", ("teams:team_remove_member",)),
    "POST /api/v1/activities": ("staff", ("teams:activity_new",)),
    "PATCH /api/v1/activities/{activity_id}": ("staff", ("teams:activity_edit",)),
    "POST /api/v1/activities/{activity_id}/cancel": ("staff", ("teams:activity_cancel",)),
    "POST /api/v1/activities/{activity_id}/signup": ("volunteer", ("teams:activity_signup",)),
    "POST /api/v1/activities/{activity_id}/withdraw": ("volunteer", ("teams:activity_withdraw",)),
    "POST /api/v1/activities/{activity_id}/scan": ("volunteer", ("teams:check",)),
    "POST /api/v1/activities/{activity_id}/attendance": (
        "staff",
        ("teams:activity_attendance", "teams:activity_sheet_entry"),
    ),
    "POST /api/v1/activities/{activity_id}/close": ("staff", ("teams:activity_close",)),
    # evaluation
    "PATCH /api/v1/orgs/{org_id}/evaluation-rules": ("head_office_admin", ("evaluation:settings",)),
    "POST /api/v1/orgs/{org_id}/evaluation-defaults": ("head_office_admin", ("evaluation:settings",)),
    "POST /api/v1/orgs/{org_id}/indicators": ("head_office_admin", ("evaluation:settings",)),
    "PATCH /api/v1/indicators/{indicator_id}": ("head_office_admin", ("evaluation:settings",)),
    "POST /api/v1/assessments": ("assessor", ("evaluation:assess",)),
    "POST /api/v1/self-assessments": ("volunteer", ("evaluation:mine",)),
    "POST /api/v1/complaints": ("staff", ("evaluation:complaints",)),
    "POST /api/v1/complaints/{complaint_id}/follow-ups": ("staff", ("evaluation:complaint",)),
    "POST /api/v1/complaints/{complaint_id}/decide": ("branch_admin", ("evaluation:complaint",)),
    "POST /api/v1/penalties": ("branch_admin", ("evaluation:penalties",)),
    "POST /api/v1/penalties/{penalty_id}/lift": ("branch_admin", ("evaluation:lift",)),
    "POST /api/v1/penalties/{penalty_id}/correction": ("branch_admin", ("evaluation:correction",)),
    "POST /api/v1/award-kinds/{kind_id}/rank": ("head_office_admin", ("evaluation:awards",)),
    "POST /api/v1/awards/{award_id}/confirm": ("head_office_admin", ("evaluation:awards",)),
}

# Pages that do the endpoint's work through another entry point than the endpoint's action (reason given).
SAME_WORK: dict[str, str] = {
    # The page starts the same settlement in the background (ledger.settlement.start_settlement, then the task
    # runs it in batches) so a big bank does not time out a request; the endpoint runs it to completion.
    "POST /api/v1/settlements": "start_settlement",
}

# Operations for programs, not people: no page will perform them.
API_ONLY: dict[str, str] = {
    # A bearer token is for the app and integrations; the pages log in with a session (web:login), which also
    # takes a temporary password once, as the token does.
    "POST /api/v1/auth/token": "issues a bearer token; the pages log in with a session (web:login)",
    # Revoking a bearer token; the pages log out their session (web:logout).
    "POST /api/v1/auth/revoke": "revokes a bearer token; the pages log out with web:logout",
    # Node to node (issue 16): signed by the peer deployment's Ed25519 key, never sent by a person.
    "POST /api/v1/federation/inbox": "messages between nodes, signed by the sending node's key",
    # Registering a peer is a deployment step done once per city pair by the superuser, with the other node's
    # public key exchanged out of band; head-office admins see the peers on web:federation_peers.
    "POST /api/v1/federation/peers": "superuser: register a peer node, a one-off deployment step (keys exchanged "
    "out of band); the peers are shown on web:federation_peers",
}

# Operations without a page yet, with who needs it. Keep this list honest: the test fails when one has a page.
KNOWN_MISSING: dict[str, str] = {}

# A sample: (persona, url of a page, the form action on it that performs the operation).
SAMPLE: list[tuple[str, Callable[[World], str], Callable[[World], str]]] = [
    ("branch_admin", lambda w: "/manage/orgs/", lambda w: "/manage/orgs/"),
    ("branch_admin", lambda w: "/manage/staff/", lambda w: "/manage/staff/"),
    ("branch_admin", lambda w: "/manage/staff/", lambda w: f"/manage/staff/{w.users['staff'].pk}/"),
    ("branch_admin", lambda w: "/manage/staff/", lambda w: f"/manage/staff/{w.users['staff'].pk}/password-reset/"),
    ("head_office_admin", lambda w: f"/bank/{w.bank.pk}/rules/", lambda w: ""),
    ("head_office_admin", lambda w: f"/bank/{w.bank.pk}/catalogue/", lambda w: ""),
    ("head_office_admin", lambda w: f"/bank/{w.bank.pk}/settlements/", lambda w: ""),
    ("head_office_admin", lambda w: f"/evaluation/settings/{w.bank.pk}/", lambda w: ""),
    ("staff", lambda w: "/staff/members/new/", lambda w: ""),
    ("staff", lambda w: f"/staff/members/{w.members['recipient'].pk}/", lambda w: "/relatives/"),
    ("staff", lambda w: "/staff/service-records/new/", lambda w: ""),
    ("staff", lambda w: "/staff/adjustments/new/", lambda w: ""),
    ("staff", lambda w: "/staff/withdrawals/new/", lambda w: "/staff/withdrawals/new/"),
    ("staff", lambda w: f"/staff/members/{w.members['volunteer'].pk}/interbank/", lambda w: "/interbank/"),
    ("staff", lambda w: "/safety/trainings/", lambda w: ""),
    ("staff", lambda w: f"/staff/members/{w.members['volunteer'].pk}/safety/", lambda w: "/insurance-policies/"),
    ("staff", lambda w: f"/staff/members/{w.members['volunteer'].pk}/safety/", lambda w: "/certificates/"),
    ("staff", lambda w: "/safety/insurance/group/", lambda w: "/safety/insurance/group/"),
    ("staff", lambda w: "/safety/incidents/", lambda w: "/safety/incidents/"),
    ("staff", lambda w: "/teams/new/", lambda w: ""),
    ("staff", lambda w: "/activities/new/", lambda w: ""),
    ("staff", lambda w: "/notices/new/", lambda w: ""),
    ("staff", lambda w: "/staff/census-imports/", lambda w: ""),
    ("operator", lambda w: f"/hotline/callers/{w.members['recipient'].pk}/", lambda w: "/order/"),
    ("staff", lambda w: "/staff/duty/", lambda w: "/staff/duty/"),
    ("staff", lambda w: f"/funds/{w.community.pk}/in-kind/", lambda w: f"/funds/{w.community.pk}/in-kind/"),
    ("volunteer", lambda w: "/me/give/", lambda w: ""),
    ("volunteer", lambda w: "/me/password/", lambda w: ""),
    ("anonymous", lambda w: "/join/", lambda w: ""),
]


# ---------------------------------------------------------------------------------------------
# Reading the sources: which actions an endpoint and a page call.
# ---------------------------------------------------------------------------------------------

ACTION = re.compile(r"\b(do_\w+)\b")
NAME = re.compile(r"\b([A-Za-z_]\w*)\b")


def _unwrap(func: Any) -> Any:
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    return func


def _is_action(obj: Any) -> bool:
    return inspect.isfunction(obj) and _unwrap(obj).__name__.startswith("do_")


def _in_table(value: Any, depth: int = 2) -> Iterator[Any]:
    """Actions held in a dict, list or tuple (e.g. STATUS_ACTIONS = {"suspend": (do_suspend, ...)})."""
    if _is_action(value):
        yield _unwrap(value)
    elif depth and isinstance(value, dict):
        for v in value.values():
            yield from _in_table(v, depth - 1)
    elif depth and isinstance(value, (list, tuple)):
        for v in value:
            yield from _in_table(v, depth - 1)


def _resolve(name: str, scope: dict[str, Any]) -> Iterator[Any]:
    """The action `name` names in a module's globals, directly or as an attribute of an imported module."""
    obj = scope.get(name)
    if _is_action(obj):
        yield _unwrap(obj)
        return
    for value in list(scope.values()):
        if isinstance(value, types.ModuleType) and _is_action(getattr(value, name, None)):
            yield _unwrap(getattr(value, name))


def actions_of(func: Any, depth: int = 3, seen: set[Any] | None = None) -> set[Any]:
    """The actions a view or handler calls: named in its source, held in its closure, in a table of its module,
    or called by a helper function of its module (`depth` levels down)."""
    seen = set() if seen is None else seen
    func = _unwrap(func)
    if not inspect.isfunction(func) or func in seen:
        return set()
    seen.add(func)
    found: set[Any] = set()
    for cell in func.__closure__ or ():
        try:
            found.update(_in_table(cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    try:
        source = inspect.getsource(func)
    except (OSError, TypeError):
        return found
    scope = func.__globals__
    for name in set(ACTION.findall(source)):
        found.update(_resolve(name, scope))
    for name in set(NAME.findall(source)):
        value = scope.get(name)
        if isinstance(value, (dict, list, tuple)):
            found.update(_in_table(value))
        elif depth and inspect.isfunction(value) and value.__module__ == func.__module__ and not _is_action(value):
            found |= actions_of(value, depth - 1, seen)
    return found


@cache
def write_operations() -> dict[str, frozenset[Any]]:
    """Every write operation of the OpenAPI document -> the actions its handler calls."""
    from timebank.api_root import api

    documented = {
        f"{method.upper()} {path}"
        for path, methods in api.get_openapi_schema()["paths"].items()
        for method in methods
        if method in ("post", "put", "patch", "delete")
    }
    handlers: dict[str, frozenset[Any]] = {}
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                for method in operation.methods:
                    key = f"{method.upper()} {API}{prefix.rstrip('/')}{path}"
                    if key in documented:
                        # Its own actions (named in it, its closure or a table it names); only a handler that
                        # names none is read through its module's helpers (shared helpers name other actions).
                        own = actions_of(operation.view_func, depth=0) or actions_of(operation.view_func)
                        handlers[key] = frozenset(own)
    assert set(handlers) == documented, sorted(documented ^ set(handlers))
    return handlers


def _patterns(resolver: URLResolver, namespace: str = "") -> Iterator[tuple[str, Any]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if str(entry.pattern).startswith(("admin/", "api/")):
                continue
            inner = f"{namespace}:{entry.namespace}" if namespace and entry.namespace else entry.namespace or namespace
            yield from _patterns(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield (f"{namespace}:{entry.name}" if namespace else entry.name), entry.callback


@cache
def pages() -> dict[str, frozenset[Any]]:
    """Every page's url name -> the actions its view calls."""
    found: dict[str, set[Any]] = {}
    for name, callback in _patterns(get_resolver()):
        found.setdefault(name, set()).update(actions_of(callback))
    return {name: frozenset(actions) for name, actions in found.items()}


def _names(actions: frozenset[Any] | set[Any]) -> list[str]:
    return sorted(f"{a.__module__}.{a.__name__}" for a in actions)


# ---------------------------------------------------------------------------------------------
# The tests.
# ---------------------------------------------------------------------------------------------


def test_every_write_operation_has_a_page_or_a_reason() -> None:
    ops = set(write_operations())
    lists = {"PAGES": set(PAGES), "API_ONLY": set(API_ONLY), "KNOWN_MISSING": set(KNOWN_MISSING)}
    unclassified = sorted(ops - set().union(*lists.values()))
    assert not unclassified, (
        "These write operations have no page. Build one (reachable from the role's home, guarded by the "
        "endpoint's access function, calling its action) and add it to PAGES in "
        "tests/test_every_write_has_a_page.py, or list it in KNOWN_MISSING (or API_ONLY, with the reason):\n"
        + "\n".join(unclassified)
    )
    twice = sorted(op for op in ops if sum(op in listed for listed in lists.values()) > 1)
    assert not twice, f"In more than one list: {twice}"
    stale = sorted(set().union(*lists.values()) - ops)
    assert not stale, f"No longer in the OpenAPI document: {stale}"
    assert set(SAME_WORK) <= set(PAGES)
    print(f"\nwrite operations: {len(ops)}; with a page: {len(PAGES)}; API only: {len(API_ONLY)}; ", end="")
    print(f"KNOWN_MISSING: {len(KNOWN_MISSING)}")


def test_each_page_named_exists_and_calls_the_endpoints_action() -> None:
    ops, views = write_operations(), pages()
    problems: list[str] = []
    for op, (_persona, names) in sorted(PAGES.items()):
        unknown = [n for n in names if n not in views]
        if unknown:
            problems.append(f"{op}: no page named {unknown}")
            continue
        expected = ops[op]
        called = frozenset().union(*(views[n] for n in names))
        if op in SAME_WORK:
            continue
        if not expected:
            problems.append(f"{op}: its handler's action was not found; name it in SAME_WORK with the reason")
        elif not expected & called:
            problems.append(f"{op}: {list(names)} call {_names(called)}, not the endpoint's {_names(expected)}")
    assert problems == [], "\n".join(problems)


def test_the_known_missing_list_is_honest() -> None:
    """A KNOWN_MISSING operation whose action a page now calls has a page: move it to PAGES."""
    ops, views = write_operations(), pages()
    problems: list[str] = []
    for op in sorted(KNOWN_MISSING):
        actions = ops[op]
        if not actions:
            problems.append(f"{op}: its handler's action was not found, so this entry cannot be checked")
            continue
        # A page listed for another operation with the same action (one action, two endpoints) does not count.
        shared = {n for other, (_p, names) in PAGES.items() if ops[other] & actions for n in names}
        doing = sorted(name for name, called in views.items() if called & actions and name not in shared)
        if doing:
            problems.append(f"{op} has a page now ({doing}): move it from KNOWN_MISSING to PAGES")
    assert problems == [], "\n".join(problems)


def test_personas_named_in_pages_exist() -> None:
    personas = {p for p, _names in PAGES.values()}
    known = {
        "anonymous",
        "superuser",
        "head_office_admin",
        "branch_admin",
        "staff",
        "operator",
        "assessor",
        "volunteer",
        "recipient",
    }
    assert personas <= known, personas - known


@pytest.mark.parametrize(("persona", "url", "action"), SAMPLE, ids=[f"{p}-{i}" for i, (p, _u, _a) in enumerate(SAMPLE)])
def test_a_sample_of_the_pages_opens_for_the_role_with_its_form(
    world: World, persona: str, url: Callable[[World], str], action: Callable[[World], str]
) -> None:
    client = web_client(None if persona == "anonymous" else world.users[persona])
    resp = client.get(url(world))
    assert resp.status_code == 200, (url(world), resp.status_code)
    html = resp.content.decode()
    forms = re.findall(r'<form[^>]*method="post"[^>]*>', html, flags=re.IGNORECASE)
    assert forms, f"{url(world)}: no form for {persona}"
    wanted = action(world)
    if wanted:
        assert any(wanted in f for f in forms), (wanted, forms)


def test_the_size_of_known_missing_is_reported() -> None:
    """Printed with -s: the operations still without a page."""
    print(f"\nKNOWN_MISSING ({len(KNOWN_MISSING)}):")
    for op, who in sorted(KNOWN_MISSING.items()):
        print(f"  {op}  — {who}")
    assert all(who.strip() for who in KNOWN_MISSING.values())
