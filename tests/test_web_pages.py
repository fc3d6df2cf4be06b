"""The pages, through Django's test client: who may open what, what every page must carry (a title, labels,
English without leftover Chinese), and the stories behind the forms (join, log in, order, serve, give, approve,
dispatch), including refusals and double submits."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from tests.conftest import PERSONAS, World, make_member, web_client
from timebank.catalogue.actions import do_create_service_item
from timebank.catalogue.models import ServiceItem
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account, Transaction
from timebank.members.models import Member, MemberStatus, RelativeLink
from timebank.orders import actions as order_actions
from timebank.orders.models import Order, OrderState
from timebank.orgs.models import Org, User

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
CJK = re.compile(r"[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]")


# ---------------------------------------------------------------------------------------------
# Reading pages
# ---------------------------------------------------------------------------------------------


@dataclass
class Page:
    """What html.parser sees in a page: its title, its form controls and labels, its visible text."""

    title: str = ""
    controls: list[dict[str, str]] = field(default_factory=list)
    label_for: set[str] = field(default_factory=set)
    labelled_inside: int = 0
    text: list[str] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._stack: list[str] = []
        self._label_depth = 0
        self._in_title = False
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        if tag in ("script", "style"):
            self._skip += 1
        if tag == "label":
            self._label_depth += 1
            if a.get("for"):
                self.page.label_for.add(a["for"])
        if tag in ("input", "select", "textarea"):
            a["_tag"] = tag
            a["_inside_label"] = "1" if self._label_depth else ""
            self.page.controls.append(a)
        for name in ("aria-label", "title", "placeholder", "alt"):
            if a.get(name):
                self.page.text.append(a[name])
        if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
            self.page.text.append(a["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        if tag in ("script", "style"):
            self._skip -= 1
        if tag == "label":
            self._label_depth -= 1

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.page.title += data
        elif not self._skip:
            self.page.text.append(data)


def read(response: Any) -> Page:
    reader = _Reader()
    reader.feed(response.content.decode())
    return reader.page


def unlabelled(page: Page) -> list[str]:
    """Form controls a screen reader could not name: no <label for>, no wrapping <label>, no aria-label."""
    missing = []
    for c in page.controls:
        if c["_tag"] == "input" and c.get("type") in ("hidden", "submit", "button", "reset", "image"):
            continue
        named = c.get("id") in page.label_for or c["_inside_label"] or c.get("aria-label") or c.get("aria-labelledby")
        if not named:
            missing.append(f"<{c['_tag']} name={c.get('name')!r}>")
    return missing


# ---------------------------------------------------------------------------------------------
# The scene: the conftest personas, a catalogue, and orders in each state
# ---------------------------------------------------------------------------------------------


@dataclass
class Scene:
    world: World
    items: dict[str, ServiceItem]
    orders: dict[str, Order]

    def client(self, persona: str, *, lang: str | None = None) -> Client:
        return web_client(None if persona == "anonymous" else self.world.users[persona], lang=lang)


def _order(world: World, item: ServiceItem, *, days: float = 1, payer: str = "subsidy", **kw: Any) -> Order:
    return order_actions.do_create_order(
        world.users["staff"],
        recipient=world.members["recipient"],
        service_item=item,
        scheduled_start=timezone.now() + dt.timedelta(days=days),
        planned_minutes=60,
        payer=payer,
        channel="staff",
        **kw,
    )


@pytest.fixture
def scene(world: World) -> Scene:
    make = lambda name, tier: do_create_service_item(  # noqa: E731
        None, head_office=world.bank, name=name, category="mutual_care", tier=tier
    )
    items = {"cleaning": make("家庭保洁", "ordinary"), "repair": make("家电维修", "technical")}
    do_adjustment(None, member=world.members["recipient"], minutes=600, bucket="reserve", reason="开户")
    do_adjustment(None, member=world.members["relative"], minutes=300, bucket="reserve", reason="开户")
    staff, volunteer = world.users["staff"], world.users["volunteer"]
    vmember = world.members["volunteer"]
    # Within the hour: a volunteer who takes it may check in at once (the rules' checkin_early_minutes is 60).
    orders = {"open": _order(world, items["cleaning"], days=0.02, urgent=True)}
    orders["dispatched"] = _order(world, items["cleaning"], days=2)
    order_actions.do_dispatch(staff, orders["dispatched"], vmember)
    orders["completed"] = _order(world, items["repair"], days=0, payer="recipient")
    order_actions.do_dispatch(staff, orders["completed"], vmember)
    order_actions.do_accept(volunteer, orders["completed"])
    order_actions.do_check_in(volunteer, orders["completed"])
    # The hour was served: the check-in is set back rather than the test waiting (credits follow the clock).
    Order.objects.filter(pk=orders["completed"].pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=60))
    order_actions.do_check_out(volunteer, orders["completed"])
    for order in orders.values():
        order.refresh_from_db()
    return Scene(world, items, orders)


def _slot(days: int = 2, hour: int = 9) -> str:
    local = timezone.localtime() + dt.timedelta(days=days)
    return local.replace(hour=hour, minute=0).strftime("%Y-%m-%dT%H:%M")


def page_table(s: Scene) -> list[tuple[str, set[str]]]:
    """Every page (URL) and the personas that may open it; everyone else is refused."""
    o = s.orders
    item = s.items["cleaning"]
    members = {"volunteer", "recipient", "relative", "neighbour", "stranger"}
    workbench = {"superuser", "head_office_admin", "branch_admin", "staff", "operator"}
    return [
        ("/about/", set(PERSONAS)),
        ("/join/", {"anonymous"}),
        ("/login/", {"anonymous"}),
        ("/me/time/", members),
        ("/me/give/", members),
        ("/volunteer/", {"volunteer", "neighbour", "stranger"}),
        ("/orders/", {"recipient", "relative"}),
        (f"/order/{item.pk}/?for={s.world.members['recipient'].pk}", {"recipient", "relative"}),
        (f"/order/{item.pk}/confirm/?start={_slot()}", {"recipient", "relative"}),
        (f"/orders/{o['completed'].pk}/", {"recipient", "relative"}),
        ("/staff/", workbench | {"staff_next", "other_bank_admin", "other_bank_staff"}),
        ("/staff/members/", workbench | {"staff_next", "other_bank_admin", "other_bank_staff"}),
        ("/staff/orders/", workbench | {"staff_next", "other_bank_admin", "other_bank_staff"}),
        (f"/staff/orders/{o['completed'].pk}/", workbench),
        (f"/staff/orders/{o['open'].pk}/", workbench),
    ]


def opened_pages(s: Scene, *, lang: str | None = None) -> Iterable[tuple[str, str, Any]]:
    clients = {p: s.client(p, lang=lang) for p in PERSONAS}
    for url, allowed in page_table(s):
        for persona in sorted(allowed):
            yield persona, url, clients[persona].get(url)


# ---------------------------------------------------------------------------------------------
# Every page: the right people get it, the others are refused; titles; labels; English
# ---------------------------------------------------------------------------------------------


def page_problems(where: str, response: Any) -> list[str]:
    """What every page must carry: a <title>; a label for every control; a CSRF token in every POST form;
    no inline script, style or event handler (a strict Content-Security-Policy is coming)."""
    problems = []
    page = read(response)
    html = response.content.decode()
    if not page.title.strip():
        problems.append(f"{where}: no <title>")
    problems += [f"{where}: {control} has no label" for control in unlabelled(page)]
    if html.count('name="csrfmiddlewaretoken"') < len(re.findall(r'<form[^>]*method="post"', html)):
        problems.append(f"{where}: a POST form without a CSRF token")
    if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html) or re.search(r"\son[a-z]+=", html):
        problems.append(f"{where}: inline script")
    if " style=" in html or "<style" in html:
        problems.append(f"{where}: inline style")
    return problems


def test_each_page_opens_for_its_people_only_and_is_well_formed(scene: Scene) -> None:
    """Every persona against every page: 200 for the right people (and then the page is checked by
    `page_problems`), the login page for visitors, 403/404 for everyone else."""
    problems = []
    clients = {p: scene.client(p) for p in PERSONAS}
    for url, allowed in page_table(scene):
        for persona in PERSONAS:
            response = clients[persona].get(url)
            if persona in allowed:
                ok = response.status_code == 200
                if ok:
                    problems += page_problems(f"{persona} {url}", response)
            elif persona == "anonymous":
                ok = response.status_code == 302 and response["Location"].startswith(settings.LOGIN_URL)
            elif url in ("/join/", "/login/"):
                ok = response.status_code == 302  # already logged in: off to their home page
            else:
                ok = response.status_code in (403, 404)
                if ok:
                    problems += page_problems(f"{persona} {url} (refused)", response)
            if not ok:
                problems.append(f"{persona} {url} → {response.status_code}")
    assert problems == [], "\n".join(problems)


def test_a_refusal_says_why_in_plain_words(scene: Scene) -> None:
    response = scene.client("recipient").get("/volunteer/")
    assert response.status_code == 403
    page = read(response)
    assert page.title.strip()
    assert "这个页面是给志愿者用的" in " ".join(page.text)
    response = scene.client("staff_next").get(f"/staff/orders/{scene.orders['open'].pk}/")
    assert response.status_code == 403
    assert "您无权查看这个订单" in response.content.decode()


def test_the_home_page_sends_each_person_to_their_workspace(scene: Scene) -> None:
    assert "什么是时间银行" in scene.client("anonymous").get("/").content.decode()
    response = scene.client("staff").get("/")
    assert response.status_code == 302 and response["Location"] == "/staff/"
    volunteer_home = scene.client("volunteer").get("/").content.decode()
    assert "/volunteer/" in volunteer_home and "我的时间" in volunteer_home
    recipient_home = scene.client("recipient").get("/").content.decode()
    assert f"/order/{scene.items['cleaning'].pk}/" in recipient_home  # tap 1 is on the home page
    assert "谁来服务" in recipient_home
    assert scene.client("assessor").get("/").status_code == 200


def _data_strings() -> set[str]:
    """Chinese that is data, not interface: names of people, places and services, and memos."""
    strings: set[str] = set()
    strings |= set(Org.objects.values_list("name", flat=True))
    strings |= set(ServiceItem.objects.values_list("name", flat=True))
    strings |= set(RelativeLink.objects.values_list("relation", flat=True))
    strings |= set(User.objects.values_list("display_name", flat=True))
    strings |= set(Transaction.objects.values_list("memo", flat=True))
    strings |= set(Order.objects.values_list("notes", flat=True))
    for member in Member.objects.all():
        strings |= {member.name, member.address}
    strings.add("中文")  # the language switch names each language in itself
    return {s for s in strings if s}


def test_english_pages_have_no_untranslated_chinese(scene: Scene) -> None:
    data = sorted(_data_strings(), key=len, reverse=True)
    leftovers = []
    for persona, url, response in opened_pages(scene, lang="en"):
        assert response.status_code == 200, (persona, url)
        page = read(response)
        text = " ".join([page.title, *page.text])
        for value in data:
            text = text.replace(value, " ")
        found = set(CJK.findall(text))
        if found:
            snippet = next(
                m.group(0) for m in re.finditer(r".{0,12}[\u3400-\u9fff\u3000-\u303f\uff00-\uffef].{0,12}", text)
            )
            leftovers.append(f"{persona} {url}: {snippet!r}")
    assert leftovers == [], "\n".join(leftovers)


def test_english_is_one_click_away_and_stays(scene: Scene) -> None:
    client = scene.client("volunteer")
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/volunteer/"})
    assert response.status_code == 302 and response["Location"] == "/volunteer/"
    page = client.get("/volunteer/").content.decode()
    assert '<html lang="en"' in page and "My tasks" in page
    assert '<html lang="en"' in client.get("/me/time/").content.decode()
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    assert '<html lang="zh-hans"' in client.get("/me/time/").content.decode()


def test_large_text_stays_on_across_pages_until_turned_off(scene: Scene) -> None:
    client = scene.client("recipient")
    assert 'class="large-text"' not in client.get("/").content.decode()
    response = client.post("/prefs/large-text/", {"next": "/orders/"})
    assert response.status_code == 302 and response["Location"] == "/orders/"
    for url in ("/", "/orders/", "/me/time/", "/about/"):
        assert 'class="large-text"' in client.get(url).content.decode(), url
    client.post("/prefs/large-text/", {"next": "https://evil.example/"})
    assert 'class="large-text"' not in client.get("/").content.decode()
    # An unsafe `next` falls back to the home page.
    assert client.post("/prefs/large-text/", {"next": "https://evil.example/"})["Location"] == "/"


def test_a_post_without_the_csrf_token_is_refused(scene: Scene) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(scene.world.users["volunteer"], backend=MODEL_BACKEND)
    response = client.post(f"/volunteer/orders/{scene.orders['open'].pk}/take/")
    assert response.status_code == 403
    assert Order.objects.get(pk=scene.orders["open"].pk).state == OrderState.REQUESTED


# ---------------------------------------------------------------------------------------------
# Logging in, out, and being locked out
# ---------------------------------------------------------------------------------------------


def test_login_keeps_the_username_and_explains_a_wrong_password(world: World) -> None:
    client = Client()
    response = client.post("/login/", {"username": "volunteer", "password": "wrong-one"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "用户名或密码不对" in html and 'value="volunteer"' in html
    response = client.post("/login/", {"username": "volunteer", "password": "pass-word-1"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert "王秀英" in client.get("/").content.decode()
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/me/time/").status_code == 302


def test_a_locked_out_user_sees_a_clear_message_not_a_crash(world: World) -> None:
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": "recipient", "password": "not-it"})
    response = client.post("/login/", {"username": "recipient", "password": "pass-word-1"})
    assert response.status_code == 403
    html = response.content.decode()
    assert "暂时锁定" in html and "<title>" in html
    assert 'value="recipient"' in html
    assert "_auth_user_id" not in client.session
    english = Client()
    english.cookies["django_language"] = "en"
    html = english.post("/login/", {"username": "recipient", "password": "pass-word-1"}).content.decode()
    assert "locked" in html
    # The API still answers in its own format.
    api = Client().post(
        "/api/v1/auth/token", {"username": "recipient", "password": "pass-word-1"}, content_type="application/json"
    )
    assert api.status_code == 429 and api.json()["error"]["code"] == "locked_out"


# ---------------------------------------------------------------------------------------------
# Joining
# ---------------------------------------------------------------------------------------------


def _join_form(world: World, **changes: Any) -> dict[str, Any]:
    return {
        "home_org": world.community.pk,
        "name": "孙桂兰",
        "phone": "13900001111",
        "gender": "female",
        "birth_date": "1958-04-02",
        "roles": ["volunteer"],
        "username": "sunguilan",
        "password1": "long-enough-1",
        "password2": "long-enough-1",
        **changes,
    }


def test_joining_makes_a_pending_member_with_a_login(world: World) -> None:
    page = Client().get("/join/").content.decode()
    assert world.community.name in page and world.other_community.name in page  # communities of every bank
    client = Client()
    response = client.post("/join/", _join_form(world))
    assert response.status_code == 302 and response["Location"] == "/"
    member = Member.objects.get(name="孙桂兰")
    assert member.status == MemberStatus.PENDING and member.is_volunteer and member.home_org == world.community
    assert member.user is not None and member.user.username == "sunguilan"
    home = client.get("/").content.decode()
    assert "正在审核" in home


def test_joining_with_mistakes_keeps_what_was_typed(world: World) -> None:
    response = Client().post("/join/", _join_form(world, password2="something-else"))
    assert response.status_code == 422
    html = response.content.decode()
    assert "两次输入的密码不一样" in html
    assert 'value="孙桂兰"' in html and 'value="13900001111"' in html and 'value="sunguilan"' in html
    response = Client().post("/join/", _join_form(world, username="volunteer"))
    assert response.status_code == 422
    assert "这个用户名已经有人用了" in response.content.decode() and "请换一个用户名" in response.content.decode()
    response = Client().post("/join/", _join_form(world, home_org=world.bank.pk))
    assert response.status_code == 422
    assert not Member.objects.filter(name="孙桂兰").exists()
    response = Client().post("/join/", _join_form(world, name="x\x00y", phone="1" * 5000))
    assert response.status_code == 422


# ---------------------------------------------------------------------------------------------
# The volunteer's loop
# ---------------------------------------------------------------------------------------------


def test_a_volunteer_takes_an_order_and_completes_it_with_the_code(scene: Scene) -> None:
    client = scene.client("volunteer")
    order = scene.orders["open"]
    page = client.get("/volunteer/").content.decode()
    assert f"/volunteer/orders/{order.pk}/take/" in page
    assert scene.world.members["recipient"].address not in page.split(f'id="order-{scene.orders["dispatched"].pk}"')[0]
    for action in ("take", "check-in", "check-out"):
        response = client.post(f"/volunteer/orders/{order.pk}/{action}/")
        assert response.status_code == 302, (action, response.content)
    order.refresh_from_db()
    assert order.state == OrderState.COMPLETED
    prefix = f"o{order.pk}"
    response = client.post(f"/volunteer/orders/{order.pk}/confirm/", {f"{prefix}-code": "999999x"})
    assert response.status_code == 422
    html = response.content.decode()
    assert "确认码不对" in html and 'value="999999x"' in html
    before = Account.objects.get(member=scene.world.members["volunteer"], kind="earned").balance_minutes
    response = client.post(f"/volunteer/orders/{order.pk}/confirm/", {f"{prefix}-code": order.code})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.CONFIRMED
    after = Account.objects.get(member=scene.world.members["volunteer"], kind="earned").balance_minutes
    assert after - before == order.credited_minutes
    # A second confirm moves nothing and says why.
    response = client.post(f"/volunteer/orders/{order.pk}/confirm/", {f"{prefix}-code": order.code}, follow=True)
    assert "状态下不能做这项操作" in response.content.decode()
    assert (
        Account.objects.get(
            pk=Account.objects.get(member=scene.world.members["volunteer"], kind="earned").pk
        ).balance_minutes
        == after
    )


def test_htmx_swaps_only_the_order_card(scene: Scene) -> None:
    client = scene.client("volunteer")
    order = scene.orders["dispatched"]
    response = client.post(f"/volunteer/orders/{order.pk}/accept/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith("<article") and f'id="order-{order.pk}"' in html and "<html" not in html
    assert f"/volunteer/orders/{order.pk}/check-in/" in html
    response = client.post(f"/volunteer/orders/{order.pk}/accept/", HTTP_HX_REQUEST="true")
    assert response.status_code == 422
    assert "未能办理" in response.content.decode()
    # Taking from the pool moves the card into "my orders" (an out-of-band swap).
    taken = client.post(f"/volunteer/orders/{scene.orders['open'].pk}/take/", HTTP_HX_REQUEST="true")
    assert taken.status_code == 200
    assert 'hx-swap-oob="afterbegin:#mine-list"' in taken.content.decode()


def test_a_volunteer_cannot_act_on_someone_elses_order(scene: Scene) -> None:
    order = scene.orders["dispatched"]
    for persona in ("neighbour", "stranger"):
        response = scene.client(persona).post(f"/volunteer/orders/{order.pk}/accept/")
        assert response.status_code in (403, 404), persona
    assert scene.client("stranger").post(f"/volunteer/orders/{scene.orders['open'].pk}/take/").status_code == 403
    assert scene.client("volunteer").post(f"/volunteer/orders/{order.pk}/explode/").status_code == 404
    assert scene.client("volunteer").post(f"/volunteer/orders/{10**30}/take/").status_code == 404
    assert scene.client("volunteer").get(f"/volunteer/orders/{order.pk}/accept/").status_code == 405
    order.refresh_from_db()
    assert order.state == OrderState.DISPATCHED


# ---------------------------------------------------------------------------------------------
# The recipient's side
# ---------------------------------------------------------------------------------------------


def test_a_relative_orders_in_three_steps(scene: Scene) -> None:
    world = scene.world
    client = scene.client("relative")
    item = scene.items["cleaning"]
    recipient = world.members["recipient"]
    home = client.get("/").content.decode()
    step2 = f"/order/{item.pk}/?for={recipient.pk}"
    assert step2.replace("&", "&amp;") in home or step2 in home
    times = client.get(step2).content.decode()
    slot = re.search(rf'href="(/order/{item.pk}/confirm/\?for={recipient.pk}&amp;start=[^"]+)"', times)
    assert slot is not None
    confirm_url = slot.group(1).replace("&amp;", "&")
    confirm = client.get(confirm_url)
    assert confirm.status_code == 200
    start = confirm_url.split("start=")[1]
    response = client.post(
        confirm_url, {"recipient": recipient.pk, "start": start, "planned_minutes": 60, "notes": "请先打电话"}
    )
    assert response.status_code == 302
    order = Order.objects.latest("pk")
    assert (order.recipient, order.payer, order.channel, order.notes) == (recipient, "recipient", "app", "请先打电话")
    assert response["Location"] == f"/orders/{order.pk}/"
    assert "点好了" in client.get(response["Location"]).content.decode()


def test_an_order_the_recipient_cannot_pay_for_is_refused_with_what_to_do(scene: Scene) -> None:
    client = scene.client("recipient")
    recipient = scene.world.members["recipient"]
    url = f"/order/{scene.items['repair'].pk}/confirm/"
    form = {"recipient": recipient.pk, "start": _slot(3), "planned_minutes": 180, "notes": "留言"}
    do_adjustment(None, member=recipient, minutes=-590, bucket="reserve", reason="测试：只留 10 分钟")
    before = Order.objects.count()
    response = client.post(url, form)
    assert response.status_code == 422
    html = response.content.decode()
    assert "时间余额不足" in html and "转赠" in html  # the why, and what to do
    assert "留言" in html  # what was typed is still there
    assert Order.objects.count() == before


def test_ordering_refuses_bad_times_and_other_peoples_relatives(scene: Scene) -> None:
    client = scene.client("relative")
    item = scene.items["cleaning"]
    recipient = scene.world.members["recipient"]
    url = f"/order/{item.pk}/confirm/"
    past = (timezone.localtime() - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(url, {"recipient": recipient.pk, "start": past, "planned_minutes": 60})
    assert response.status_code == 422 and "已经过去了" in response.content.decode()
    response = client.post(
        url, {"recipient": scene.world.members["neighbour"].pk, "start": _slot(), "planned_minutes": 60}
    )
    assert response.status_code == 422
    response = client.post(url, {"recipient": recipient.pk, "start": "not-a-time", "planned_minutes": 99999})
    assert response.status_code == 422
    assert client.get(f"/order/{item.pk}/confirm/").status_code == 302  # no time chosen: back to step 2
    assert scene.client("neighbour").get(f"/order/{item.pk}/").status_code == 403
    assert client.get(f"/order/{10**20}/").status_code == 404
    assert Order.objects.count() == 3


def test_the_recipient_sees_the_code_and_confirms_or_disputes(scene: Scene) -> None:
    order = scene.orders["completed"]
    client = scene.client("recipient")
    page = client.get(f"/orders/{order.pk}/").content.decode()
    assert order.code in page and "code-box" in page
    assert order.code not in scene.client("volunteer").get("/volunteer/").content.decode()
    response = client.post(f"/orders/{order.pk}/dispute/", {"dispute-reason": ""})
    assert response.status_code == 422
    response = client.post(f"/orders/{order.pk}/dispute/", {"dispute-reason": "只来了二十分钟"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.DISPUTED and order.dispute_reason == "只来了二十分钟"


def test_the_relative_confirms_then_rates(scene: Scene) -> None:
    order = scene.orders["completed"]
    client = scene.client("relative")
    response = client.post(f"/orders/{order.pk}/confirm/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "<html" not in response.content.decode()
    order.refresh_from_db()
    # The planned hour, served (an hour between check-in and check-out), technical service ×2.
    assert order.state == OrderState.CONFIRMED and order.credited_minutes == 120
    response = client.post(f"/orders/{order.pk}/review/", {"review-rating": "9"})
    assert response.status_code == 422
    response = client.post(f"/orders/{order.pk}/review/", {"review-rating": "5", "review-comment": "很细心"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert (order.state, order.rating, order.review_comment) == (OrderState.REVIEWED, 5, "很细心")
    assert scene.client("neighbour").post(f"/orders/{order.pk}/review/", {"review-rating": "1"}).status_code == 403


# ---------------------------------------------------------------------------------------------
# Time: balance, statement, giving
# ---------------------------------------------------------------------------------------------


def test_my_time_shows_the_three_parts_in_plain_words(scene: Scene) -> None:
    html = scene.client("recipient").get("/me/time/").content.decode()
    for words in ("待结算", "可兑换物品", "储存", "10 小时"):
        assert words in html
    assert "bucket" not in html.lower()


def test_giving_time_to_a_relative_once_even_when_submitted_twice(scene: Scene) -> None:
    world = scene.world
    client = scene.client("relative")
    page = client.get("/me/give/").content.decode()
    key = re.search(r'name="relative-idempotency_key" value="([0-9a-f]{32})"', page)
    assert key is not None
    form = {
        "kind": "relative",
        "relative-idempotency_key": key.group(1),
        "relative-to_member": world.members["recipient"].pk,
        "relative-hours": "1",
        "relative-minutes": "30",
        "relative-memo": "给爸爸",
    }
    before = Transaction.objects.count()
    first = client.post("/me/give/", form)
    second = client.post("/me/give/", form, follow=True)
    assert first.status_code == 302 and second.status_code == 200
    assert Transaction.objects.count() == before + 1
    assert "没有重复送出" in second.content.decode()
    assert Account.objects.get(member=world.members["relative"], kind="reserve").balance_minutes == 300 - 90
    # Two renders of the form give two different keys.
    again = client.get("/me/give/").content.decode()
    assert key.group(1) not in again


def test_giving_more_than_one_has_is_refused_and_keeps_the_form(scene: Scene) -> None:
    client = scene.client("relative")
    form = {
        "kind": "donation",
        "donation-idempotency_key": "k" * 32,
        "donation-hours": "9999",
        "donation-minutes": "0",
        "donation-memo": "捐给需要的人",
    }
    response = client.post("/me/give/", form)
    assert response.status_code == 422
    html = response.content.decode()
    assert "时间余额不足" in html and 'value="9999"' in html and "捐给需要的人" in html
    response = client.post("/me/give/", {**form, "donation-hours": "0"})
    assert response.status_code == 422 and "至少 15 分钟" in response.content.decode()
    response = client.post("/me/give/", {**form, "donation-hours": "1"})
    assert response.status_code == 302
    # Only linked relatives can receive.
    form = {"kind": "relative", "relative-idempotency_key": "x" * 32, "relative-hours": "1", "relative-minutes": "0"}
    response = client.post("/me/give/", {**form, "relative-to_member": scene.world.members["neighbour"].pk})
    assert response.status_code == 422


# ---------------------------------------------------------------------------------------------
# The staff workbench
# ---------------------------------------------------------------------------------------------


def test_staff_find_and_approve_a_pending_member(scene: Scene) -> None:
    world = scene.world
    pending = make_member(world.community, "周建国", login="zhoujianguo")
    pending.status = MemberStatus.PENDING
    pending.save(update_fields=["status"])
    staff = scene.client("staff")
    page = staff.get("/staff/members/").content.decode()
    assert page.index("周建国") < page.index("王秀英")  # pending first
    assert "138****0000" in page and "13800000000" not in page
    found = staff.get("/staff/members/", {"q": "周建"}).content.decode()
    assert "周建国" in found and "王秀英" not in found
    assert staff.get("/staff/members/", {"q": "\x00", "status": "nonsense"}).status_code == 200
    assert "通过审核" not in scene.client("operator").get("/staff/members/").content.decode()
    assert scene.client("staff_next").post(f"/staff/members/{pending.pk}/approve/").status_code == 403
    response = staff.post(f"/staff/members/{pending.pk}/approve/", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and f'id="member-{pending.pk}"' in response.content.decode()
    pending.refresh_from_db()
    assert pending.status == MemberStatus.ACTIVE
    response = staff.post(f"/staff/members/{pending.pk}/approve/", follow=True)
    assert "当前状态不能办理" in response.content.decode()


def test_staff_orders_list_puts_overdue_and_urgent_first(scene: Scene) -> None:
    overdue = _order(scene.world, scene.items["cleaning"], days=5)
    Order.objects.filter(pk=overdue.pk).update(created_at=timezone.now() - dt.timedelta(days=3))
    page = scene.client("staff").get("/staff/orders/").content.decode()
    positions = [page.index(f"#{o.pk} ") for o in (overdue, scene.orders["open"], scene.orders["completed"])]
    assert positions == sorted(positions)
    assert "超时未派" in page and "紧急" in page
    assert "#" not in scene.client("other_bank_staff").get("/staff/orders/").content.decode().split("<main")[1].split(
        "</main>"
    )[0].replace("&#x27;", "")


def test_staff_dispatch_from_a_ranked_list_of_volunteers(scene: Scene) -> None:
    world = scene.world
    order = scene.orders["open"]
    staff = scene.client("staff")
    page = staff.get(f"/staff/orders/{order.pk}/").content.decode()
    assert world.members["volunteer"].name in page and "匹配" in page
    assert world.members["stranger"].name not in page  # another bank's volunteer is never suggested
    response = staff.post(f"/staff/orders/{order.pk}/dispatch/", {"volunteer": world.members["stranger"].pk})
    assert response.status_code == 422
    response = staff.post(f"/staff/orders/{order.pk}/dispatch/", {"volunteer": world.members["volunteer"].pk})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.DISPATCHED and order.volunteer == world.members["volunteer"]
    assert (
        scene.client("other_bank_staff")
        .post(f"/staff/orders/{order.pk}/dispatch/", {"volunteer": world.members["volunteer"].pk})
        .status_code
        == 403
    )


def test_staff_resolve_a_dispute(scene: Scene) -> None:
    order = scene.orders["completed"]
    order_actions.do_dispute(scene.world.users["recipient"], order, reason="时间不对")
    staff = scene.client("staff")
    page = staff.get(f"/staff/orders/{order.pk}/").content.decode()
    assert "处理争议" in page and "时间不对" in page
    response = staff.post(f"/staff/orders/{order.pk}/confirm/", {"actual_minutes": "0"})
    assert response.status_code == 422
    response = staff.post(f"/staff/orders/{order.pk}/confirm/", {"actual_minutes": "40"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.CONFIRMED and order.actual_minutes == 40 and order.credited_minutes == 80
    assert (
        scene.client("operator").post(f"/staff/orders/{order.pk}/confirm/", {"actual_minutes": "40"}).status_code == 403
    )


def test_staff_cancel_needs_a_reason(scene: Scene) -> None:
    order = scene.orders["open"]
    staff = scene.client("staff")
    response = staff.post(f"/staff/orders/{order.pk}/cancel/", {"cancel-reason": ""})
    assert response.status_code == 422
    response = staff.post(f"/staff/orders/{order.pk}/cancel/", {"cancel-reason": "老人住院了"})
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.state == OrderState.CANCELLED and order.cancel_reason == "老人住院了"


def test_a_volunteer_cannot_accept_an_order_re_dispatched_to_another_meanwhile(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page's access check reads the order before the action locks it: an order re-dispatched in between is
    checked again on the locked row (as the API does), so the first volunteer neither accepts nor declines the
    second one's order."""
    from timebank.orders import views_volunteer

    order = scene.orders["dispatched"]
    other = make_member(scene.world.community, "李改派", roles=["volunteer"])
    real = views_volunteer.access_order

    def then_re_dispatched(user: User, order_id: int, action: str = "read") -> Any:
        found = real(user, order_id, action)  # the caller passed, as the order was a moment ago
        order_actions.do_decline(scene.world.users["staff"], Order.objects.get(pk=order_id), "改派")
        order_actions.do_dispatch(scene.world.users["staff"], Order.objects.get(pk=order_id), other)
        return found

    for action in ("accept", "decline"):
        if Order.objects.get(pk=order.pk).volunteer_id != scene.world.members["volunteer"].pk:  # back to the first
            order_actions.do_decline(scene.world.users["staff"], Order.objects.get(pk=order.pk), "改派")
            order_actions.do_dispatch(
                scene.world.users["staff"], Order.objects.get(pk=order.pk), scene.world.members["volunteer"]
            )
        monkeypatch.setattr(views_volunteer, "access_order", then_re_dispatched)
        response = scene.client("volunteer").post(f"/volunteer/orders/{order.pk}/{action}/", HTTP_HX_REQUEST="true")
        monkeypatch.undo()
        assert response.status_code == 422, (action, response.content.decode()[-2000:])
        order.refresh_from_db()
        assert (order.state, order.volunteer_id) == (OrderState.DISPATCHED, other.pk), action
        assert not order.events.filter(action=action, actor=scene.world.users["volunteer"]).exists(), action
