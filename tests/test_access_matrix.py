"""Who may do what: every persona × every endpoint × targets inside and outside the caller's subtree.

The expected outcomes are tables derived from API-CONTRACT.md ("Who may do what"). Each test walks all
personas against one endpoint and one target, collects every mismatch, and reports them together.

Refused calls must answer 401 (anonymous) or 403/404 (everyone else) with the contract's error body,
and must change nothing: no rows added, no member, rules or balance altered.

Two readings of the contract that the tables encode:
- Members may read the org structure of their own bank (to choose where to be served); that is not
  "their subtree", but it reveals nothing of another bank.
- A member may read their own record and their linked relatives' (they may read their balances and
  order for them); personal data stays masked for relatives.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection

from tests.conftest import PERSONAS, Api, World, make_member
from timebank.audit.models import AuditEntry
from timebank.ledger.actions import do_adjustment
from timebank.ledger.models import Account, Leg, Transaction
from timebank.members.models import Member, MemberStatus, RelativeLink
from timebank.orgs.models import Org, Rules, User

CLOSED = (MemberStatus.SUSPENDED, MemberStatus.LEFT)

SU = frozenset({"superuser"})
A_MEMBERS = frozenset({"volunteer", "recipient", "relative", "neighbour"})
B_MEMBERS = frozenset({"stranger"})

# ---------------------------------------------------------------------------------------------
# The tables.
# Bank A (台儿庄): 台儿庄区时间银行 → 运河街道 → 顺河社区 (→ 顺河社区网点); → 泥沟镇 → 泥沟村.
# Bank B (南充): 南充市爱心时间银行 → 和平路街道 → 驻春路社区.
# volunteer and recipient live in 顺河社区; relative (linked to recipient) and neighbour in 泥沟村;
# stranger in 驻春路社区.
# ---------------------------------------------------------------------------------------------

A_ORGS = frozenset({"台儿庄区时间银行", "运河街道", "泥沟镇", "顺河社区", "泥沟村", "顺河社区网点"})
B_ORGS = frozenset({"南充市爱心时间银行", "和平路街道", "驻春路社区"})

# GET /orgs: exactly these orgs (by name), never anything else.
ORG_LIST: dict[str, frozenset[str]] = {
    "superuser": A_ORGS | B_ORGS,
    "head_office_admin": A_ORGS,
    "branch_admin": frozenset({"运河街道", "顺河社区", "顺河社区网点"}),
    "staff": frozenset({"顺河社区", "顺河社区网点"}),
    "staff_next": frozenset({"泥沟村"}),
    "operator": A_ORGS,
    "assessor": A_ORGS,
    "supervisor": frozenset({"运河街道", "顺河社区", "顺河社区网点"}),
    "other_bank_admin": B_ORGS,
    "other_bank_staff": frozenset({"驻春路社区"}),
    **dict.fromkeys(A_MEMBERS, A_ORGS),
    **dict.fromkeys(B_MEMBERS, B_ORGS),
}

# GET /orgs/{id}: readers see their subtree (members: their own bank).
READ_ORG: dict[str, frozenset[str]] = {
    "bank": SU | {"head_office_admin", "operator", "assessor"} | A_MEMBERS,
    "community": SU | {"head_office_admin", "branch_admin", "staff", "operator", "assessor", "supervisor"} | A_MEMBERS,
    "community2": SU | {"head_office_admin", "staff_next", "operator", "assessor"} | A_MEMBERS,
    "other_community": SU | {"other_bank_admin", "other_bank_staff"} | B_MEMBERS,
}

# POST /orgs and POST /staff: admins of the parent's subtree (head offices: the superuser only).
CREATE_UNDER: dict[str, frozenset[str]] = {
    "bank": SU | {"head_office_admin"},
    "branch": SU | {"head_office_admin", "branch_admin"},
    "community": SU | {"head_office_admin", "branch_admin"},
    "community2": SU | {"head_office_admin"},
    "other_community": SU | {"other_bank_admin"},
    "none": SU,
}

# GET /orgs/{id}/rules: the bank's admins and its staff (operators and assessors are not named).
READ_RULES: dict[str, frozenset[str]] = {
    "bank": SU | {"head_office_admin", "branch_admin", "staff", "staff_next"},
    "other_bank": SU | {"other_bank_admin", "other_bank_staff"},
}
# PATCH /orgs/{id}/rules: that head office's admins.
WRITE_RULES: dict[str, frozenset[str]] = {
    "bank": SU | {"head_office_admin"},
    "other_bank": SU | {"other_bank_admin"},
}

# GET /members: exactly these members (by persona), never anything else.
MEMBER_LIST: dict[str, frozenset[str]] = {
    "superuser": A_MEMBERS | B_MEMBERS,
    "head_office_admin": A_MEMBERS,
    "branch_admin": frozenset({"volunteer", "recipient"}),
    "staff": frozenset({"volunteer", "recipient"}),
    "staff_next": frozenset({"relative", "neighbour"}),
    "operator": A_MEMBERS,
    "assessor": frozenset(),
    "supervisor": frozenset(),  # reads figures, never members
    "other_bank_admin": B_MEMBERS,
    "other_bank_staff": B_MEMBERS,
    "volunteer": frozenset({"volunteer"}),
    "recipient": frozenset({"recipient", "relative"}),
    "relative": frozenset({"relative", "recipient"}),
    "neighbour": frozenset({"neighbour"}),
    "stranger": frozenset({"stranger"}),
}

# GET /members/{id}, balance, statement: the member, linked relatives, staff/admins/operators of the home subtree.
READ_MEMBER: dict[str, frozenset[str]] = {
    "recipient": SU | {"head_office_admin", "branch_admin", "staff", "operator", "recipient", "relative"},
    "volunteer": SU | {"head_office_admin", "branch_admin", "staff", "operator", "volunteer"},
    "neighbour": SU | {"head_office_admin", "staff_next", "operator", "neighbour"},
    "stranger": SU | {"other_bank_admin", "other_bank_staff", "stranger"},
}

# Create, edit, approve, link relatives, reveal the ID number, adjustments, withdrawals, reversals:
# staff, branch and head-office admins of the member's home subtree.
MANAGE_MEMBER: dict[str, frozenset[str]] = {
    "recipient": SU | {"head_office_admin", "branch_admin", "staff"},
    "volunteer": SU | {"head_office_admin", "branch_admin", "staff"},
    "neighbour": SU | {"head_office_admin", "staff_next"},
    "stranger": SU | {"other_bank_admin", "other_bank_staff"},
}
# POST /members with this home org.
CREATE_MEMBER_IN: dict[str, frozenset[str]] = {
    "community": SU | {"head_office_admin", "branch_admin", "staff"},
    "community2": SU | {"head_office_admin", "staff_next"},
    "other_community": SU | {"other_bank_admin", "other_bank_staff"},
}

# Transfers and donations: the member, from their own account (and the superuser, who may do everything).
SPEND_FROM: dict[str, frozenset[str]] = {
    "recipient": SU | {"recipient"},
    "stranger": SU | {"stranger"},
}

# GET /ledger/verify: head-office admins (their bank) and the superuser (everything).
VERIFY: dict[str, frozenset[str]] = {
    "own": SU | {"head_office_admin", "other_bank_admin"},
    "bank": SU | {"head_office_admin"},
    "other_bank": SU | {"other_bank_admin"},
}


def test_tables_name_only_known_personas() -> None:
    tables: list[dict[str, frozenset[str]]] = [
        READ_ORG,
        CREATE_UNDER,
        READ_RULES,
        WRITE_RULES,
        READ_MEMBER,
        MANAGE_MEMBER,
        CREATE_MEMBER_IN,
        SPEND_FROM,
        VERIFY,
    ]
    for table in tables:
        for allowed in table.values():
            assert allowed <= set(PERSONAS), allowed - set(PERSONAS)
            assert "anonymous" not in allowed
    assert set(ORG_LIST) == set(MEMBER_LIST) == set(PERSONAS) - {"anonymous"}


# ---------------------------------------------------------------------------------------------
# Machinery.
# ---------------------------------------------------------------------------------------------

CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def error_problem(resp: Any) -> str | None:
    """None when the body is the contract's error body; otherwise what is wrong with it."""
    try:
        body = resp.json()
    except ValueError:
        return f"not JSON: {resp.content[:200]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict) or set(err) != {"code", "message", "fields"}:
        return f"not an error body: {body!r}"[:300]
    if not isinstance(err["code"], str) or not CODE_RE.match(err["code"]):
        return f"code is not snake_case: {err['code']!r}"
    if not isinstance(err["message"], str) or not err["message"]:
        return f"message is empty: {err!r}"
    if not isinstance(err["fields"], dict):
        return f"fields is not an object: {err!r}"
    return None


