"""A generated crawl of the demo world: for each role, start at its home page and follow every same-site link
(GET only) breadth-first. Every HTML page reached must answer 200 with a <title>, name every form control, carry
no inline script or style, and, in English, show no Chinese except data people typed in (names, places, notice
bodies…, taken from the database). Downloads are fetched once per kind and must answer 200.

Pages are sampled by shape: ids in the path are folded together, so /teams/3/ and /teams/8/ count as one kind of
page and at most SAMPLES of each kind are opened. That keeps the crawl fast while still reaching every page that a
link leads to."""

from __future__ import annotations

import html
import json
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from django.apps import apps
from django.db import models, transaction
from django.test import Client, TestCase
from django.utils import timezone

from tests.conftest import web_client
from tests.test_web_pages import CJK, page_problems, read
from timebank.demo.generator import generate
from timebank.exports.actions import do_issue_certificate
from timebank.exports.models import IssuedCertificate
from timebank.lib.masking import mask_name
from timebank.members.models import Member
from timebank.orgs.models import User

# The personas of the demo and the demo login each one uses (None: a visitor).
ROLES: dict[str, str | None] = {
    "anonymous": None,
    "recipient": "recipient",
    "relative": "relative",
    "volunteer": "volunteer",  # also the leader of the demo's five-elders team
    "staff": "staff",
    "operator": "operator",
    "assessor": "assessor",
    "supervisor": "supervisor",
    "branch_admin": "branch_admin",
    "head_office_admin": "ho_admin",
}
# Pages each role must at least reach by clicking (a missing one means a broken or missing link).
MUST_REACH: dict[str, set[str]] = {
    "anonymous": {"/about/", "/join/", "/login/", "/disclosure/"},
    "recipient": {"/orders/", "/me/time/"},
    "relative": {"/orders/", "/me/time/"},
    "volunteer": {"/volunteer/", "/me/time/", "/teams/", "/activities/", "/notices/"},
    "staff": {"/staff/", "/staff/members/", "/staff/orders/", "/manage/"},
    "operator": {"/hotline/"},
    "assessor": {"/evaluation/"},
    "supervisor": {"/evaluation/", "/evaluation/assessments/", "/notices/"},  # and its dashboards: test_supervisor_role
    "branch_admin": {"/staff/", "/manage/"},
    "head_office_admin": {"/staff/", "/manage/", "/evaluation/", "/notices/"},
}
SAMPLES = 2  # pages opened per kind of page (same path once ids are folded)
MAX_PAGES = 300  # per role and language: a runaway crawl fails loudly instead of running for ever
SKIP_PREFIXES = ("/logout/", "/i18n/", "/admin/", "/api/", "/static/", "/media/")
DOWNLOAD = re.compile(r"\.(pdf|xlsx|csv|png|svg|jpg)$|/qr/code/$|/export/$")
LINK = re.compile(r"<a\b[^>]*?\bhref=\"([^\"]*)\"", re.IGNORECASE)
HX_GET = re.compile(r"\bhx-get=\"([^\"]*)\"", re.IGNORECASE)
JSON_SCRIPT = re.compile(r"<script\b[^>]*type=\"application/json\"[^>]*>(.*?)</script>", re.DOTALL)
HAN_RUN = re.compile(r".{0,15}[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]+.{0,15}")
ELLIPSIS = ("…", "...")
# A browser shows a date or time input empty unless its value is ISO (2026-01-01, 2026-01-01T09:30).
DATE_INPUT = re.compile(r"<input\b[^>]*\btype=\"(date|datetime-local)\"[^>]*>", re.IGNORECASE)
ISO_VALUE = {"date": re.compile(r"\d{4}-\d{2}-\d{2}"), "datetime-local": re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")}


# ---------------------------------------------------------------------------------------------
# The demo world, built once for the module and rolled back at its end
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    with django_db_blocker.unblock():
        atomic = transaction.atomic()
        atomic.__enter__()
        try:
            # The order transitions queue notifications after the commit: run them, as `seed_demo` does.
            with TestCase.captureOnCommitCallbacks(execute=True):
                generate(members=30, seed=7)
                # A certificate the volunteer downloaded: its QR code leads anyone to the public check page.
                volunteer = Member.objects.get(user__username="volunteer")
                today = timezone.localdate()
                do_issue_certificate(volunteer.user, volunteer, start=today.replace(month=1, day=1), end=today)
            yield
        finally:
            transaction.set_rollback(True)
            atomic.__exit__(None, None, None)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def user_strings() -> set[str]:
    """Chinese that is data, not interface: every free-text value people (or the demo, acting for them) stored —
    names, places, notes, notice bodies, team names… Fields with choices hold codes whose labels the page
    translates, so they are left out."""
    found: set[str] = set()
    for model in apps.get_models():
        if not model.__module__.startswith("timebank."):
            continue
        fields = [
            f.attname
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField) and not f.choices
        ]
        if not fields:
            continue
        for row in model._default_manager.values_list(*fields).iterator():
            for value in row:
                found.update(_strings(value))
    for member in Member.objects.all():
        found |= {member.address, mask_name(member.name)}  # lists show names masked: 王**
    found.add("中文")  # the language switch names each language in itself
    lines = {line.strip() for text in found for line in text.splitlines()}
    return {s for s in found | lines if CJK.search(s) and len(s) >= 2}


