"""Writes to the org tree, staff logins, rules and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.lib import clock
from timebank.lib.errors import Conflict, Forbidden, Invalid, NotAuthenticated
from timebank.lib.events import publish
from timebank.lib.prepared import OneByKey
from timebank.orgs import rules as rule_registry
from timebank.orgs.access import RESET_HOLD as RESET_HOLD  # the hold after a reset, read with TEMPORARY_VALID
from timebank.orgs.access import login_allowed
from timebank.orgs.events import BankOpened, PasswordReset, RulesChanged
from timebank.orgs.lockout import clear_guard
from timebank.orgs.models import ALLOWED_PARENTS, ApiToken, Org, OrgKind, Role, Rules, User


def check_name(value: str, field: str = "name", max_length: int = 100) -> str:
    text = value.strip()
    if not text:
        raise Invalid(_("名称不能为空。"), fields={field: "required"})
    if len(text) > max_length:
        raise Invalid(_("名称太长。"), fields={field: "too_long"})
    return text


@transaction.atomic
def do_create_org(actor: User | None, *, name: str, kind: str, parent: Org | None) -> Org:
    name = check_name(name)
    if kind not in OrgKind.values:
        raise Invalid(_("未知的机构类型。"), fields={"kind": "invalid"})
    if kind == OrgKind.HEAD_OFFICE:
        if parent is not None:
            raise Invalid(_("总行没有上级机构。"), fields={"parent_id": "must_be_empty"})
    elif parent is None:
        raise Invalid(_("请选择上级机构。"), fields={"parent_id": "required"})
    elif parent.kind not in ALLOWED_PARENTS[kind]:
        raise Invalid(_("这种机构不能设在该上级机构之下。"), fields={"parent_id": "wrong_kind"})
    org = Org.objects.create(name=name, kind=kind, parent=parent, head_office=parent.head_office if parent else None)
    org.path = f"{parent.path if parent else '/'}{org.pk}/"
    if len(org.path) > 255:
        raise Invalid(_("机构层级太深。"), fields={"parent_id": "too_deep"})
    update = ["path"]
    if kind == OrgKind.HEAD_OFFICE:
        org.head_office = org
        update.append("head_office")
        Rules.objects.create(head_office=org)
        publish(BankOpened(org))  # the ledger opens the bank's system accounts
    org.save(update_fields=update)
    assert org.head_office_id is not None
    record(actor, "org.create", org, bank_id=org.head_office_id, data={"name": name, "kind": kind})
    return org


ROLE_KINDS: dict[str, set[str]] = {
    Role.HEAD_OFFICE_ADMIN: {OrgKind.HEAD_OFFICE},
    Role.BRANCH_ADMIN: {OrgKind.BRANCH},
    Role.STAFF: {OrgKind.BRANCH, OrgKind.SUB_BRANCH, OrgKind.OUTLET},
    Role.OPERATOR: set(OrgKind.values),
    Role.ASSESSOR: set(OrgKind.values),
    Role.SUPERVISOR: {OrgKind.HEAD_OFFICE, OrgKind.BRANCH, OrgKind.SUB_BRANCH},
}


def _username_text(username: str) -> str:
    username = username.strip()
    if not username or len(username) > 150:
        raise Invalid(_("用户名长度应为 1 到 150 个字符。"), fields={"username": "invalid"})
    return username


def check_username(username: str) -> str:
    """A new login's username: 1 to 150 characters once stripped (422) and nobody's yet (409)."""
    username = _username_text(username)
    if User.objects.filter(username=username).exists():
        raise Conflict(_("这个用户名已经有人用了。"), code="username_taken", fields={"username": "taken"})
    return username


def check_password_strength(password: str) -> None:
    """A new login's password: at most 128 characters and passing AUTH_PASSWORD_VALIDATORS (422)."""
    if len(password) > 128:
        raise Invalid(_("密码太长。"), fields={"password": "too_long"})
    try:
        validate_password(password)
    except ValidationError as exc:
        raise Invalid(" ".join(str(m) for m in exc.messages), fields={"password": "weak"}) from None


def check_login(username: str, password: str) -> tuple[str, str]:
    """Both, validation (422) before the conflict (409). A form checks them one by one to show every error at once."""
    username = _username_text(username)
    check_password_strength(password)
    return check_username(username), password


def create_login(username: str, password: str, **fields: Any) -> User:
    """Create a login whose username `check_login` found free. Two requests for one username at once both
    pass that check; on PostgreSQL the second INSERT then fails: the same 409 as the check's."""
    from timebank.lib.races import unique_or_conflict

    with unique_or_conflict(_("这个用户名已经有人用了。"), code="username_taken", fields={"username": "taken"}):
        user = User.objects.create_user(username=username, password=password, **fields)
    return user