def snapshot() -> tuple[Any, ...]:
    """Everything a refused call must leave alone."""
    counted = (Org, User, Member, RelativeLink, Transaction, Leg, AuditEntry)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT "
            + ", ".join(f"(SELECT COUNT(*) FROM {connection.ops.quote_name(m._meta.db_table)})" for m in counted)
        )
        counts = cursor.fetchone()
    return (
        counts,
        list(Member.objects.order_by("pk").values()),
        list(Rules.objects.order_by("pk").values()),
        list(Account.objects.order_by("pk").values_list("pk", "balance_minutes")),
        list(User.objects.order_by("pk").values_list("pk", "username", "password", "role", "org_id", "is_active")),
    )


@dataclass
class Call:
    method: str
    url: str
    body: Any = None


def get_call(url: str, params: dict[str, Any] | None = None) -> Callable[[str], Call]:
    """The same GET for every persona."""
    return lambda _persona: Call("get", url, params)


def short(resp: Any) -> str:
    return f"{resp.status_code} {resp.content[:160].decode(errors='replace')}"


def run_matrix(
    world: World,
    label: str,
    make: Callable[[str], Call],
    allowed: Iterable[str],
    *,
    ok: Iterable[int] = (200,),
    resets: bool = False,
) -> list[str]:
    """Call the endpoint as every persona and return the mismatches.

    `make(persona)` builds the request. With `resets`, it also puts the target back into the state
    the call needs (so each persona starts from the same place), and the snapshot is retaken after it.
    """
    allowed = set(allowed)
    ok = set(ok)
    problems: list[str] = []
    state: tuple[Any, ...] | None = None  # the database as the last refused call left it
    for persona in PERSONAS:
        if persona in world.members:
            # Suspending or removing a member revokes their tokens: a member persona gets a fresh one each call.
            world._apis.pop(persona, None)
        api = world.api(persona)
        call = make(persona)
        refused = persona not in allowed
        if refused and (state is None or resets):
            state = snapshot()
        resp = api.call(call.method, call.url, call.body)
        where = f"{label} as {persona}"
        if not refused:
            state = None
            if resp.status_code not in ok:
                problems.append(f"{where}: expected {sorted(ok)}, got {short(resp)}")
            elif resp.status_code >= 400 and (bad := error_problem(resp)):
                problems.append(f"{where}: {bad}")
            continue
        expected = {401} if persona == "anonymous" else {403, 404}
        own = world.members.get(persona)
        if own is not None and Member.objects.filter(pk=own.pk, status__in=CLOSED).exists():
            expected = {401}  # a suspended or departed member's token stops at once (contract: trust additions)
        after = snapshot()
        if resp.status_code not in expected:
            problems.append(f"{where}: should be refused with {sorted(expected)}, got {short(resp)}")
        elif bad := error_problem(resp):
            problems.append(f"{where}: {bad}")
        elif after != state:
            problems.append(f"{where}: refused ({resp.status_code}) but changed the database")
        state = after
    return problems


