"""Personas shared by the whole suite (healthchecks style).

Bank A (台儿庄): head office → 运河街道 (branch) → 顺河社区 (sub-branch, with an outlet)
                            → 泥沟镇 (branch) → 泥沟村 (sub-branch)
Bank B (南充): head office → 和平路街道 → 驻春路社区
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from timebank.lib import idnumber
from timebank.members.actions import MemberInput, do_link_relative, do_register_member
from timebank.members.models import Member
from timebank.orgs.actions import do_create_org, do_create_staff, do_issue_token
from timebank.orgs.models import Org, User

# The suite shares a small machine between workers (and, in development, with other runs): hypothesis measures the
# speed of its own input generation, which says nothing about the code under test there, so that check is off.
hypothesis_settings.register_profile("timebank", suppress_health_check=[HealthCheck.too_slow], deadline=None)
hypothesis_settings.load_profile("timebank")

# The files that take a minute or more, longest first: the workers (pytest-xdist, a file at a time) start on them,
# so the run does not end with one worker alone on a long file while the other core idles.
LONGEST_FIRST = (
    "test_fuzz_api.py",
    "test_federation_crash.py",
    "test_crash_safety.py",
    # The browser files (SQLite pass), by their time there: 390, 171, 134, 98 and 65 s of one worker at load ~12.
    "browser/test_new_pages.py",
    "browser/test_accessibility.py",
    "browser/test_pages_in_a_browser.py",
    "browser/test_staff_pages_at_360.py",
    "browser/test_station_walkthrough.py",
    "test_demo.py",
    "test_trust_08_races.py",
    "test_supervisor_role.py",
    "test_federation.py",
    "test_federation_moves.py",
    "test_access_matrix.py",
    "test_page_crawl.py",
    "test_fuzz_regressions.py",
    "test_stars_awards.py",
    "test_ledger_state_machine.py",
    "test_city_rules.py",
    "test_teams.py",
    "test_read_replica.py",
    "test_scale_out.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Long files first (stable: the order inside a file is kept). FUZZ_TESTS=0 skips the schemathesis fuzzing:
    CI runs it in its PostgreSQL pass only, where huge numbers and odd text reach a stricter database."""
    here = os.path.dirname(__file__)
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(os.path.relpath(str(item.path), here), len(rank)))
    if os.environ.get("FUZZ_TESTS") == "0":
        skip = pytest.mark.skip(reason="FUZZ_TESTS=0: the fuzzing runs in CI's PostgreSQL pass")
        for item in items:
            if item.get_closest_marker("fuzz"):
                item.add_marker(skip)


_ids = itertools.count(1)
_rng = random.Random(7)


_issued: set[str] = set()


def new_id_number(born: dt.date = dt.date(1955, 3, 1)) -> str:
    """A valid ID number never handed out before in this test run (only 500 exist per region and day)."""
    regions = ["370405", "370402", "370403", "370404", "370481", "511302", "511303", "511304", "110105", "310101"]
    while True:
        number = idnumber.make(_rng.choice(regions), born, _rng, male=bool(next(_ids) % 2))
        if number not in _issued:
            _issued.add(number)
            return number


@pytest.fixture(autouse=True)
def _fast_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    # What the cache counts (registrations per client address, ...) belongs to one test, not to the whole run.
    cache.clear()


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


class Api:
    """A JSON client acting as one persona through a bearer token."""

    def __init__(self, user: User | None) -> None:
        self.client = Client()
        self.user = user
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {do_issue_token(user)}"} if user else {}

    def call(self, method: str, url: str, body: Any = None, *, raw: str | None = None, **extra: Any) -> Any:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        fn = getattr(self.client, method)
        if method == "get":
            return fn(url, data=body, **self.headers, **extra)
        return fn(url, data=data, content_type="application/json", **self.headers, **extra)

    def get(self, url: str, params: dict[str, Any] | None = None, **extra: Any) -> Any:
        return self.call("get", url, params, **extra)

    def post(self, url: str, body: Any = None, **kw: Any) -> Any:
        return self.call("post", url, body, **kw)

    def patch(self, url: str, body: Any = None, **kw: Any) -> Any:
        return self.call("patch", url, body, **kw)