@transaction.atomic
def do_create_staff(actor: User | None, *, org: Org, username: str, password: str, name: str, role: str) -> User:
    if role not in Role.values:
        raise Invalid(_("未知的角色。"), fields={"role": "invalid"})
    if org.kind not in ROLE_KINDS[role]:
        raise Invalid(_("这个角色不能设在这种机构。"), fields={"role": "wrong_org_kind"})
    name = check_name(name)
    username, password = check_login(username, password)
    user = create_login(username, password, org=org, role=role, display_name=name)
    assert org.head_office_id is not None
    record(actor, "staff.create", user, bank_id=org.head_office_id, data={"org": org.pk, "role": role})
    return user


RULE_FIELDS = rule_registry.names()  # read by the ledger's verifier


def _check_together(rules: Rules) -> None:
    """Rules that work only together, checked on the rules as they would be stored (422, nothing saved)."""
    if rules.guarantee_after_days is not None and (
        rules.guarantee_yuan_per_hour is None or not rules.guarantee_provider
    ):
        raise Invalid(
            _("开启刚性兑付时，请同时填写兜底购买服务的价格和服务机构。"),
            fields={"guarantee_after_days": "incomplete"},
        )


@transaction.atomic
def do_update_rules(actor: User | None, rules: Rules, changes: dict[str, Any]) -> Rules:
    # Every check of every rule (types, bounds, null, thresholds increasing, multipliers) is the registry's.
    changes = rule_registry.clean(changes)
    rules = Rules.objects.select_for_update().get(pk=rules.pk)
    before = {f: getattr(rules, f) for f in changes}
    for field, value in changes.items():
        setattr(rules, field, value)
    _check_together(rules)
    rules.save(update_fields=[*changes.keys(), "updated_at"])
    record(actor, "rules.update", rules, bank_id=rules.head_office_id, data={"before": before, "after": changes})
    publish(RulesChanged(actor, rules, before, changes))  # the notices app publishes the automatic notice
    return rules


def _token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def do_issue_token(user: User) -> str:
    key = secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user, key_hash=_token_hash(key), expires_at=clock.now() + dt.timedelta(days=settings.API_TOKEN_DAYS)
    )
    return key


@transaction.atomic
def do_revoke_token(user: User, key: str) -> bool:
    return (
        ApiToken.objects.filter(user=user, key_hash=_token_hash(key), revoked_at__isnull=True).update(
            revoked_at=clock.now()
        )
        > 0
    )


def _live_token(key_hash: str, now: dt.datetime) -> QuerySet[ApiToken]:
    # The login's member comes along (None for staff): nearly every API call asks `member_of` next.
    # key_hash is unique, so no LIMIT: with `.first()`'s ORDER BY … LIMIT 1 PostgreSQL may plan the member join as
    # a sequential scan that it expects to stop early (measured ~220 ms at a million members without logins).
    return ApiToken.objects.select_related("user", "user__org", "user__member").filter(
        key_hash=key_hash, revoked_at__isnull=True, expires_at__gt=now
    )


# Every API request reads its token so: the SQL compiled once (compiling cost more CPU than reading).
_LIVE_TOKEN = OneByKey(_live_token)


def user_for_token(key: str) -> User | None:
    token = _LIVE_TOKEN.get(_token_hash(key), clock.now())
    # A disabled login, or a member suspended or gone, answers 401 at once, however the status was changed.
    if token is None or not login_allowed(token.user):
        return None
    return token.user


def revoke_tokens(user: User, *, keep: str | None = None) -> int:
    """Revoke a login's tokens (all, or all but the one the caller is using)."""
    tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    if keep:
        tokens = tokens.exclude(key_hash=_token_hash(keep))
    return tokens.update(revoked_at=clock.now())


# Passwords and staff logins ---------------------------------------------------------------------------------------

# No 0/o, 1/l/i: a temporary password is often read out over the phone or copied by hand.
TEMPORARY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMPORARY_LENGTH = 10
# A temporary password opens one login, within this long of the reset; only that login's token (or session)
# chooses the new password. Someone who saw it on the screen or the paper later cannot use it.
TEMPORARY_VALID = dt.timedelta(hours=72)


def temporary_expired(user: User) -> bool:
    # A reset before these fields existed has no time: the migration gave it one (orgs 0005).
    return user.password_reset_at is not None and clock.now() - user.password_reset_at >= TEMPORARY_VALID


