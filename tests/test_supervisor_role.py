"""The supervisor role (监督单位: 民政局, 老干部局, the leading group), issue 13: reads the dashboards, statistics,
disclosure and evaluation of its subtree, writes nothing, and never sees a member's unmasked personal data.

- Every write operation of the OpenAPI document (generated, like tests/test_every_write_has_a_page.py) answers the
  supervisor 403 and changes nothing, with path ids and bodies pointing at objects inside its own subtree, so the
  refusal is the role's and not a missing object's. The few operations on one's own login (a token, one's own
  password, marking one's own messages read) are listed in OWN_LOGIN with the reason.
- Every page POST (every URL pattern of the site, ids inside the subtree) changes nothing either.
- It reads the figures of its subtree (200) and not of the bank above it, a sibling branch or another bank.
- No answer it gets, JSON or page, holds an unmasked ID number or phone number of any demo member.
- Its home page leads, by clicking only, to its dashboards, risk, evaluation and disclosure.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.core.exceptions import FieldError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import TestCase
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from tests.conftest import Api, World, web_client
from tests.test_access_matrix import snapshot
from tests.test_page_crawl import crawl
from timebank.demo.generator import generate
from timebank.members.models import Member
from timebank.orgs.models import Org, Role, User
from timebank.reports import halfyear

API = "/api/v1"
# Operations on the caller's own login, not on the bank's data: a supervisor logs in, changes its own password,
# revokes its own token and marks its own messages read like any login. Registering (anonymous) and the signed
# federation inbox (a peer node, not a login) are not a login's writes either.
OWN_LOGIN = frozenset(
    {
        f"POST {API}/auth/token",
        f"POST {API}/auth/revoke",
        f"POST {API}/me/password",
        f"POST {API}/notifications/{{notification_id}}/read",
        f"POST {API}/notifications/read-all",
        f"POST {API}/notices/{{notice_id}}/read",
    }
)
NOT_A_LOGIN = frozenset({f"POST {API}/register", f"POST {API}/auth/sms-code", f"POST {API}/federation/inbox"})

# Path parameter → the model whose object it names (objects are picked inside the supervisor's subtree).
MODELS: dict[str, str] = {
    "org_id": "orgs.Org",
    "staff_id": "orgs.User",
    "member_id": "members.Member",
    "need_id": "needs.Need",
    "import_id": "needs.CensusImport",
    "complaint_id": "evaluation.Complaint",
    "penalty_id": "evaluation.Penalty",
    "kind_id": "evaluation.AwardKind",
    "award_id": "evaluation.Award",
    "indicator_id": "evaluation.Indicator",
    "goods_id": "goods.Goods",
    "code": "goods.Redemption",
    "notice_id": "notices.Notice",
    "notification_id": "notify.Notification",
    "entry_id": "funds.FundEntry",
    "activity_id": "teams.Activity",
    "team_id": "teams.Team",
    "training_id": "safety.TrainingSession",
    "incident_id": "safety.IncidentReport",
    "move_id": "ledger.InterBankMove",
    "approval_id": "approvals.Approval",
    "order_id": "orders.Order",
    "call_id": "hotline.CallLog",
    # Body fields naming objects.
    "home_org_id": "orgs.Org",
    "outlet_id": "orgs.Org",
    "recipient_id": "members.Member",
    "volunteer_id": "members.Member",
    "from_member_id": "members.Member",
    "to_member_id": "members.Member",
    "relative_id": "members.Member",
    "transaction_id": "ledger.Transaction",
    "service_item_id": "catalogue.ServiceItem",
    "item_id": "catalogue.ServiceItem",
    "bank_id": "orgs.Org",
    "to_org_id": "orgs.Org",
    "parent_id": "orgs.Org",
}
# Where an object's org is, tried in turn: the first lookup the model knows.
ORG_PATHS = (
    "path",
    "org__path",
    "home_org__path",
    "outlet__path",
    "member__home_org__path",
    "recipient__home_org__path",
    "order__org__path",
    "bank__path",
)
# Paths whose {org_id} must be a head office (its rules and evaluation settings).
BANK_SETTINGS = tuple(
    f"{API}/orgs/{{org_id}}/{tail}"
    for tail in ("rules", "evaluation-rules", "evaluation-defaults", "indicators", "award-kinds")
)
ID_NUMBER = re.compile(rb"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
PHONE = re.compile(rb"(?<!\d)1[3-9]\d{9}(?!\d)")


# ---------------------------------------------------------------------------------------------
# The demo world, built once for the module and rolled back at its end
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            with TestCase.captureOnCommitCallbacks(execute=True):
                generate(members=30, seed=3)
            yield
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _supervisor() -> User:
    user = User.objects.select_related("org").get(username="supervisor")
    assert user.role == Role.SUPERVISOR and user.org is not None
    return user


def _pick(label: str, scope: Org) -> str:
    """An object of the model inside `scope`'s subtree (else of its bank, else any): its path value."""
    model = apps.get_model(label)
    qs = model._default_manager.order_by("pk")
    if label == "orgs.User":
        qs = qs.exclude(role="").exclude(role=Role.SUPERVISOR)
    if label == "orgs.Org":
        qs = qs.exclude(pk=scope.pk)  # a child: inside the subtree and not the supervisor's own org
    for lookup in ORG_PATHS:
        try:
            inside = qs.filter(**{f"{lookup}__startswith": scope.path}).first()
        except FieldError:
            continue
        if inside is not None:
            return str(inside.voucher_code if label == "goods.Redemption" else inside.pk)
    any_one = qs.first()
    if any_one is None:
        return "1"
    return str(any_one.voucher_code if label == "goods.Redemption" else any_one.pk)


