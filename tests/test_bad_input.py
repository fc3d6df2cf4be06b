"""Bad input on every endpoint: 4xx with the contract's error body, and nothing changes.

Each endpoint is called by a persona who is allowed to use it, with one thing wrong at a time, so
the refusal is about the input and not about access. Also: ID numbers, duplicates, idempotency
keys, and the login lockout.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import World, error_code, make_member, new_id_number
from tests.test_access_matrix import error_problem, fund, short, snapshot
from timebank.ledger.actions import do_adjustment, do_reversal
from timebank.ledger.models import Account, Transaction
from timebank.orgs.models import Rules

MISSING = object()

# Wrong values, by what the field should hold.
WRONG_ID: dict[str, Any] = {
    "string": "1",
    "word": "abc",
    "float": 1.5,
    "bool": True,
    "list": [1],
    "object": {"id": 1},
    "negative": -1,
    "zero": 0,
    "beyond_bigint": 10**20,
    "2**63": 2**63,
}
WRONG_MINUTES: dict[str, Any] = {
    "string": "30",
    "float": 30.0,
    "fraction": 0.5,
    "bool": True,
    "list": [30],
    "object": {"minutes": 30},
    "zero": 0,
    "huge": 10**30,
    "2**63": 2**63,
    "2**62": 2**62,
    "null": None,
    "missing": MISSING,
}
WRONG_TEXT: dict[str, Any] = {
    "int": 123,
    "bool": True,
    "list": ["a"],
    "object": {"a": "b"},
    "nul": "a\x00b",
    "long": "长" * 10_000,
}
WRONG_KEY: dict[str, Any] = {
    "65_chars": "k" * 65,
    "empty": "",
    "int": 1,
    "list": ["k"],
    "nul": "k\x00",
    "long": "k" * 10_000,
}
BAD_JSON: dict[str, str] = {
    "malformed": "{bad",
    "truncated": '{"name": ',
    "empty": "",
    "null": "null",
    "number": "1",
    "string": '"x"',
    "array": "[]",
    "nan": '{"x": NaN}',
}
ANY_4XX = frozenset(range(400, 500)) - {401}
INVALID = frozenset({400, 422})
UNKNOWN = frozenset({404})
OUTSIDE = frozenset({403, 404})
CONFLICT = frozenset({409})


@dataclass
class Case:
    label: str
    method: str
    url: str
    body: Any = None
    raw: str | None = None
    status: frozenset[int] = INVALID
    code: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def with_field(body: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    out = dict(body)
    if value is MISSING:
        out.pop(name, None)
    else:
        out[name] = value
    return out


def body_cases(method: str, url: str, valid: dict[str, Any]) -> Iterator[Case]:
    """Malformed bodies: bad JSON, a JSON array of the valid body, and so on."""
    for label, raw in BAD_JSON.items():
        yield Case(f"raw {label}", method, url, raw=raw)
    yield Case("array of the valid body", method, url, raw=json.dumps([valid]))
    if method == "post":
        # (A PATCH ignores unknown fields, as every endpoint does: that is an empty patch, not bad input.)
        yield Case("valid body nested", method, url, body={"payload": valid})


def field_cases(
    method: str,
    url: str,
    valid: dict[str, Any],
    name: str,
    wrong: dict[str, Any],
    status: frozenset[int] = INVALID,
) -> Iterator[Case]:
    for label, value in wrong.items():
        yield Case(f"{name}={label}", method, url, body=with_field(valid, name, value), status=status)


def path_cases(method: str, template: str, body: Any = None, *, unknown: frozenset[int] = UNKNOWN) -> Iterator[Case]:
    """Bad ids in the URL."""
    for label, value in {
        "word": "abc",
        "float": "1.5",
        "negative": "-1",
        "zero": "0",
        "beyond_bigint": str(10**20),
        "2**63": str(2**63),
        "nul": "1%00",
    }.items():
        yield Case(f"path id {label}", method, template.format(id=value), body=body, status=INVALID | UNKNOWN)
    yield Case("path id unknown", method, template.format(id=999999), body=body, status=unknown)


def page_cases(url: str) -> Iterator[Case]:
    def b64(text: str) -> str:
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")

    pages: dict[str, dict[str, Any]] = {
        "limit 0": {"limit": 0},
        "limit 201": {"limit": 201},
        "limit -1": {"limit": -1},
        "limit word": {"limit": "ten"},
        "limit float": {"limit": "1.5"},
        "limit huge": {"limit": str(10**30)},
        "cursor garbage": {"cursor": "!!!"},
        "cursor not base64": {"cursor": "é"},
        "cursor too long": {"cursor": "a" * 101},
        "cursor k0": {"cursor": b64("k0")},
        "cursor other prefix": {"cursor": b64("x5")},
        "cursor beyond bigint": {"cursor": b64("k" + "9" * 30)},
        "cursor not a number": {"cursor": b64("k1e5")},
        "cursor nul": {"cursor": "\x00"},
    }
    for label, params in pages.items():
        yield Case(label, "get", url, params=params)


def run_cases(world: World, persona: str, cases: Iterator[Case] | list[Case]) -> list[str]:
    problems: list[str] = []
    api = world.api(persona)
    before = snapshot()
    for case in cases:
        if case.method == "get":
            resp = api.get(case.url, case.params or None)
        else:
            resp = api.call(case.method, case.url, case.body, raw=case.raw)
        where = f"{case.method.upper()} {case.url} [{case.label}] as {persona}"
        if resp.status_code not in case.status:
            problems.append(f"{where}: expected {sorted(case.status)}, got {short(resp)}")
        elif bad := error_problem(resp):
            problems.append(f"{where}: {bad}")
        elif case.code and error_code(resp) != case.code:
            problems.append(f"{where}: expected code {case.code}, got {error_code(resp)}")
        after = snapshot()
        if after != before:
            problems.append(f"{where}: refused ({resp.status_code}) but changed the database")
        before = after  # each case should leave the database as it found it
    return problems


def assert_none(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems)


def b_tx(world: World) -> Transaction:
    tx, _ = do_adjustment(
        world.users["superuser"], member=world.members["stranger"], minutes=60, bucket="earned", reason="b"
    )
    assert isinstance(tx, Transaction)  # 60 minutes post at once (below the approval threshold)
    return tx


# ---------------------------------------------------------------------------------------------
# Orgs, rules, staff, login.
# ---------------------------------------------------------------------------------------------


def test_create_org_bad_input(world: World) -> None:
    url = "/api/v1/orgs"
    valid = {"name": "新社区", "kind": "sub_branch", "parent_id": world.branch.pk}
    cases = [
        *body_cases("post", url, valid),
        *field_cases("post", url, valid, "name", {**WRONG_TEXT, "empty": "", "blank": "   ", "missing": MISSING}),
        *field_cases("post", url, valid, "kind", {"unknown": "city", "int": 1, "null": None, "missing": MISSING}),
        *field_cases("post", url, valid, "parent_id", WRONG_ID),
        Case("parent unknown", "post", url, with_field(valid, "parent_id", 999999), status=UNKNOWN),
        Case("parent in bank B", "post", url, with_field(valid, "parent_id", world.other_community.pk), status=OUTSIDE),
        Case("outlet under a head office", "post", url, {**valid, "kind": "outlet", "parent_id": world.bank.pk}),
        Case("sub-branch under an outlet", "post", url, {**valid, "parent_id": world.outlet.pk}),
        Case("branch without a parent", "post", url, {**valid, "kind": "branch", "parent_id": None}),
    ]
    problems = run_cases(world, "head_office_admin", cases)
    problems += run_cases(
        world,
        "superuser",
        [
            Case(
                "head office with a parent",
                "post",
                url,
                {"name": "x", "kind": "head_office", "parent_id": world.bank.pk},
            ),
            Case("branch without a parent", "post", url, {"name": "x", "kind": "branch"}),
        ],
    )
    assert_none(problems)


def test_org_reads_bad_input(world: World) -> None:
    cases = [
        *page_cases("/api/v1/orgs"),
        Case("kind unknown", "get", "/api/v1/orgs", params={"kind": "city"}),
        Case("parent_id word", "get", "/api/v1/orgs", params={"parent_id": "x"}),
        Case("parent_id beyond bigint", "get", "/api/v1/orgs", params={"parent_id": 10**20}),
        *path_cases("get", "/api/v1/orgs/{id}"),
        *path_cases("get", "/api/v1/orgs/{id}/rules"),
        Case("rules of a community", "get", f"/api/v1/orgs/{world.community.pk}/rules", status=UNKNOWN | OUTSIDE),
    ]
    assert_none(run_cases(world, "head_office_admin", cases))


def test_patch_rules_bad_input(world: World) -> None:
    url = f"/api/v1/orgs/{world.bank.pk}/rules"
    valid: dict[str, Any] = {"goods_share_percent": 40}
    ok_mult = {"ordinary": 1, "technical": 2, "professional": 3}
    percent = {"string": "50", "float": 50.5, "bool": True, "list": [50], "negative": -1, "over": 101, "huge": 10**30}
    cases = [
        *body_cases("patch", url, valid),
        *path_cases("patch", "/api/v1/orgs/{id}/rules", valid),
        Case("rules of a community", "patch", f"/api/v1/orgs/{world.community.pk}/rules", valid, status=UNKNOWN),
        *field_cases("patch", url, valid, "goods_share_percent", {**percent, "null": None}),
        *field_cases("patch", url, {}, "overdraft_minutes", {**percent, "over": 10**6, "null": None}),
        *field_cases("patch", url, {}, "reserve_min_age", {**percent, "over": 121}),
        *field_cases("patch", url, {}, "settlement_period", {"unknown": "month", "int": 6, "null": None}),
        *field_cases(
            "patch", url, {}, "require_insurance_to_dispatch", {"word": "maybe", "list": [True], "null": None}
        ),
        *field_cases(
            "patch",
            url,
            {},
            "star_thresholds_hours",
            {
                "empty": [],
                "decreasing": [300, 100],
                "repeated": [100, 100],
                "words": ["a"],
                "zero": [0, 100],
                "huge": [10**30],
                "object": {"a": 1},
                "null": None,
                "too_many": list(range(1, 30)),
            },
        ),
        *field_cases(
            "patch",
            url,
            {},
            "multipliers",
            {
                "list": [1, 2, 3],
                "string": "1,2,3",
                "null": None,
                "missing_tier": {"ordinary": 1, "technical": 2},
                "zero": {**ok_mult, "ordinary": 0},
                "negative": {**ok_mult, "ordinary": -1},
                "word": {**ok_mult, "ordinary": "x"},
                "huge": {**ok_mult, "ordinary": 10**30},
                "too_precise": {**ok_mult, "ordinary": 1.23456},
                "tiny": {**ok_mult, "ordinary": 1e-300},
                "nested": {**ok_mult, "ordinary": {"x": 1}},
            },
        ),
        Case(
            "multiplier NaN", "patch", url, raw='{"multipliers": {"ordinary": NaN, "technical": 2, "professional": 3}}'
        ),
        Case(
            "multiplier Infinity",
            "patch",
            url,
            raw='{"multipliers": {"ordinary": 1, "technical": Infinity, "professional": 3}}',
        ),
    ]
    assert_none(run_cases(world, "head_office_admin", cases))


def test_create_staff_bad_input(world: World) -> None:
    url = "/api/v1/staff"
    valid = {
        "username": "new-one",
        "password": "pass-word-9",
        "name": "新人",
        "org_id": world.community.pk,
        "role": "staff",
    }
    cases = [
        *body_cases("post", url, valid),
        *field_cases("post", url, valid, "username", {**WRONG_TEXT, "empty": "", "blank": "  ", "too_long": "u" * 151}),
        *field_cases(
            "post", url, valid, "password", {**WRONG_TEXT, "empty": "", "short": "abc", "too_long": "p" * 129}
        ),
        *field_cases("post", url, valid, "name", {**WRONG_TEXT, "empty": "", "blank": "   ", "missing": MISSING}),
        *field_cases("post", url, valid, "org_id", WRONG_ID),
        *field_cases("post", url, valid, "role", {"unknown": "root", "superuser": "superuser", "int": 1, "null": None}),
        Case("org unknown", "post", url, with_field(valid, "org_id", 999999), status=UNKNOWN),
        Case("org in bank B", "post", url, with_field(valid, "org_id", world.other_community.pk), status=OUTSIDE),
        Case("role at the wrong kind of org", "post", url, {**valid, "role": "head_office_admin"}),
        Case("branch admin at a community", "post", url, {**valid, "role": "branch_admin"}),
        Case("username taken", "post", url, {**valid, "username": "staff"}, status=CONFLICT, code="username_taken"),
        Case("member's username taken", "post", url, {**valid, "username": "stranger"}, status=CONFLICT),
        # Validation (422) comes before conflicts (409).
        Case("username taken and weak password", "post", url, {**valid, "username": "staff", "password": "abc"}),
    ]
    assert_none(run_cases(world, "head_office_admin", cases))


def test_login_bad_input(world: World) -> None:
    url = "/api/v1/auth/token"
    valid = {"username": "volunteer", "password": "pass-word-1"}
    cases = [
        *body_cases("post", url, valid),
        *field_cases("post", url, valid, "username", {**WRONG_TEXT, "empty": "", "missing": MISSING}),
        *field_cases("post", url, valid, "password", {**WRONG_TEXT, "empty": "", "missing": MISSING}),
    ]
    assert_none(run_cases(world, "anonymous", cases))
    assert world.api("anonymous").post(url, valid).status_code == 200


def test_login_lockout(world: World) -> None:
    url = "/api/v1/auth/token"
    anon = world.api("anonymous")
    assert anon.post(url, {"username": "volunteer", "password": "pass-word-1"}).status_code == 200
    for attempt in range(10):
        resp = anon.post(url, {"username": "volunteer", "password": f"wrong-{attempt}"})
        assert resp.status_code in (401, 403, 429), short(resp)
        assert error_problem(resp) is None, error_problem(resp)
    resp = anon.post(url, {"username": "volunteer", "password": "pass-word-1"})
    assert resp.status_code in (403, 429), short(resp)
    assert error_problem(resp) is None, error_problem(resp)
    assert "token" not in resp.json()
    # Only that username is locked.
    assert anon.post(url, {"username": "recipient", "password": "pass-word-1"}).status_code == 200
    # The tokens issued before keep working (the lock is on logging in).
    assert world.api("volunteer").get("/api/v1/me").status_code == 200


# ---------------------------------------------------------------------------------------------
# Members.
# ---------------------------------------------------------------------------------------------

BAD_ID_NUMBERS: dict[str, Any] = {
    "too_short": "37040519550301",
    "too_long": "3704051955030112345",
    "letters": "37040519550301ABCD",
    "bad_birth_date": "370405195513011230",
    "nul": "37040519550301123\x00",
    "int": 370405195503011234,
}


def member_field_cases(method: str, url: str, valid: dict[str, Any], world: World) -> Iterator[Case]:
    yield from body_cases(method, url, valid)
    yield from field_cases(
        method, url, valid, "name", {**WRONG_TEXT, "empty": "", "blank": "   ", "too_long": "名" * 51}
    )
    yield from field_cases(method, url, valid, "phone", {**WRONG_TEXT, "letters": "call me", "too_long": "1" * 21})
    yield from field_cases(
        method,
        url,
        valid,
        "birth_date",
        {
            "garbage": "yesterday",
            "month_13": "1950-13-01",
            "feb_30": "1950-02-30",
            "future": "2999-01-01",
            "too_old": "1800-01-01",
            "list": ["1950-01-01"],
            "nul": "1950-01-01\x00",
        },
    )
    yield from field_cases(method, url, valid, "gender", {"unknown": "other", "int": 1, "list": ["male"]})
    yield from field_cases(method, url, valid, "id_number", BAD_ID_NUMBERS)
    yield from field_cases(method, url, valid, "address", {**WRONG_TEXT, "too_long": "址" * 201})
    yield from field_cases(
        method,
        url,
        valid,
        "latitude",
        {"over_90": 91, "over_180": 181, "string": "NaN", "word": "north", "huge": 10**30, "bool": True, "list": [1]},
    )
    yield from field_cases(method, url, valid, "longitude", {"over_180": 181, "string": "inf", "huge": -(10**30)})
    yield Case("latitude 1e400", method, url, raw=json.dumps(valid)[:-1] + ', "latitude": 1e400}')
    yield from field_cases(
        method, url, valid, "roles", {"unknown": ["admin"], "string": "volunteer", "too_many": ["volunteer"] * 3}
    )
    yield from field_cases(method, url, valid, "recipient_categories", {"unknown": ["rich"], "string": "empty_nest"})
    yield from field_cases(
        method,
        url,
        valid,
        "skills",
        {
            "empty_item": [""],
            "blank_item": ["  "],
            "nul_item": ["a\x00"],
            "long_item": ["技" * 51],
            "too_many": ["a"] * 51,
        },
    )
    yield from field_cases(method, url, valid, "occupation", {**WRONG_TEXT, "too_long": "职" * 101})
    yield from field_cases(
        method,
        url,
        valid,
        "availability",
        {"bad_day": {"someday": ["morning"]}, "bad_slot": {"mon": ["night"]}, "list": ["mon"], "string": "mon"},
    )
    yield from field_cases(method, url, valid, "referred_by_id", WRONG_ID)
    yield Case("referrer unknown", method, url, with_field(valid, "referred_by_id", 999999), status=INVALID | UNKNOWN)
    stranger = world.members["stranger"].pk
    yield Case("referrer in bank B", method, url, with_field(valid, "referred_by_id", stranger), status=ANY_4XX)


def test_create_member_bad_input(world: World) -> None:
    url = "/api/v1/members"
    number = new_id_number()
    valid = {"name": "新会员", "home_org_id": world.community.pk, "id_number": number, "phone": "13900000000"}
    login = {"username": "new-member", "password": "pass-word-9"}
    cases = [
        *member_field_cases("post", url, valid, world),
        *field_cases("post", url, valid, "home_org_id", {**WRONG_ID, "null": None, "missing": MISSING}),
        Case("home unknown", "post", url, with_field(valid, "home_org_id", 999999), status=UNKNOWN),
        Case("home in bank B", "post", url, with_field(valid, "home_org_id", world.other_community.pk), status=OUTSIDE),
        Case("name missing", "post", url, with_field(valid, "name", MISSING)),
        Case("name null", "post", url, with_field(valid, "name", None)),
        Case(
            "id number checksum",
            "post",
            url,
            {**valid, "id_number": bad_checksum(number)},
            code="id_number_checksum",
            status=frozenset({422}),
        ),
        *field_cases("post", url, valid, "login", {"string": "x", "list": [login], "empty": {}}),
        Case("login weak password", "post", url, {**valid, "login": {**login, "password": "abc"}}),
        Case("login nul", "post", url, {**valid, "login": {**login, "username": "a\x00"}}),
        Case("login username taken", "post", url, {**valid, "login": {**login, "username": "staff"}}, status=CONFLICT),
        Case(
            "duplicate id number",
            "post",
            url,
            {**valid, "id_number": world.members["volunteer"].id_number()},
            status=CONFLICT,
            code="duplicate_id_number",
        ),
        # Validation (422) comes before conflicts (409).
        Case(
            "duplicate id number and bad phone",
            "post",
            url,
            {**valid, "id_number": world.members["volunteer"].id_number(), "phone": "call me"},
            status=frozenset({422}),
        ),
    ]
    assert_none(run_cases(world, "staff", cases))


def bad_checksum(number: str) -> str:
    last = number[-1]
    return number[:-1] + ("0" if last != "0" else "1")


def test_register_bad_input(world: World) -> None:
    url = "/api/v1/register"
    valid = {
        "name": "自助",
        "home_org_id": world.community.pk,
        "login": {"username": "self", "password": "pass-word-9"},
    }
    cases = [
        *body_cases("post", url, valid),
        Case("no login", "post", url, with_field(valid, "login", MISSING)),
        Case("home unknown", "post", url, with_field(valid, "home_org_id", 999999), status=UNKNOWN),
        *field_cases("post", url, valid, "home_org_id", WRONG_ID),
        *field_cases("post", url, valid, "name", {**WRONG_TEXT, "empty": ""}),
        Case(
            "id number checksum",
            "post",
            url,
            {**valid, "id_number": bad_checksum(new_id_number())},
            status=frozenset({422}),
            code="id_number_checksum",
        ),
    ]
    assert_none(run_cases(world, "anonymous", cases))


def test_member_reads_bad_input(world: World) -> None:
    cases = [
        *page_cases("/api/v1/members"),
        Case("status unknown", "get", "/api/v1/members", params={"status": "dead"}),
        Case("role unknown", "get", "/api/v1/members", params={"role": "admin"}),
        Case("org_id word", "get", "/api/v1/members", params={"org_id": "x"}),
        Case("org_id beyond bigint", "get", "/api/v1/members", params={"org_id": 10**20}),
        Case("org_id unknown", "get", "/api/v1/members", params={"org_id": 999999}, status=UNKNOWN),
        Case("q too long", "get", "/api/v1/members", params={"q": "李" * 51}),
        *path_cases("get", "/api/v1/members/{id}"),
        *path_cases("get", "/api/v1/members/{id}/id-number"),
        *path_cases("get", "/api/v1/members/{id}/balance"),
        *path_cases("get", "/api/v1/members/{id}/statement"),
        *path_cases("get", "/api/v1/members/{id}/relatives"),
    ]
    recipient = world.members["recipient"].pk
    statement = f"/api/v1/members/{recipient}/statement"
    cases += [*page_cases(statement), Case("bucket unknown", "get", statement, params={"bucket": "cash"})]
    no_number = make_member(world.community, "无证")
    no_number.id_number_encrypted = ""
    no_number.save(update_fields=["id_number_encrypted"])
    cases.append(Case("no id number", "get", f"/api/v1/members/{no_number.pk}/id-number", status=UNKNOWN))
    assert_none(run_cases(world, "staff", cases))
    # A NUL in a search is harmless: never a 5xx, never a change.
    before = snapshot()
    resp = world.api("staff").get("/api/v1/members", {"q": "李\x00"})
    assert resp.status_code < 500 and snapshot() == before, short(resp)


def test_patch_member_bad_input(world: World) -> None:
    recipient = world.members["recipient"]
    url = f"/api/v1/members/{recipient.pk}"
    valid = {"occupation": "退休教师"}
    cases = [
        *member_field_cases("patch", url, valid, world),
        *path_cases("patch", "/api/v1/members/{id}", valid),
        *field_cases("patch", url, valid, "home_org_id", WRONG_ID),
        Case("home unknown", "patch", url, {"home_org_id": 999999}, status=UNKNOWN),
        Case("home in bank B", "patch", url, {"home_org_id": world.other_community.pk}, status=CONFLICT),
        Case("home outside the subtree", "patch", url, {"home_org_id": world.community2.pk}, status=OUTSIDE),
        Case("name null", "patch", url, {"name": None}),
        Case("phone null", "patch", url, {"phone": None}),
        Case("roles null", "patch", url, {"roles": None}),
        Case("referrer is the member", "patch", url, {"referred_by_id": recipient.pk}),
        Case(
            "id number checksum",
            "patch",
            url,
            {"id_number": bad_checksum(new_id_number())},
            status=frozenset({422}),
            code="id_number_checksum",
        ),
        Case(
            "duplicate id number",
            "patch",
            url,
            {"id_number": world.members["volunteer"].id_number()},
            status=CONFLICT,
            code="duplicate_id_number",
        ),
        Case(
            "member in bank B",
            "patch",
            f"/api/v1/members/{world.members['stranger'].pk}",
            valid,
            status=OUTSIDE,
        ),
    ]
    assert_none(run_cases(world, "staff", cases))


def test_id_number_checks(world: World) -> None:
    staff = world.api("staff")
    number = new_id_number()
    body = {"name": "甲", "home_org_id": world.community.pk, "id_number": number}
    # Wrong length.
    for wrong in (number[:-1], number + "1", ""):
        resp = staff.post("/api/v1/members", {**body, "id_number": wrong})
        assert resp.status_code == 422, short(resp)
    # A bad check digit.
    resp = staff.post("/api/v1/members", {**body, "id_number": bad_checksum(number)})
    assert resp.status_code == 422 and error_code(resp) == "id_number_checksum", short(resp)
    first = staff.post("/api/v1/members", body)
    assert first.status_code in (200, 201), short(first)
    assert first.json()["id_number_masked"] == number[:4] + "*" * 10 + number[-4:]
    # The same number again in the same bank: 409, nothing changes.
    before = snapshot()
    resp = staff.post("/api/v1/members", {**body, "name": "乙"})
    assert resp.status_code == 409 and error_code(resp) == "duplicate_id_number", short(resp)
    resp = staff.post("/api/v1/members", {**body, "name": "乙", "id_number": number[:-1] + number[-1].lower()})
    assert resp.status_code == 409, short(resp)
    assert snapshot() == before
    # In another bank it is allowed.
    other = world.api("other_bank_staff").post(
        "/api/v1/members", {**body, "name": "丙", "home_org_id": world.other_community.pk}
    )
    assert other.status_code in (200, 201), short(other)
    # Patching a member to a number already held in their bank is 409, in either bank.
    resp = world.api("other_bank_staff").patch(f"/api/v1/members/{world.members['stranger'].pk}", {"id_number": number})
    assert resp.status_code == 409, short(resp)  # 丙 already holds it in bank B
    resp = staff.patch(f"/api/v1/members/{world.members['volunteer'].pk}", {"id_number": number})
    assert resp.status_code == 409 and error_code(resp) == "duplicate_id_number", short(resp)


def test_member_actions_bad_input(world: World) -> None:
    volunteer = world.members["volunteer"].pk
    url = f"/api/v1/members/{volunteer}/relatives"
    valid = {"relative_id": world.members["recipient"].pk, "relation": "邻居"}
    cases = [
        *path_cases("post", "/api/v1/members/{id}/approve"),
        *path_cases("post", "/api/v1/members/{id}/suspend"),
        Case("approve an active member", "post", f"/api/v1/members/{volunteer}/approve", status=CONFLICT),
        Case("reactivate an active member", "post", f"/api/v1/members/{volunteer}/reactivate", status=CONFLICT),
        Case(
            "approve a member of bank B",
            "post",
            f"/api/v1/members/{world.members['stranger'].pk}/approve",
            status=OUTSIDE,
        ),
        *body_cases("post", url, valid),
        *path_cases("post", "/api/v1/members/{id}/relatives", valid),
        *field_cases("post", url, valid, "relative_id", {**WRONG_ID, "null": None, "missing": MISSING}),
        *field_cases("post", url, valid, "relation", {**WRONG_TEXT, "empty": "", "blank": "  ", "too_long": "亲" * 31}),
        Case("relative unknown", "post", url, with_field(valid, "relative_id", 999999), status=UNKNOWN),
        Case(
            "relative in bank B",
            "post",
            url,
            with_field(valid, "relative_id", world.members["stranger"].pk),
            status=ANY_4XX,
        ),
        Case("relative is the member", "post", url, with_field(valid, "relative_id", volunteer)),
    ]
    problems = run_cases(world, "staff", cases)
    # Linking twice is a conflict.
    assert world.api("staff").post(url, valid).status_code in (200, 201)
    problems += run_cases(world, "staff", [Case("already linked", "post", url, valid, status=CONFLICT)])
    # The superuser sees both banks: a cross-bank link is still refused.
    problems += run_cases(
        world,
        "superuser",
        [Case("link across banks", "post", url, {**valid, "relative_id": world.members["stranger"].pk})],
    )
    assert_none(problems)


# ---------------------------------------------------------------------------------------------
# The ledger.
# ---------------------------------------------------------------------------------------------


def test_transfer_bad_input(world: World) -> None:
    fund(world, "recipient", 600)
    url = "/api/v1/transfers"
    m = world.members
    valid = {
        "from_member_id": m["recipient"].pk,
        "to_member_id": m["relative"].pk,
        "minutes": 30,
        "kind": "relative",
        "memo": "给孩子",
        "idempotency_key": "bad-transfer",
    }
    cases = [
        *body_cases("post", url, valid),
        *field_cases("post", url, valid, "from_member_id", {**WRONG_ID, "null": None, "missing": MISSING}),
        *field_cases("post", url, valid, "to_member_id", WRONG_ID),
        *field_cases("post", url, valid, "minutes", {**WRONG_MINUTES, "negative": -30, "over_max": 10_000_001}),
        *field_cases("post", url, valid, "kind", {"unknown": "gift", "int": 1, "null": None, "missing": MISSING}),
        *field_cases("post", url, valid, "memo", {**WRONG_TEXT, "too_long": "备" * 501}),
        *field_cases("post", url, valid, "idempotency_key", {**WRONG_KEY, "null": None, "missing": MISSING}),
        Case("from unknown", "post", url, with_field(valid, "from_member_id", 999999), status=UNKNOWN),
        Case("from someone else", "post", url, with_field(valid, "from_member_id", m["volunteer"].pk), status=OUTSIDE),
        Case("from bank B", "post", url, with_field(valid, "from_member_id", m["stranger"].pk), status=OUTSIDE),
        Case("to unknown", "post", url, with_field(valid, "to_member_id", 999999), status=UNKNOWN),
        Case("to bank B", "post", url, with_field(valid, "to_member_id", m["stranger"].pk), status=ANY_4XX),
        Case("to oneself", "post", url, with_field(valid, "to_member_id", m["recipient"].pk)),
        Case("to a non-relative", "post", url, with_field(valid, "to_member_id", m["neighbour"].pk)),
        Case("relative without a receiver", "post", url, with_field(valid, "to_member_id", None)),
        Case("more than the balance", "post", url, with_field(valid, "minutes", 601), status=CONFLICT),
        Case("much more than the balance", "post", url, with_field(valid, "minutes", 10_000_000), status=CONFLICT),
    ]
    assert_none(run_cases(world, "recipient", cases))


def test_adjustment_bad_input(world: World) -> None:
    url = "/api/v1/ledger/adjustments"
    m = world.members
    valid = {
        "member_id": m["recipient"].pk,
        "minutes": 30,
        "bucket": "earned",
        "reason": "纸质记录迁移",
        "idempotency_key": "bad-adjustment",
    }
    cases = [
        *body_cases("post", url, valid),
        *field_cases("post", url, valid, "member_id", {**WRONG_ID, "null": None, "missing": MISSING}),
        *field_cases(
            "post", url, valid, "minutes", {**WRONG_MINUTES, "negative_huge": -(10**30), "over_max": 10_000_001}
        ),
        *field_cases("post", url, valid, "bucket", {"unknown": "cash", "system": "issuance", "int": 1, "null": None}),
        *field_cases("post", url, valid, "reason", {**WRONG_TEXT, "empty": "", "blank": "   ", "too_long": "因" * 501}),
        *field_cases("post", url, valid, "idempotency_key", {**WRONG_KEY, "null": None, "missing": MISSING}),
        Case("member unknown", "post", url, with_field(valid, "member_id", 999999), status=UNKNOWN),
        Case("member in bank B", "post", url, with_field(valid, "member_id", m["stranger"].pk), status=OUTSIDE),
        Case(
            "member outside the subtree", "post", url, with_field(valid, "member_id", m["neighbour"].pk), status=OUTSIDE
        ),
        Case("below the limit", "post", url, with_field(valid, "minutes", -1), status=CONFLICT),
        Case("goods below zero", "post", url, {**valid, "minutes": -1, "bucket": "goods"}, status=CONFLICT),
    ]
    assert_none(run_cases(world, "staff", cases))


def test_withdrawal_bad_input(world: World) -> None:
    fund(world, "recipient", 600)
    url = "/api/v1/ledger/withdrawals"
    m = world.members
    valid = {"member_id": m["recipient"].pk, "minutes": 30, "memo": "理发", "idempotency_key": "bad-withdrawal"}
    cases = [
        *body_cases("post", url, valid),
        *field_cases("post", url, valid, "member_id", WRONG_ID),
        *field_cases("post", url, valid, "minutes", {**WRONG_MINUTES, "negative": -30, "over_max": 10_000_001}),
        *field_cases("post", url, valid, "memo", {**WRONG_TEXT, "too_long": "备" * 501}),
        *field_cases("post", url, valid, "idempotency_key", {**WRONG_KEY, "null": None, "missing": MISSING}),
        Case("member unknown", "post", url, with_field(valid, "member_id", 999999), status=UNKNOWN),
        Case("member in bank B", "post", url, with_field(valid, "member_id", m["stranger"].pk), status=OUTSIDE),
        Case("more than the balance", "post", url, with_field(valid, "minutes", 601), status=CONFLICT),
    ]
    assert_none(run_cases(world, "staff", cases))


def test_reversal_bad_input(world: World) -> None:
    root = world.users["superuser"]
    tx, _ = do_adjustment(root, member=world.members["recipient"], minutes=60, bucket="earned", reason="录错")
    done, _ = do_adjustment(root, member=world.members["recipient"], minutes=60, bucket="earned", reason="录错 2")
    assert isinstance(done, Transaction)
    reversal, _ = do_reversal(root, original=done, reason="冲正")
    url = "/api/v1/ledger/reversals"
    valid = {"transaction_id": tx.pk, "reason": "冲正", "idempotency_key": "bad-reversal"}
    cases = [
        *body_cases("post", url, valid),
        *field_cases("post", url, valid, "transaction_id", {**WRONG_ID, "null": None, "missing": MISSING}),
        *field_cases("post", url, valid, "reason", {**WRONG_TEXT, "empty": "", "blank": "  ", "too_long": "因" * 501}),
        *field_cases("post", url, valid, "idempotency_key", WRONG_KEY),
        Case("transaction unknown", "post", url, with_field(valid, "transaction_id", 999999), status=UNKNOWN),
        Case("transaction of bank B", "post", url, with_field(valid, "transaction_id", b_tx(world).pk), status=OUTSIDE),
        Case("already reversed", "post", url, with_field(valid, "transaction_id", done.pk), status=CONFLICT),
        Case("a reversal", "post", url, with_field(valid, "transaction_id", reversal.pk), status=CONFLICT),
    ]
    assert_none(run_cases(world, "staff", cases))


def test_verify_bad_input(world: World) -> None:
    url = "/api/v1/ledger/verify"
    cases = [
        Case("bank_id word", "get", url, params={"bank_id": "x"}),
        Case("bank_id zero", "get", url, params={"bank_id": 0}),
        Case("bank_id beyond bigint", "get", url, params={"bank_id": 10**20}),
        Case("bank_id unknown", "get", url, params={"bank_id": 999999}, status=UNKNOWN | OUTSIDE),
        Case("bank_id of a community", "get", url, params={"bank_id": world.community.pk}, status=OUTSIDE),
        Case("bank_id of bank B", "get", url, params={"bank_id": world.other_bank.pk}, status=OUTSIDE),
    ]
    assert_none(run_cases(world, "head_office_admin", cases))


# ---------------------------------------------------------------------------------------------
# Idempotency.
# ---------------------------------------------------------------------------------------------


def balances(world: World) -> list[tuple[int, int]]:
    return list(Account.objects.order_by("pk").values_list("pk", "balance_minutes"))


def test_replay_returns_the_same_body_and_moves_nothing(world: World) -> None:
    fund(world, "recipient", 600)
    recipient = world.api("recipient")
    body = {
        "from_member_id": world.members["recipient"].pk,
        "to_member_id": world.members["relative"].pk,
        "minutes": 45,
        "kind": "relative",
        "memo": "",
        "idempotency_key": "k" * 64,  # the longest key allowed
    }
    first = recipient.post("/api/v1/transfers", body)
    assert first.status_code in (200, 201), short(first)
    assert {"transaction_id", "kind", "minutes", "created_at"} <= set(first.json())
    before = snapshot()
    for _ in range(2):
        again = recipient.post("/api/v1/transfers", body)
        assert again.status_code == first.status_code
        assert again.json() == first.json()
    assert snapshot() == before
    # The same key with a different body: 409, nothing moves.
    for change in ({"minutes": 46}, {"memo": "x"}, {"kind": "donation", "to_member_id": None}):
        resp = recipient.post("/api/v1/transfers", {**body, **change})
        assert resp.status_code == 409 and error_code(resp) == "idempotency_key_reused", short(resp)
    assert snapshot() == before


def test_keys_are_unique_per_caller_across_endpoints(world: World) -> None:
    no_four_eyes(world)
    fund(world, "recipient", 600)
    staff = world.api("staff")
    member_id = world.members["recipient"].pk
    adjust = {"member_id": member_id, "minutes": 30, "bucket": "earned", "reason": "迁移", "idempotency_key": "same"}
    first = staff.post("/api/v1/ledger/adjustments", adjust)
    assert first.status_code in (200, 201), short(first)
    replay = staff.post("/api/v1/ledger/adjustments", adjust)
    assert replay.json() == first.json()
    before = snapshot()
    withdraw = {"member_id": member_id, "minutes": 30, "memo": "迁移", "idempotency_key": "same"}
    resp = staff.post("/api/v1/ledger/withdrawals", withdraw)
    assert resp.status_code == 409, short(resp)
    assert snapshot() == before
    # Another caller's key space is their own.
    other = world.api("branch_admin").post("/api/v1/ledger/adjustments", adjust)
    assert other.status_code in (200, 201), short(other)
    assert other.json()["transaction_id"] != first.json()["transaction_id"]


def no_four_eyes(world: World) -> None:
    """These tests are about idempotency keys: with 600 minutes funded today, any further adjustment would wait for
    a second person (tests/test_trust_07_four_eyes*.py), so approvals are off here."""
    Rules.objects.filter(head_office=world.bank).update(approval_threshold_minutes=None)


def test_refused_requests_do_not_consume_their_key(world: World) -> None:
    no_four_eyes(world)
    m = world.members
    recipient = world.api("recipient")
    transfer = {
        "from_member_id": m["recipient"].pk,
        "to_member_id": m["relative"].pk,
        "minutes": 90,
        "kind": "relative",
        "memo": "",
        "idempotency_key": "retry-me",
    }
    # 409: not enough time yet.
    resp = recipient.post("/api/v1/transfers", transfer)
    assert resp.status_code == 409 and error_code(resp) == "insufficient_balance", short(resp)
    # 422: a bad amount with the same key.
    resp = recipient.post("/api/v1/transfers", {**transfer, "minutes": 0})
    assert resp.status_code == 422, short(resp)
    # 403: someone else's account with the same key.
    resp = recipient.post("/api/v1/transfers", {**transfer, "from_member_id": m["volunteer"].pk})
    assert resp.status_code in (403, 404), short(resp)
    fund(world, "recipient", 600)
    ok = recipient.post("/api/v1/transfers", transfer)
    assert ok.status_code in (200, 201), short(ok)
    assert ok.json()["minutes"] == 90

    staff = world.api("staff")
    adjust = {"member_id": m["stranger"].pk, "minutes": 30, "bucket": "earned", "reason": "x", "idempotency_key": "a1"}
    assert staff.post("/api/v1/ledger/adjustments", adjust).status_code in (403, 404)
    assert staff.post("/api/v1/ledger/adjustments", {**adjust, "member_id": 999999}).status_code == 404
    assert staff.post("/api/v1/ledger/adjustments", {**adjust, "bucket": "cash"}).status_code == 422
    resp = staff.post("/api/v1/ledger/adjustments", {**adjust, "member_id": m["recipient"].pk})
    assert resp.status_code in (200, 201), short(resp)


def test_reversal_replay(world: World) -> None:
    tx, _ = do_adjustment(
        world.users["superuser"], member=world.members["recipient"], minutes=60, bucket="earned", reason="录错"
    )
    staff = world.api("staff")
    body = {"transaction_id": tx.pk, "reason": "冲正", "idempotency_key": "rev-1"}
    first = staff.post("/api/v1/ledger/reversals", body)
    assert first.status_code in (200, 201), short(first)
    before = snapshot()
    again = staff.post("/api/v1/ledger/reversals", body)
    assert again.status_code == first.status_code and again.json() == first.json()
    resp = staff.post("/api/v1/ledger/reversals", {**body, "reason": "另一个原因"})
    assert resp.status_code == 409, short(resp)
    # Without a key, a second reversal is a conflict rather than a second posting.
    resp = staff.post("/api/v1/ledger/reversals", {"transaction_id": tx.pk, "reason": "冲正"})
    assert resp.status_code == 409, short(resp)
    assert snapshot() == before


@pytest.mark.parametrize("persona", ["superuser", "head_office_admin"])
def test_huge_ids_in_every_path(world: World, persona: str) -> None:
    """A last sweep: every GET path with an id beyond bigint answers 4xx, never 5xx."""
    templates = [
        "/api/v1/orgs/{id}",
        "/api/v1/orgs/{id}/rules",
        "/api/v1/members/{id}",
        "/api/v1/members/{id}/balance",
        "/api/v1/members/{id}/statement",
        "/api/v1/members/{id}/id-number",
        "/api/v1/members/{id}/relatives",
        "/api/v1/ledger/transactions/{id}",
    ]
    cases = [c for t in templates for c in path_cases("get", t)]
    assert_none(run_cases(world, persona, cases))


def test_wrong_method_and_unknown_path(world: World) -> None:
    """What never reaches a view still answers with the contract's error body."""
    api = world.api("staff")
    member = world.members["recipient"].pk
    problems: list[str] = []
    before = snapshot()
    for method, url, expected in [
        ("delete", "/api/v1/orgs", 405),
        ("put", f"/api/v1/members/{member}", 405),
        ("get", "/api/v1/transfers", 405),
        ("patch", "/api/v1/ledger/adjustments", 405),
        ("delete", f"/api/v1/members/{member}", 405),
        ("get", "/api/v1/no-such-thing", 404),
        ("get", f"/api/v1/members/{member}/no-such-thing", 404),
        ("post", "/api/v1/orgs/", 404),
    ]:
        resp = api.call(method, url, {})
        if resp.status_code != expected or error_problem(resp):
            problems.append(f"{method.upper()} {url}: {short(resp)}")
    assert_none(problems)
    assert snapshot() == before