@transaction.atomic
def do_use_temporary_password(user: User) -> None:
    """A login with a temporary password (the caller checked it): refused after TEMPORARY_VALID, or when the
    temporary password already opened a login. One conditional UPDATE, so two logins at once get one token."""
    if temporary_expired(user):
        raise NotAuthenticated(
            _("临时密码已经过期（72 小时内有效），请联系社区工作人员重新设置。"), code="temporary_password_expired"
        )
    claimed = User.objects.filter(pk=user.pk, must_change_password=True, temporary_used_at__isnull=True).update(
        temporary_used_at=clock.now()
    )
    if not claimed:
        raise NotAuthenticated(
            _("这个临时密码已经用过一次，请用那次登录设置新密码，或联系社区工作人员重新设置。"),
            code="temporary_password_used",
        )
    record(user, "login.temporary_used", user, bank_id=_bank_of(user), data={})


def _bank_of(user: User) -> int | None:
    if user.org_id is not None and user.org is not None:
        return user.org.head_office_id
    member = getattr(user, "member", None)
    return member.bank_id if member is not None else None


def check_new_password(user: User, new_password: str, old_password: str) -> None:
    if len(new_password) > 128:
        raise Invalid(_("密码太长。"), fields={"new_password": "too_long"})
    if new_password == old_password:
        raise Invalid(_("新密码不能和原来的一样。"), code="same_password", fields={"new_password": "same"})
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        raise Invalid(" ".join(str(m) for m in exc.messages), fields={"new_password": "weak"}) from None


@transaction.atomic
def do_change_password(user: User, *, old_password: str, new_password: str, keep_token: str | None = None) -> User:
    """A login chooses its own password. Its other tokens are revoked (a thief's among them); the token of the
    request that asked (`keep_token`) goes on working, and a page's session is kept by the page."""
    user = User.objects.select_for_update().get(pk=user.pk)
    if not user.check_password(old_password):
        raise Forbidden(_("原密码不对。"), code="wrong_password", fields={"old_password": "wrong"})
    if user.must_change_password and temporary_expired(user):
        raise Forbidden(
            _("临时密码已经过期（72 小时内有效），请联系社区工作人员重新设置。"), code="temporary_password_expired"
        )
    check_new_password(user, new_password, old_password)
    user.set_password(new_password)
    user.must_change_password = False
    user.save(update_fields=["password", "must_change_password"])
    revoked = revoke_tokens(user, keep=keep_token)
    record(user, "login.password_change", user, bank_id=_bank_of(user), data={"tokens_revoked": revoked})
    return user


def _clear_lockout(username: str) -> None:
    from axes.utils import reset

    reset(username=username)


@transaction.atomic
def do_reset_password(actor: User | None, target: User) -> str:
    """Staff give a login a temporary password, shown once. The old password and every token stop at once, and
    the login must choose its own password before doing anything else. The password is never audited."""
    target = User.objects.select_for_update().get(pk=target.pk)
    temporary = "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(TEMPORARY_LENGTH))
    target.set_password(temporary)
    target.must_change_password = True
    target.password_reset_at = clock.now()
    target.temporary_used_at = None
    target.save(update_fields=["password", "must_change_password", "password_reset_at", "temporary_used_at"])
    revoked = revoke_tokens(target)
    record(actor, "login.password_reset", target, bank_id=_bank_of(target), data={"tokens_revoked": revoked})
    # A lockout the person caused themselves ends with the reset (the per-address one and the guard over all
    # addresses): they are about to log in with the new password, from wherever they are.
    username = target.username
    transaction.on_commit(lambda: _clear_lockout(username))
    clear_guard(username)  # in this transaction: the guard's rows are ours
    publish(PasswordReset(actor, target))  # the notify app tells the member and their relatives
    return temporary


@transaction.atomic
def do_update_staff(
    actor: User | None, target: User, *, org: Org | None = None, role: str | None = None, is_active: bool | None = None
) -> User:
    """Move a staff login, change its role, or disable it (its tokens are revoked; sessions end at their next
    request). The caller's right to the old and new org and role is checked by the access functions."""
    target = User.objects.select_for_update().get(pk=target.pk)
    assert target.org is not None
    new_org = org if org is not None else target.org
    new_role = role if role is not None else target.role
    if new_role not in Role.values:
        raise Invalid(_("未知的角色。"), fields={"role": "invalid"})
    if new_org.kind not in ROLE_KINDS[new_role]:
        raise Invalid(_("这个角色不能设在这种机构。"), fields={"role": "wrong_org_kind"})
    before = {"org": target.org_id, "role": target.role, "is_active": target.is_active}
    target.org = new_org
    target.role = new_role
    if is_active is not None:
        target.is_active = is_active
    after = {"org": new_org.pk, "role": new_role, "is_active": target.is_active}
    changed = [f for f in ("org", "role", "is_active") if before[f] != after[f]]
    if changed:
        target.save(update_fields=changed)
    revoked = revoke_tokens(target) if not target.is_active else 0
    assert new_org.head_office_id is not None
    record(
        actor,
        "staff.update",
        target,
        bank_id=new_org.head_office_id,
        data={"before": before, "after": after, "tokens_revoked": revoked},
    )
    return target