def _example(schema: dict[str, Any], components: dict[str, Any], name: str, scope: Org) -> Any:
    """A value valid for the schema, so the body passes validation and the call reaches the access check."""
    if "$ref" in schema:
        return _example(components[schema["$ref"].rsplit("/", 1)[-1]], components, name, scope)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"]
            return _example(options[0], components, name, scope) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        # The required fields, and the optional ones naming an object (an incident names its org or order…).
        wanted = [k for k in props if k in schema.get("required", []) or k in MODELS]
        return {k: _example(props[k], components, k, scope) for k in wanted}
    if kind == "array":
        item = _example(schema.get("items", {}), components, name.removesuffix("s"), scope)
        return [item]
    if kind == "integer":
        if name in ("bank_id", "head_office_id"):
            return scope.head_office_id
        if name in MODELS:
            return int(_pick(MODELS[name], scope))
        return min(max(int(schema.get("minimum", 1)), 30), int(schema.get("maximum", 30)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return timezone.localdate().isoformat()
        if fmt == "date-time":
            return dt.datetime.now(dt.UTC).isoformat()
        if name in MODELS:
            return _pick(MODELS[name], scope)
        if name in ("amount", "estimated_value"):
            return "10.00"
        return "监督测试"[: schema.get("maxLength", 4)] or "x"
    return None


def write_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of every write in the OpenAPI document."""
    from timebank.api_root import api

    schema = api.get_openapi_schema()
    return [
        (method, path, op)
        for path, methods in schema["paths"].items()
        for method, op in methods.items()
        if method in ("post", "put", "patch", "delete")
    ]


def _body(op: dict[str, Any], components: dict[str, Any], scope: Org) -> Any:
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return None
    return _example(content["application/json"]["schema"], components, "", scope)


# ---------------------------------------------------------------------------------------------
# Reads: its subtree only (on the small `world`: these run before the module's demo is built, which holds
# a `supervisor` login of its own)
# ---------------------------------------------------------------------------------------------


def test_reads_the_figures_of_its_subtree_only(world: World) -> None:
    api = world.api("supervisor")
    web = web_client(world.users["supervisor"])
    inside = (world.branch, world.community, world.outlet)
    outside = (world.bank, world.branch2, world.community2, world.other_bank, world.other_community)
    for org in inside:
        for what in ("stats", "risk", "anomalies"):
            assert api.get(f"{API}/{what}", {"org_id": org.pk}).status_code == 200, (what, org.name)
        assert web.get(f"/manage/dashboard/{org.pk}/").status_code == 200, org.name
        assert web.get(f"/manage/risk/{org.pk}/").status_code == 200, org.name
        assert web.get(f"/disclosure/{org.pk}/").status_code == 200, org.name
    for org in outside:
        for what in ("stats", "risk", "anomalies"):
            assert api.get(f"{API}/{what}", {"org_id": org.pk}).status_code in (403, 404), (what, org.name)
        assert web.get(f"/manage/dashboard/{org.pk}/").status_code in (403, 404), org.name
        assert web.get(f"/manage/risk/{org.pk}/").status_code in (403, 404), org.name
    # Its own by default.
    assert api.get(f"{API}/stats").json()["org_id"] == world.branch.pk
    # Evaluation: the scores of its subtree's sub-branches and outlets, not a sibling's or another bank's.
    for org in (world.community, world.outlet):
        assert api.get(f"{API}/orgs/{org.pk}/evaluation").status_code == 200, org.name
    assert api.get(f"{API}/orgs/{world.community2.pk}/evaluation").status_code == 403
    assert api.get(f"{API}/orgs/{world.other_community.pk}/evaluation").status_code == 404
    page = web.get("/evaluation/")
    assert page.status_code == 200
    assert world.community.name in page.content.decode()
    assert world.community2.name not in page.content.decode()
    assert web.get("/evaluation/assessments/").status_code == 200
    # The community's day (named orders, needs, people) is not a figure: staff only.
    assert web.get(f"/manage/today/{world.community.pk}/").status_code == 403
    # The dashboard's own entry sends it to its branch's overview.
    resp = web.get("/manage/dashboard/")
    assert resp.status_code == 302 and resp["Location"] == f"/manage/dashboard/{world.branch.pk}/"


def test_no_member_data_and_no_exports(world: World) -> None:
    api = world.api("supervisor")
    web = web_client(world.users["supervisor"])
    recipient = world.members["recipient"]
    assert api.get(f"{API}/members").status_code in (200, 403)
    assert api.get(f"{API}/members").status_code != 200 or api.get(f"{API}/members").json()["items"] == []
    for url in (
        f"{API}/members/{recipient.pk}",
        f"{API}/members/{recipient.pk}/id-number",
        f"{API}/members/{recipient.pk}/balance",
        f"{API}/members/{recipient.pk}/statement",
        f"{API}/members/{recipient.pk}/export",
    ):
        assert api.get(url).status_code in (403, 404), url
    for url in (f"/staff/members/{recipient.pk}/", "/staff/members/", "/staff/", "/manage/"):
        assert web.get(url).status_code in (302, 403, 404), url


def test_admins_create_supervisor_logins(world: World) -> None:
    body = {"username": "minzheng", "password": "pass-word-9", "name": "民政局", "role": "supervisor"}
    resp = world.api("branch_admin").post(f"{API}/staff", {**body, "org_id": world.branch.pk})
    assert resp.status_code == 201, resp.content
    assert resp.json()["role"] == "supervisor"
    # Not at an outlet, and not by plain staff.
    resp = world.api("head_office_admin").post(f"{API}/staff", {**body, "username": "m2", "org_id": world.outlet.pk})
    assert resp.status_code == 422
    resp = world.api("staff").post(f"{API}/staff", {**body, "username": "m3", "org_id": world.community.pk})
    assert resp.status_code in (403, 404)
    # The staff-login page offers the role.
    page = web_client(world.users["head_office_admin"]).get("/manage/staff/")
    assert page.status_code == 200
    assert 'value="supervisor"' in page.content.decode()


# ---------------------------------------------------------------------------------------------
# Writes
# ---------------------------------------------------------------------------------------------


def test_every_write_operation_refuses_the_supervisor(demo: None, db: None) -> None:
    from timebank.api_root import api as ninja_api

    components = ninja_api.get_openapi_schema()["components"]["schemas"]
    user = _supervisor()
    scope = user.org
    assert scope is not None
    client = Api(user)
    problems: list[str] = []
    missing: list[str] = []
    checked = 0
    for method, path, op in write_operations():
        key = f"{method.upper()} {path}"
        if key in OWN_LOGIN | NOT_A_LOGIN:
            continue
        url = path
        for param in re.findall(r"\{(\w+)\}", path):
            label = MODELS.get(param)
            if label is None or not apps.get_model(label)._default_manager.exists():
                missing.append(f"{key} (no {label or param} in the demo)")
            value = _pick(label, scope) if label else "1"
            if path.startswith(BANK_SETTINGS):
                value = str(scope.head_office_id)  # a head office's settings: the supervisor's own bank
            url = url.replace("{" + param + "}", value)
        body = _body(op, components, scope)
        if "multipart/form-data" in op.get("requestBody", {}).get("content", {}):
            body = None
            upload = SimpleUploadedFile("census.csv", "姓名,身份证号\n".encode(), content_type="text/csv")
            before = snapshot()
            token = client.headers["HTTP_AUTHORIZATION"]
            resp = client.client.post(url, {"file": upload, "org_id": scope.pk}, HTTP_AUTHORIZATION=token)
            checked += 1
            if resp.status_code != 403 or snapshot() != before:
                problems.append(f"{key} ({url}): {resp.status_code} {resp.content[:200].decode(errors='replace')}")
            continue
        if isinstance(body, dict) and "idempotency_key" in body:
            body["idempotency_key"] = f"supervisor-{checked}"
        before = snapshot()
        resp = client.call(method, url, body)
        checked += 1
        if resp.status_code in (404, 422) and any(m.startswith(key + " ") for m in missing):
            continue  # nothing of that kind to point at (or the body is checked before the lookup): reported below
        if resp.status_code != 403:
            problems.append(f"{key} ({url}): {resp.status_code} {resp.content[:200].decode(errors='replace')}")
        elif snapshot() != before:
            problems.append(f"{key}: refused but changed the database")
    assert checked > 90
    print(f"\n{checked} write operations refused; without an object to point at (404 accepted): {missing}")
    assert len(missing) < checked // 10, missing
    assert problems == [], f"{len(problems)} writes not refused with 403:\n" + "\n".join(problems)


def test_the_supervisors_own_login_still_works(demo: None, db: None) -> None:
    """What OWN_LOGIN leaves out: its own password and token, like any login."""
    user = _supervisor()
    user.set_password("old-pass-word-5")
    user.save(update_fields=["password"])
    client = Api(user)
    resp = client.post(f"{API}/me/password", {"old_password": "old-pass-word-5", "new_password": "another-pass-77"})
    assert resp.status_code in (200, 204), resp.content
    assert client.post(f"{API}/notifications/read-all").status_code in (200, 204)


def _pages() -> Iterator[tuple[str, list[str]]]:
    def walk(resolver: URLResolver, prefix: str) -> Iterator[tuple[str, list[str]]]:
        for entry in resolver.url_patterns:
            if isinstance(entry, URLResolver):
                yield from walk(entry, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern), list(entry.pattern.regex.groupindex)

    yield from walk(get_resolver(), "")


PAGE_PARAMS = {"bank_id": "orgs.Org", "kind_id": "evaluation.AwardKind", "checkpoint_id": "ledger.Checkpoint"}
# Pages any login posts to for itself (log out, its own password, big text, language, its own messages).
OWN_PAGES = ("logout/", "password/", "prefs/", "i18n/", "me/messages/", "notices/", "login/", "join/")
# A redirect that writes nothing: the dashboards' entry sends a POST on like a GET.
REDIRECTS = ("/manage/dashboard/",)


def _page_url(pattern: str, params: list[str], scope: Org) -> str | None:
    if pattern.startswith(("api/", "admin/", "static/", "media/")) or pattern.startswith(OWN_PAGES):
        return None
    url = pattern.lstrip("^").rstrip("$")
    for param in params:
        label = MODELS.get(param) or PAGE_PARAMS.get(param)
        if label is None:
            return None
        try:
            value = _pick(label, scope)
        except LookupError:
            return None
        url = re.sub(r"<(?:\w+:)?" + param + r">|\(\?P<" + param + r">[^)]*\)", value, url)
    if "<" in url or "(" in url or "\\" in url:
        return None
    return "/" + url


def test_no_page_post_changes_anything(demo: None, db: None) -> None:
    """Every page, posted to as the supervisor with ids inside its subtree: refused, or a page that does not write;
    never a change to the database."""
    user = _supervisor()
    scope = user.org
    assert scope is not None
    client = web_client(user)
    problems: list[str] = []
    posted = 0
    for pattern, params in _pages():
        url = _page_url(pattern, params, scope)
        if url is None:
            continue
        before = snapshot()
        resp = client.post(url, {"name": "监督", "minutes": "30", "reason": "监督", "confirm": "1"})
        posted += 1
        if snapshot() != before:
            problems.append(f"POST {url} as the supervisor changed the database ({resp.status_code})")
        elif resp.status_code in (301, 302) and "/login/" not in resp.get("Location", "") and url not in REDIRECTS:
            problems.append(f"POST {url}: {resp.status_code} to {resp['Location']} (a write that went through?)")
    assert posted > 50
    assert problems == [], "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Personal data: never unmasked, in any answer (raw bytes)
# ---------------------------------------------------------------------------------------------


def _personal_numbers() -> tuple[set[bytes], set[bytes]]:
    ids: set[bytes] = set()
    phones: set[bytes] = set()
    for member in Member.objects.all():
        number = member.id_number()
        if number:
            ids.add(number.encode())
        if member.phone:
            phones.add(member.phone.encode())
    return ids, phones


def test_no_answer_shows_an_unmasked_id_number_or_phone(demo: None, db: None) -> None:
    from timebank.api_root import api as ninja_api

    user = _supervisor()
    scope = user.org
    assert scope is not None
    ids, phones = _personal_numbers()
    assert ids and phones
    client = Api(user)
    examples = {"term": "2025-2026-1", "half_year": halfyear.recent_half_years()[0].code}
    seen: list[tuple[str, bytes]] = []
    for path, methods in ninja_api.get_openapi_schema()["paths"].items():
        if "get" not in methods:
            continue
        url = path
        for param in re.findall(r"\{(\w+)\}", path):
            label = MODELS.get(param)
            url = url.replace("{" + param + "}", _pick(label, scope) if label else "1")
        query = {}
        for param in methods["get"].get("parameters", []):
            if param.get("in") == "query" and param.get("required"):
                query[param["name"]] = examples.get(param["name"]) or _example(
                    param["schema"], {}, param["name"], scope
                )
        resp = client.get(url, query)
        seen.append((url, resp.content))
        if path.endswith((".xlsx", ".pdf", ".csv")) and "/reports/" not in path:
            # Exports of people (a team's school hours, a member's own data): refused. The reports are aggregates.
            assert resp.status_code in (403, 404), (url, resp.status_code)
        if path.startswith(f"{API}/reports/"):
            assert resp.status_code == 200, (url, resp.status_code)
    # Every page it can click to, and every download on the way.
    result = crawl(web_client(user), ["/"], english=False, index=None)
    for url in [*result.pages, *result.downloads]:
        seen.append((url, web_client(user).get(url).content))
    problems = []
    for url, content in seen:
        numbers = set(ID_NUMBER.findall(content)) | set(PHONE.findall(content))
        leaked = numbers & (ids | phones)
        if leaked:
            problems.append(f"{url}: {sorted(leaked)[:3]}")
    assert len(seen) > 60
    assert problems == [], "\n".join(problems)


def test_home_leads_to_what_it_may_read_by_clicking(demo: None, db: None) -> None:
    user = _supervisor()
    assert user.org is not None
    result = crawl(web_client(user), ["/"], english=False, index=None)
    assert result.problems == [], "\n".join(result.problems)
    reached = set(result.pages)
    org = user.org.pk
    for url in (
        f"/manage/dashboard/{org}/",
        f"/manage/risk/{org}/",
        f"/manage/half-year/{org}/",
        "/evaluation/",
        "/evaluation/assessments/",
        f"/disclosure/{org}/",
    ):
        assert url in reached, f"the supervisor cannot click its way to {url}"
    # The half-year report downloads (aggregates only).
    assert any(u.startswith(f"/manage/half-year/{org}/report.") for u in result.downloads), result.downloads
    # Nothing it reaches is a member's record or a staff working page.
    assert not [u for u in reached if u.startswith(("/staff/", "/hotline/"))], reached