def assert_none(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} mismatches:\n" + "\n".join(problems)


def fund(world: World, persona: str, minutes: int, bucket: str = "reserve") -> None:
    do_adjustment(
        world.users["superuser"], member=world.members[persona], minutes=minutes, bucket=bucket, reason="opening"
    )


# ---------------------------------------------------------------------------------------------
# Orgs, rules, staff.
# ---------------------------------------------------------------------------------------------


def list_all(
    world: World, persona: str, url: str, params: dict[str, Any] | None = None, *, limit: int = 2
) -> tuple[int, list[Any]]:
    """Walk every page (by default with a small limit, so pagination cannot leak either)."""
    items: list[Any] = []
    cursor: str | None = None
    for _page in range(50):
        query = {**(params or {}), "limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = world.api(persona).get(url, query)
        if resp.status_code != 200:
            return resp.status_code, items
        body = resp.json()
        items += body["items"]
        cursor = body["next_cursor"]
        if not cursor:
            break
    return 200, items


def test_list_orgs_shows_exactly_the_subtree(world: World) -> None:
    problems: list[str] = []
    assert world.api("anonymous").get("/api/v1/orgs").status_code == 401
    all_orgs = list(Org.objects.all())
    for persona, expected in ORG_LIST.items():
        status, items = list_all(world, persona, "/api/v1/orgs")
        names = {o["name"] for o in items}
        if status != 200 or names != expected or len(items) != len(names):
            problems.append(f"GET /orgs as {persona}: {status} {sorted(names)} != {sorted(expected)}")
        # Filters never widen the view.
        for other in all_orgs:
            status, items = list_all(world, persona, "/api/v1/orgs", {"parent_id": other.pk}, limit=200)
            leaked = {o["name"] for o in items} - expected
            if status >= 500 or leaked:
                problems.append(f"GET /orgs?parent_id={other.name} as {persona}: {status}, leaked {leaked}")
    assert_none(problems)


def test_get_org(world: World) -> None:
    problems: list[str] = []
    for target, allowed in READ_ORG.items():
        url = f"/api/v1/orgs/{getattr(world, target).pk}"
        problems += run_matrix(world, f"GET /orgs/{target}", get_call(url), allowed)
    assert_none(problems)


def test_create_org(world: World) -> None:
    problems: list[str] = []
    for parent, kind in [
        ("none", "head_office"),
        ("bank", "branch"),
        ("branch", "sub_branch"),
        ("community", "outlet"),
        ("community2", "outlet"),
        ("other_community", "outlet"),
    ]:
        pid = None if parent == "none" else getattr(world, parent).pk

        def make(persona: str, pid: int | None = pid, kind: str = kind) -> Call:
            return Call("post", "/api/v1/orgs", {"name": f"新机构 {persona}", "kind": kind, "parent_id": pid})

        problems += run_matrix(world, f"POST /orgs under {parent}", make, CREATE_UNDER[parent], ok=(200, 201))
    assert_none(problems)


def test_rules(world: World) -> None:
    problems: list[str] = []
    values = iter(range(10, 100))
    for target in ("bank", "other_bank"):
        url = f"/api/v1/orgs/{getattr(world, target).pk}/rules"
        problems += run_matrix(world, f"GET rules of {target}", get_call(url), READ_RULES[target])

        def make(persona: str, url: str = url) -> Call:
            return Call("patch", url, {"goods_share_percent": next(values)})

        problems += run_matrix(world, f"PATCH rules of {target}", make, WRITE_RULES[target])
    assert_none(problems)


def test_create_staff(world: World) -> None:
    problems: list[str] = []
    for target, role in [
        ("bank", "operator"),
        ("branch", "staff"),
        ("community", "staff"),
        ("community2", "staff"),
        ("other_community", "staff"),
    ]:

        def make(persona: str, target: str = target, role: str = role) -> Call:
            body = {"username": f"new-{target}-{persona}", "password": "pass-word-9", "name": "新人", "role": role}
            return Call("post", "/api/v1/staff", {**body, "org_id": getattr(world, target).pk})

        problems += run_matrix(world, f"POST /staff at {target}", make, CREATE_UNDER[target], ok=(200, 201))
    assert_none(problems)


def test_no_staff_login_above_the_callers_reach(world: World) -> None:
    # A branch admin cannot make a head-office admin; plain staff cannot make logins at all.
    before = snapshot()
    body = {"username": "up", "password": "pass-word-9", "name": "x", "org_id": world.bank.pk}
    resp = world.api("branch_admin").post("/api/v1/staff", {**body, "role": "head_office_admin"})
    assert resp.status_code in (403, 404), short(resp)
    resp = world.api("staff").post("/api/v1/staff", {**body, "org_id": world.community.pk, "role": "staff"})
    assert resp.status_code in (403, 404), short(resp)
    assert snapshot() == before


# ---------------------------------------------------------------------------------------------
# Members.
# ---------------------------------------------------------------------------------------------


def test_list_members_shows_exactly_the_subtree(world: World) -> None:
    problems: list[str] = []
    assert world.api("anonymous").get("/api/v1/members").status_code == 401
    persona_of = {m.pk: p for p, m in world.members.items()}
    all_orgs = list(Org.objects.all())
    for persona, expected in MEMBER_LIST.items():
        status, items = list_all(world, persona, "/api/v1/members")
        seen = {persona_of.get(m["id"], str(m["id"])) for m in items}
        if not (status == 200 and seen == expected) and not (not expected and status in (403, 404)):
            problems.append(f"GET /members as {persona}: {status} {sorted(seen)} != {sorted(expected)}")
        for other in all_orgs:
            status, items = list_all(world, persona, "/api/v1/members", {"org_id": other.pk}, limit=200)
            leaked = {persona_of.get(m["id"], str(m["id"])) for m in items} - expected
            if status >= 500 or leaked:
                problems.append(f"GET /members?org_id={other.name} as {persona}: {status}, leaked {leaked}")
        for q in ("李", "陈", "1380"):
            status, items = list_all(world, persona, "/api/v1/members", {"q": q}, limit=200)
            leaked = {persona_of.get(m["id"], str(m["id"])) for m in items} - expected
            if status >= 500 or leaked:
                problems.append(f"GET /members?q={q} as {persona}: {status}, leaked {leaked}")
    assert_none(problems)


def test_create_member(world: World) -> None:
    problems: list[str] = []
    for home, allowed in CREATE_MEMBER_IN.items():

        def make(persona: str, home: str = home) -> Call:
            login = {"username": f"m-{home}-{persona}", "password": "pass-word-9"}
            body = {"name": "新会员", "home_org_id": getattr(world, home).pk, "login": login}
            return Call("post", "/api/v1/members", body)

        problems += run_matrix(world, f"POST /members in {home}", make, allowed, ok=(200, 201))
    assert_none(problems)


def test_get_and_patch_member(world: World) -> None:
    problems: list[str] = []
    for target, allowed in READ_MEMBER.items():
        url = f"/api/v1/members/{world.members[target].pk}"
        problems += run_matrix(world, f"GET member {target}", get_call(url), allowed)

        def make(persona: str, url: str = url) -> Call:
            return Call("patch", url, {"occupation": f"职业 {persona}"})

        problems += run_matrix(world, f"PATCH member {target}", make, MANAGE_MEMBER[target])
    assert_none(problems)


def test_readers_never_see_more_than_they_may(world: World) -> None:
    """Reading a member never shows the ID number; relatives see the phone masked and no address."""
    recipient = world.members["recipient"]
    number = recipient.id_number()
    assert number
    problems: list[str] = []
    for persona in READ_MEMBER["recipient"]:
        for url in (f"/api/v1/members/{recipient.pk}", "/api/v1/members"):
            resp = world.api(persona).get(url)
            if number in resp.content.decode():
                problems.append(f"GET {url} as {persona} shows the ID number")
        body = world.api(persona).get(f"/api/v1/members/{recipient.pk}").json()
        full = persona != "relative"
        if (body["phone"] == recipient.phone) != full or (body["address"] == recipient.address) != full:
            problems.append(f"GET member as {persona}: phone {body['phone']!r}, address {body['address']!r}")
    assert_none(problems)


def test_move_member_home_needs_both_orgs_in_the_subtree(world: World) -> None:
    recipient = world.members["recipient"]
    url = f"/api/v1/members/{recipient.pk}"

    def make(persona: str) -> Call:
        Member.objects.filter(pk=recipient.pk).update(home_org=world.community)
        return Call("patch", url, {"home_org_id": world.community2.pk})

    # 顺河社区 → 泥沟村: only callers whose subtree holds both (the bank's admins).
    problems = run_matrix(world, "move 顺河→泥沟村", make, SU | {"head_office_admin"}, resets=True)

    def make_other(persona: str) -> Call:
        Member.objects.filter(pk=recipient.pk).update(home_org=world.community)
        return Call("patch", url, {"home_org_id": world.other_community.pk})

    # To another bank: 409 for those who may manage the member, refused for everyone else.
    problems += run_matrix(world, "move to bank B", make_other, MANAGE_MEMBER["recipient"], ok=(409,), resets=True)
    assert_none(problems)
    # A 409 changed nothing either.
    Member.objects.filter(pk=recipient.pk).update(home_org=world.community)
    before = snapshot()
    resp = world.api("head_office_admin").patch(url, {"home_org_id": world.other_community.pk, "occupation": "x"})
    assert resp.status_code == 409, short(resp)
    assert snapshot() == before


def test_member_status_actions(world: World) -> None:
    problems: list[str] = []
    for action, from_status in [
        ("approve", MemberStatus.PENDING),
        ("suspend", MemberStatus.ACTIVE),
        ("reactivate", MemberStatus.SUSPENDED),
        ("leave", MemberStatus.ACTIVE),
    ]:
        for target in ("recipient", "stranger"):
            member = world.members[target]

            def make(persona: str, member: Member = member, action: str = action, status: str = from_status) -> Call:
                Member.objects.filter(pk=member.pk).update(status=status)
                return Call("post", f"/api/v1/members/{member.pk}/{action}")

            problems += run_matrix(world, f"{action} {target}", make, MANAGE_MEMBER[target], resets=True)
    assert_none(problems)


def test_approve_self_registered_member(world: World) -> None:
    body = {"name": "自助", "home_org_id": world.community.pk, "login": {"username": "self", "password": "pass-word-9"}}
    resp = world.api("anonymous").post("/api/v1/register", body)
    assert resp.status_code in (200, 201), short(resp)
    assert resp.json()["status"] == "pending"
    member_id = resp.json()["id"]

    def make(persona: str) -> Call:
        Member.objects.filter(pk=member_id).update(status=MemberStatus.PENDING)
        return Call("post", f"/api/v1/members/{member_id}/approve")

    assert_none(run_matrix(world, "approve self-registered", make, MANAGE_MEMBER["recipient"], resets=True))


def test_link_relatives(world: World) -> None:
    problems: list[str] = []
    for target in ("volunteer", "stranger"):
        member = world.members[target]
        # A second member in the same community, so the pair lies inside one subtree.
        other = make_member(member.home_org, "同社区会员")

        def make(persona: str, member: Member = member, other: Member = other) -> Call:
            RelativeLink.objects.filter(member__in=[member, other], relative__in=[member, other]).delete()
            body = {"relative_id": other.pk, "relation": "配偶"}
            return Call("post", f"/api/v1/members/{member.pk}/relatives", body)

        problems += run_matrix(
            world, f"link relative of {target}", make, MANAGE_MEMBER[target], ok=(200, 201), resets=True
        )
    assert_none(problems)


def test_reveal_id_number(world: World) -> None:
    problems: list[str] = []
    for target in ("recipient", "neighbour", "stranger"):
        url = f"/api/v1/members/{world.members[target].pk}/id-number"
        problems += run_matrix(world, f"id-number of {target}", get_call(url), MANAGE_MEMBER[target])
    assert_none(problems)


def test_reveal_id_number_is_audited(world: World) -> None:
    before = AuditEntry.objects.count()
    resp = world.api("staff").get(f"/api/v1/members/{world.members['recipient'].pk}/id-number")
    assert resp.status_code == 200, short(resp)
    assert AuditEntry.objects.count() == before + 1


def test_balance_and_statement(world: World) -> None:
    problems: list[str] = []
    for target, allowed in READ_MEMBER.items():
        fund(world, target, 120)
        for what in ("balance", "statement"):
            url = f"/api/v1/members/{world.members[target].pk}/{what}"
            problems += run_matrix(world, f"{what} of {target}", get_call(url), allowed)
    assert_none(problems)


# ---------------------------------------------------------------------------------------------
# The ledger.
# ---------------------------------------------------------------------------------------------


def test_transfers(world: World) -> None:
    problems: list[str] = []
    for source, to, kind in [("recipient", "relative", "relative"), ("stranger", None, "donation")]:
        fund(world, source, 600)
        body = {
            "from_member_id": world.members[source].pk,
            "to_member_id": world.members[to].pk if to else None,
            "minutes": 1,
            "kind": kind,
        }

        def make(persona: str, body: dict[str, Any] = body) -> Call:
            return Call(
                "post", "/api/v1/transfers", {**body, "idempotency_key": f"t-{body['from_member_id']}-{persona}"}
            )

        problems += run_matrix(world, f"transfer from {source}", make, SPEND_FROM[source], ok=(200, 201))
    assert_none(problems)


def test_adjustments_and_withdrawals(world: World) -> None:
    problems: list[str] = []
    for target in ("recipient", "neighbour", "stranger"):
        fund(world, target, 600)
        member_id = world.members[target].pk

        def adjust(persona: str, member_id: int = member_id) -> Call:
            body = {"member_id": member_id, "minutes": 30, "bucket": "earned", "reason": "纸质记录迁移"}
            return Call("post", "/api/v1/ledger/adjustments", {**body, "idempotency_key": f"a-{member_id}-{persona}"})

        def withdraw(persona: str, member_id: int = member_id) -> Call:
            body = {
                "member_id": member_id,
                "minutes": 10,
                "memo": "理发",
                "idempotency_key": f"w-{member_id}-{persona}",
            }
            return Call("post", "/api/v1/ledger/withdrawals", body)

        # 600 minutes were credited today, so a further 30 waits for a second person (202): still allowed.
        problems += run_matrix(world, f"adjust {target}", adjust, MANAGE_MEMBER[target], ok=(200, 201, 202))
        problems += run_matrix(world, f"withdraw {target}", withdraw, MANAGE_MEMBER[target], ok=(200, 201))
    assert_none(problems)


def test_reversals(world: World) -> None:
    problems: list[str] = []
    for target in ("recipient", "neighbour", "stranger"):
        member = world.members[target]

        def make(persona: str, member: Member = member) -> Call:
            tx, _ = do_adjustment(world.users["superuser"], member=member, minutes=15, bucket="earned", reason="录错")
            return Call("post", "/api/v1/ledger/reversals", {"transaction_id": tx.pk, "reason": "冲正"})

        problems += run_matrix(world, f"reverse for {target}", make, MANAGE_MEMBER[target], ok=(200, 201), resets=True)
    assert_none(problems)


def test_ledger_verify(world: World) -> None:
    fund(world, "recipient", 60)
    fund(world, "stranger", 60)
    problems: list[str] = []
    for bank, allowed in VERIFY.items():
        params = {} if bank == "own" else {"bank_id": getattr(world, bank).pk}
        problems += run_matrix(world, f"verify {bank}", get_call("/api/v1/ledger/verify", params), allowed)
    assert_none(problems)
    for persona in ("superuser", "head_office_admin", "other_bank_admin"):
        resp = world.api(persona).get("/api/v1/ledger/verify")
        assert resp.json()["ok"] is True, resp.json()


# Federation (issue 16): peers are registered by the superuser and read by that bank's head-office admins; a
# transfer to a peer's member is sent from one's own account (the peer here cannot be reached: it stays pending).
PEER_READ: dict[str, frozenset[str]] = {"bank": SU | {"head_office_admin"}}
PEER_CREATE = SU


def _peer_key() -> str:
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def test_federation_peers_and_transfers(world: World, settings: Any) -> None:
    from timebank.federation.actions import do_create_peer

    settings.FEDERATION_NODE_ID = "node-here"
    settings.FEDERATION_SIGNING_KEY = "A" * 43 + "="
    problems: list[str] = []

    def create(persona: str) -> Call:
        body = {
            "node_id": f"node-{persona.replace('_', '-')}",
            "name": "青岛",
            "url": "https://tb.example.org",
            "public_key": _peer_key(),
            "bank_id": world.bank.pk,
            "limit_minutes": 600,
        }
        return Call("post", "/api/v1/federation/peers", body)

    problems += run_matrix(world, "register a peer", create, PEER_CREATE, ok=(201,))
    peer = do_create_peer(
        world.users["superuser"],
        node_id="node-down",
        name="不在线",
        url="https://127.0.0.1:9",
        public_key=_peer_key(),
        bank=world.bank,
        limit_minutes=100_000,
    )
    problems += run_matrix(world, "read a peer", get_call(f"/api/v1/federation/peers/{peer.pk}"), PEER_READ["bank"])
    fund(world, "recipient", 600)

    def send(persona: str) -> Call:
        body = {
            "from_member_id": world.members["recipient"].pk,
            "peer_id": peer.pk,
            "to_account": "7",
            "to_name": "王小红",
            "minutes": 1,
            "idempotency_key": f"fed-{persona}",
        }
        return Call("post", "/api/v1/federation/transfers", body)

    problems += run_matrix(world, "send to a peer's member", send, SPEND_FROM["recipient"], ok=(201,))
    assert_none(problems)


# Moving home to a peer node: the member themselves or staff of their home subtree ask; reading the move is the
# same; deciding is the receiving node's (an outgoing move here: 403 for everyone, the superuser too).
MOVE_ASK: dict[str, frozenset[str]] = {
    "volunteer": MANAGE_MEMBER["volunteer"] | {"volunteer"},
    "neighbour": MANAGE_MEMBER["neighbour"] | {"neighbour"},
}


def test_federation_moves(world: World, settings: Any) -> None:
    from timebank.federation.actions import do_create_peer
    from timebank.federation.models import FederatedMove

    settings.FEDERATION_NODE_ID = "node-here"
    settings.FEDERATION_SIGNING_KEY = "A" * 43 + "="
    settings.FEDERATION_ID_HASH_KEY = "federation-id-hash-key"
    peer = do_create_peer(
        world.users["superuser"],
        node_id="node-down",
        name="不在线",
        url="https://127.0.0.1:9",
        public_key=_peer_key(),
        bank=world.bank,
        limit_minutes=100_000,
    )
    problems: list[str] = []
    for target, allowed in MOVE_ASK.items():
        member = world.members[target]

        def ask(persona: str, member: Member = member) -> Call:
            # Each persona starts from no open move (one open move per member).
            FederatedMove.objects.filter(member=member, state="requested").update(state="refused")
            body = {"member_id": member.pk, "peer_id": peer.pk, "to_org_id": 7, "consent_share_id_number": True}
            return Call("post", "/api/v1/federation/moves", body)

        problems += run_matrix(world, f"ask to move {target}", ask, allowed, ok=(201,), resets=True)
    move = FederatedMove.objects.filter(member=world.members["volunteer"]).latest("pk")
    problems += run_matrix(
        world, "read a move", get_call(f"/api/v1/federation/moves/{move.move_id}"), MOVE_ASK["volunteer"]
    )
    approve = Call("post", f"/api/v1/federation/moves/{move.move_id}/approve", {})
    problems += run_matrix(world, "approve an outgoing move", lambda p: approve, frozenset())
    assert_none(problems)


# ---------------------------------------------------------------------------------------------
# Generated: every GET operation with an id in its path × every persona × objects of another bank
# and outside the caller's subtree, on the demo's two banks (which hold every kind of object).
# ---------------------------------------------------------------------------------------------

# Path parameter → (model, path from the object to its bank's head office id, path to its org or None).
ID_REGISTRY: dict[str, tuple[str, str, str | None]] = {
    "org_id": ("orgs.Org", "head_office_id", "id"),
    "member_id": ("members.Member", "home_org__head_office_id", "home_org_id"),
    "transaction_id": ("ledger.Transaction", "bank_id", None),
    "move_id": ("ledger.InterBankMove", "member__home_org__head_office_id", "member__home_org_id"),
    "order_id": ("orders.Order", "bank_id", "org_id"),
    "need_id": ("needs.Need", "bank_id", "recipient__home_org_id"),
    "import_id": ("needs.CensusImport", "bank_id", "org_id"),
    "call_id": ("hotline.CallLog", "bank_id", "org_id"),
    "notice_id": ("notices.Notice", "bank_id", "org_id"),
    "redemption_id": ("goods.Redemption", "outlet__head_office_id", "outlet_id"),
    "entry_id": ("funds.FundEntry", "bank_id", "org_id"),
    "training_id": ("safety.TrainingSession", "bank_id", "org_id"),
    "incident_id": ("safety.IncidentReport", "bank_id", "org_id"),
    "team_id": ("teams.Team", "bank_id", "org_id"),
    "activity_id": ("teams.Activity", "bank_id", "org_id"),
    "complaint_id": ("evaluation.Complaint", "bank_id", "org_id"),
    "peer_id": ("federation.Peer", "bank_id", None),
    "transfer_id": ("federation.FederatedTransfer", "member__home_org__head_office_id", "member__home_org_id"),
    "federated_move_id": ("federation.FederatedMove", "peer__bank_id", "member__home_org_id"),
    # A staff login (its open work, GET /staff/{id}/open-work): bank and org of the login's org.
    "staff_id": ("orgs.User", "org__head_office_id", "org_id"),
    # Not an id: a voucher's code, looked up by the redemption's outlet.
    "code": ("goods.Redemption", "outlet__head_office_id", "outlet_id"),
}
CODE_FIELD = {"code": "voucher_code", "transfer_id": "transfer_id", "federated_move_id": "move_id"}

BANK1_PERSONAS = (
    "ho_admin",
    "branch_admin",
    "staff",
    "operator",
    "assessor",
    "supervisor",
    "volunteer",
    "recipient",
    "relative",
)
ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])[1-9]\d{16}[\dXx](?![0-9A-Za-z])")
PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
# Readable bank-wide by design (members choose where to be served; the menu and disclosure are public to members).
OWN_DATA = frozenset({"/api/v1/me/data"})  # a member's export of their own data (PIPL): unmasked, audited
# The donation pool is one per bank, read by all its staff through any of its orgs.
BANK_WIDE_READS = frozenset(
    {"/api/v1/orgs/{org_id}", "/api/v1/orgs/{org_id}/menu", "/api/v1/notices/{notice_id}", "/api/v1/orgs/{org_id}/pool"}
)