class DataIndex:
    """Finds which characters of a text are covered by data strings: the longest data string starting at each
    place, or a prefix of one (at least four characters) cut off by an ellipsis, as truncated text shows."""

    def __init__(self, strings: set[str]) -> None:
        self.by_first: dict[str, list[str]] = {}
        for s in sorted(strings, key=len, reverse=True):
            self.by_first.setdefault(s[0], []).append(s)

    def leftover(self, text: str) -> str:
        """`text` with the data in it blanked out."""
        out = []
        i = 0
        while i < len(text):
            matched = 0
            candidates = self.by_first.get(text[i], ())
            if candidates:
                rest = text[i:]
                cuts = [c for c in (rest.find(e) for e in ELLIPSIS) if c >= 4]
                cut = min(cuts) if cuts else 0
                for s in candidates:
                    if rest.startswith(s):
                        matched = len(s)
                        break
                    if cut and cut < len(s) and s.startswith(rest[:cut]):
                        matched = cut
                        break
            if matched:
                out.append(" ")
                i += matched
            else:
                out.append(text[i])
                i += 1
        return "".join(out)


# ---------------------------------------------------------------------------------------------
# The crawl
# ---------------------------------------------------------------------------------------------


@dataclass
class Crawl:
    pages: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)


def kind_of(url: str) -> str:
    return re.sub(r"\d+", "N", url)


def same_site(base: str, href: str) -> str | None:
    href = html.unescape(href.strip())
    if not href or href.startswith(("#", "mailto:", "tel:", "javascript:", "data:")):
        return None
    parts = urlsplit(urljoin("http://testserver" + base, href))
    if parts.scheme not in ("http", "https") or parts.netloc not in ("testserver", ""):
        return None
    if parts.path.startswith(SKIP_PREFIXES):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def han_left(where: str, texts: list[str], index: DataIndex) -> list[str]:
    found = []
    for text in texts:
        if not CJK.search(text):
            continue
        rest = index.leftover(text)
        for m in HAN_RUN.finditer(rest):
            found.append(f"{where}: {m.group(0).strip()!r}")
    return found


def chart_strings(body: str) -> list[str]:
    """Strings a chart draws (labels and series names from json_script data): people read them too."""
    texts: list[str] = []
    for raw in JSON_SCRIPT.findall(body):
        try:
            texts += list(_strings(json.loads(html.unescape(raw))))
        except ValueError:
            continue
    return texts


def starts(role: str) -> list[str]:
    """The home page, and for visitors also the pages printed on paper: a certificate's QR code."""
    if role != "anonymous":
        return ["/"]
    return ["/", *(f"/verify/{serial}/" for serial in IssuedCertificate.objects.values_list("serial", flat=True)[:1])]