@dataclass
class World:
    bank: Org
    branch: Org
    branch2: Org
    community: Org
    community2: Org
    outlet: Org
    other_bank: Org
    other_community: Org
    users: dict[str, User] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    _apis: dict[str, Api] = field(default_factory=dict)

    def api(self, persona: str) -> Api:
        if persona not in self._apis:
            self._apis[persona] = Api(None if persona == "anonymous" else self.users[persona])
        return self._apis[persona]


def make_member(
    org: Org,
    name: str,
    *,
    login: str | None = None,
    roles: list[str] | None = None,
    born: dt.date = dt.date(1955, 3, 1),
    phone: str = "13800000000",
) -> Member:
    return do_register_member(
        None,
        home_org=org,
        data=MemberInput(
            name=name,
            id_number=new_id_number(born),
            roles=["volunteer"] if roles is None else roles,
            phone=phone,
            birth_date=born,
            gender="female",
            address="运河街道 1 号",
        ),
        login=(login, "pass-word-1") if login else None,
        approved=True,
    )


def build_world() -> World:
    root = User.objects.create_superuser("root", password="root-pass-1")
    bank = do_create_org(root, name="台儿庄区时间银行", kind="head_office", parent=None)
    branch = do_create_org(root, name="运河街道", kind="branch", parent=bank)
    branch2 = do_create_org(root, name="泥沟镇", kind="branch", parent=bank)
    community = do_create_org(root, name="顺河社区", kind="sub_branch", parent=branch)
    community2 = do_create_org(root, name="泥沟村", kind="sub_branch", parent=branch2)
    outlet = do_create_org(root, name="顺河社区网点", kind="outlet", parent=community)
    other_bank = do_create_org(root, name="南充市爱心时间银行", kind="head_office", parent=None)
    other_branch = do_create_org(root, name="和平路街道", kind="branch", parent=other_bank)
    other_community = do_create_org(root, name="驻春路社区", kind="sub_branch", parent=other_branch)
    w = World(bank, branch, branch2, community, community2, outlet, other_bank, other_community)
    w.users["superuser"] = root
    staff = [
        ("head_office_admin", bank, "head_office_admin"),
        ("branch_admin", branch, "branch_admin"),
        ("staff", community, "staff"),
        ("staff_next", community2, "staff"),
        ("operator", bank, "operator"),
        ("assessor", bank, "assessor"),
        ("supervisor", branch, "supervisor"),  # 运河街道's 民政 office: reads its subtree's figures, writes nothing
        ("other_bank_admin", other_bank, "head_office_admin"),
        ("other_bank_staff", other_community, "staff"),
    ]
    for persona, org, role in staff:
        w.users[persona] = do_create_staff(
            root, org=org, username=persona, password="pass-word-1", name=persona, role=role
        )
    w.members["volunteer"] = make_member(community, "王秀英", login="volunteer", roles=["volunteer"])
    w.members["recipient"] = make_member(
        community, "李大爷", login="recipient", roles=["recipient"], born=dt.date(1940, 5, 6)
    )
    w.members["relative"] = make_member(community2, "李小明", login="relative", roles=[], born=dt.date(1975, 1, 2))
    w.members["neighbour"] = make_member(community2, "赵阿姨", login="neighbour", roles=["volunteer"])
    w.members["stranger"] = make_member(other_community, "陈先生", login="stranger", roles=["volunteer"])
    do_link_relative(root, w.members["recipient"], w.members["relative"], "子女")
    for persona in ("volunteer", "recipient", "relative", "neighbour", "stranger"):
        user = w.members[persona].user
        assert user is not None
        w.users[persona] = user
    return w


@pytest.fixture
def world(db: None) -> World:
    return build_world()


# Every persona of the test world, for tables that walk them all.
PERSONAS = (
    "anonymous",
    "superuser",
    "head_office_admin",
    "branch_admin",
    "staff",
    "staff_next",
    "operator",
    "assessor",
    "supervisor",
    "other_bank_admin",
    "other_bank_staff",
    "volunteer",
    "recipient",
    "relative",
    "neighbour",
    "stranger",
)


MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def web_client(user: User | None, *, lang: str | None = None) -> Client:
    """A browser-like client for the pages: logged in as `user` (None: a visitor), optionally in `lang`."""
    client = Client()
    if lang:
        client.cookies["django_language"] = lang
    if user is not None:
        client.force_login(user, backend=MODEL_BACKEND)
    return client


def error_code(response: Any) -> str:
    return str(response.json()["error"]["code"])