def _get_operations() -> list[str]:
    from timebank.api_root import api

    schema = api.get_openapi_schema()
    return [path for path, ops in schema["paths"].items() if "get" in ops]


def _bank_head(org: Org) -> int:
    return org.head_office_id or org.pk


def _objects(param: str) -> list[tuple[str, int, int | None]]:
    """(path value, bank id, org id) of every object of the parameter's kind."""
    from django.apps import apps

    label, bank_path, org_path = ID_REGISTRY[param]
    model = apps.get_model(label)
    key = CODE_FIELD.get(param, "pk")
    objects = model.objects.all()
    if label == "orgs.User":
        objects = objects.filter(org__isnull=False).exclude(role="")  # staff logins only
    rows = objects.order_by("pk").values_list(key, bank_path, org_path or bank_path)
    out: list[tuple[str, int, int | None]] = []
    for value, bank, org in rows:
        if label == "orgs.Org" and bank is None:
            bank = value  # a head office is its own bank
        if label == "orgs.User" and bank is None:
            bank = org  # a login of a head office itself
        out.append((str(value), int(bank), org if org_path else None))
    return out


def test_generated_matrix_other_bank_and_outside_subtree(db: None) -> None:
    from timebank.demo.generator import generate

    generate(members=30, seed=1)
    users = {u.username: u for u in User.objects.filter(username__in=[*BANK1_PERSONAS, "nc_admin"])}
    bank1 = _bank_head(users["ho_admin"].org)  # type: ignore[arg-type]
    staff_org = users["staff"].org
    assert staff_org is not None
    subtree = {o.pk for o in Org.objects.all() if o.pk == staff_org.pk or o.parent_id == staff_org.pk}
    unregistered: set[str] = set()
    problems: list[str] = []
    covered = 0
    for path in _get_operations():
        params = re.findall(r"\{(\w+)\}", path)
        if len(params) != 1:
            continue
        param = params[0]
        if param not in ID_REGISTRY:
            unregistered.add(f"{param} (in GET {path})")
            continue
        objects = _objects(param)
        other = [o for o in objects if o[1] != bank1]
        mine = [o for o in objects if o[1] == bank1]
        checks: list[tuple[str, tuple[str, int, int | None]]] = []
        if other:
            checks += [(p, other[0]) for p in BANK1_PERSONAS]
        if mine:
            checks.append(("nc_admin", mine[0]))
        # Outside the staff member's subtree: a sibling community's object (the head office's own settings,
        # rules and pool, are read by all its staff by contract).
        outside = [o for o in mine if o[2] is not None and o[2] not in subtree and o[2] != bank1]
        if outside and path not in BANK_WIDE_READS:
            checks.append(("staff", outside[0]))
        for persona, (value, _bank, _org) in checks:
            url = path.replace("{" + param + "}", value)
            resp = Api(users[persona]).get(url)
            covered += 1
            if resp.status_code == 200 or resp.status_code >= 500:
                problems.append(f"GET {url} as {persona}: {resp.status_code} (object of another bank or subtree)")
    assert not unregistered, (
        "Register these path parameters in ID_REGISTRY (tests/test_access_matrix.py): the model and the paths "
        "to its bank's head office id and its org, so the matrix can find objects inside and outside each "
        "caller's subtree:\n" + "\n".join(sorted(unregistered))
    )
    assert covered > 50
    assert_none(problems)


def test_generated_lists_mask_personal_data(db: None) -> None:
    from timebank.demo.generator import generate

    generate(members=30, seed=1)
    problems: list[str] = []
    for persona in ("assessor", "supervisor", "volunteer", "recipient", "relative", "operator", "staff"):
        api = Api(User.objects.get(username=persona))
        for path in _get_operations():
            if "{" in path or not path.startswith("/api/v1/") or path in OWN_DATA:
                continue
            resp = api.get(path)
            if resp.status_code != 200 or not resp.get("Content-Type", "").startswith("application/json"):
                continue
            text = resp.content.decode()
            if ID_NUMBER.search(text):
                problems.append(f"GET {path} as {persona} shows an unmasked ID number")
            if persona in ("assessor", "supervisor") and PHONE.search(text):
                problems.append(f"GET {path} as {persona} shows an unmasked phone number")
    assert_none(problems)