def crawl(client: Client, start: list[str], *, english: bool, index: DataIndex | None) -> Crawl:
    result = Crawl()
    queue: deque[tuple[str, bool]] = deque((url, False) for url in start)
    seen: set[str] = set(start)
    came_from: dict[str, str] = {}
    per_kind: dict[str, int] = {}
    while queue:
        url, fragment = queue.popleft()
        if len(result.pages) + len(result.fragments) >= MAX_PAGES:
            result.problems.append(f"the crawl stopped at {MAX_PAGES} pages")
            break
        response = client.get(url, headers={"HX-Request": "true"} if fragment else None)
        if response.status_code in (301, 302):
            target = same_site(url, response["Location"])
            if target and target not in seen:
                seen.add(target)
                came_from[target] = came_from.get(url, "")
                queue.append((target, False))
            continue
        if response.status_code != 200:
            result.problems.append(f"{url} → {response.status_code} (linked from {came_from.get(url)})")
            continue
        content_type = response.get("Content-Type", "")
        if not content_type.startswith("text/html"):
            result.downloads.append(url)
            continue
        body = response.content.decode()
        (result.fragments if fragment else result.pages).append(url)
        # Chart data in <script type="application/json"> (json_script) is data, not code: the CSP allows it.
        checked = SimpleNamespace(content=JSON_SCRIPT.sub("", body).encode())
        if not fragment:
            result.problems += page_problems(url, checked)
            if english and '<html lang="en"' not in body:
                result.problems.append(f"{url}: not in English")
        else:
            result.problems += [p for p in page_problems(url, checked) if not p.endswith("no <title>")]
        for tag in DATE_INPUT.finditer(body):
            value = re.search(r"\bvalue=\"([^\"]*)\"", tag.group(0))
            if value and value.group(1) and not ISO_VALUE[tag.group(1).lower()].fullmatch(value.group(1)):
                result.problems.append(f"{url}: a {tag.group(1)} input shows empty: value={value.group(1)!r}")
        if english and index is not None:
            page = read(response)
            result.untranslated += han_left(url, [page.title, *page.text, *chart_strings(body)], index)
        links = [(h, False) for h in LINK.findall(body)] + [(h, True) for h in HX_GET.findall(body)]
        for href, is_fragment in links:
            target = same_site(url, href)
            if target is None or target in seen:
                continue
            seen.add(target)
            key = kind_of(target)
            if per_kind.get(key, 0) >= SAMPLES:
                continue
            per_kind[key] = per_kind.get(key, 0) + 1
            came_from[target] = url
            queue.append((target, is_fragment))
    return result


def client_for(role: str, *, lang: str | None = None) -> Client:
    login = ROLES[role]
    user = User.objects.get(username=login) if login else None
    return web_client(user, lang=lang)


def _report(role: str, lang: str, result: Crawl) -> None:
    print(
        f"\n{role} ({lang}): {len(result.pages)} pages, {len(result.fragments)} fragments, "
        f"{len(result.downloads)} downloads"
    )


# ---------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_a_role_can_click_to_opens_and_is_well_formed(demo: None, db: None, role: str) -> None:
    result = crawl(client_for(role), starts(role), english=False, index=None)
    _report(role, "zh", result)
    reached = {urlsplit(u).path for u in result.pages}
    missing = sorted(MUST_REACH[role] - reached)
    assert not missing, f"{role} cannot click their way to {missing}"
    assert result.problems == [], f"{role}:\n" + "\n".join(result.problems)


@pytest.fixture(scope="module")
def data_index(demo: None, django_db_blocker: Any) -> DataIndex:
    with django_db_blocker.unblock():
        return DataIndex(user_strings())


@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_a_role_can_click_to_is_english_in_english(data_index: DataIndex, db: None, role: str) -> None:
    index = data_index
    result = crawl(client_for(role, lang="en"), starts(role), english=True, index=index)
    _report(role, "en", result)
    assert result.problems == [], f"{role}:\n" + "\n".join(result.problems)
    # One line per page and leftover Chinese, so whoever merges translations sees what to add.
    assert result.untranslated == [], f"{role}: Chinese left in English pages:\n" + "\n".join(
        dict.fromkeys(result.untranslated)
    )
