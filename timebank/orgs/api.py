from __future__ import annotations

from typing import Annotated, Any

from django.contrib.auth import authenticate
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, paginate
from timebank.lib.errors import Forbidden, Invalid, Locked, NotAuthenticated
from timebank.lib.events import publish
from timebank.orgs import actions, lockout
from timebank.orgs import rules as rule_registry
from timebank.orgs.access import (
    access_org,
    access_org_as_admin,
    access_rules,
    access_staff_login,
    can_grant_role,
    login_allowed,
    require_login,
    visible_orgs,
    visible_staff,
)
from timebank.orgs.events import SmsCodeLogin
from timebank.orgs.models import Org, OrgKind, Role, Rules, User
from timebank.orgs.schemas import (
    OrgIn,
    OrgOut,
    PasswordIn,
    PasswordOut,
    RevokeIn,
    RulesOut,
    RulesPatch,
    StaffIn,
    StaffOut,
    StaffPatch,
    TemporaryPasswordOut,
    TokenIn,
    TokenOut,
)

router = Router(tags=["orgs"])


def caller(request: HttpRequest) -> User:
    return require_login(request.user)


def roles_of(user: User) -> list[str]:
    roles: list[str] = []
    if user.is_superuser:
        roles.append("superuser")
    if user.role:
        roles.append(user.role)
    member = getattr(user, "member", None)
    if member is not None:
        roles += member.roles
        if member.relative_links.exists():
            roles.append("relative")
    return roles


@router.post("/auth/token", auth=None, response={200: TokenOut}, tags=["auth"])
def create_token(request: HttpRequest, payload: TokenIn) -> dict[str, Any]:
    """Log in with a username and password, or with a phone and the code sent to it by SMS (`POST /auth/sms-code`);
    answers a bearer token. After 10 failures in a row for a username at one client address, 429 `locked_out`
    there; after many failures for a username from any addresses in a day, 429 `username_guarded` from addresses
    it never logged in from (timebank.orgs.lockout). A temporary password from a staff reset opens one login
    within 72 hours: later 401 `temporary_password_expired`, a second time 401 `temporary_password_used`.
    A code opens one login, within 10 minutes; after 5 wrong codes for a phone it is refused until a new one is
    sent. Every refusal of a code is 401 `bad_credentials`: nothing tells whether the phone is known."""
    if payload.phone is not None or payload.sms_code is not None:
        if payload.username is not None or payload.password is not None:
            raise Invalid(_("请用密码或短信验证码中的一种方式登录。"), fields={"sms_code": "one_way"})
        return token_by_sms_code(request, payload)
    if payload.username is None or payload.password is None:
        missing = "username" if payload.username is None else "password"
        raise Invalid(_("请填写用户名和密码。"), fields={missing: "missing"})
    lockout.check_guard(request, payload.username)
    user = authenticate(request, username=payload.username, password=payload.password)
    if getattr(request, "axes_locked_out", False):
        raise Locked(_("登录失败次数过多，账号已暂时锁定，请稍后再试。"))
    # A suspended or departed member and a disabled staff login are refused like a wrong password: nothing tells.
    if user is None or not login_allowed(user):
        raise NotAuthenticated(_("用户名或密码不正确。"), code="bad_credentials")
    assert isinstance(user, User)
    if user.must_change_password:
        actions.do_use_temporary_password(user)
    lockout.remember_success(request, user)
    return token_answer(user, actions.do_issue_token(user))


def token_by_sms_code(request: HttpRequest, payload: TokenIn) -> dict[str, Any]:
    """The code is checked by whoever sent it (the notify app, through `SmsCodeLogin`), in this transaction with
    the token: two requests with one code give one token. A wrong code's count commits with the refusal."""
    if payload.phone is None or payload.sms_code is None:
        missing = "phone" if payload.phone is None else "sms_code"
        raise Invalid(_("请填写手机号和短信验证码。"), fields={missing: "missing"})
    with transaction.atomic():
        answers = publish(SmsCodeLogin(phone=payload.phone, code=payload.sms_code))
        user = next((a for a in answers if isinstance(a, User)), None)
        token = actions.do_issue_token(user) if user is not None and login_allowed(user) else None
    if user is None or token is None:
        raise NotAuthenticated(_("手机号或验证码不正确，或验证码已过期。"), code="bad_credentials")
    lockout.remember_success(request, user)
    return token_answer(user, token)


def token_answer(user: User, token: str) -> dict[str, Any]:
    from django.conf import settings

    member = getattr(user, "member", None)
    return {
        "token": token,
        "member_id": member.pk if member is not None else None,
        "roles": roles_of(user),
        "expires_in_days": settings.API_TOKEN_DAYS,
        "must_change_password": user.must_change_password,
    }


def bearer_key(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


@router.post("/me/password", response={200: PasswordOut}, tags=["auth"])
def change_password(request: HttpRequest, payload: PasswordIn) -> dict[str, Any]:
    """Change your own password (Django's password rules). A wrong `old_password` is 403 `wrong_password`.
    Wrong old passwords count like failed logins: after 10 at one address, 429 `locked_out` for a while. Your other
    tokens are revoked; the token of this request (or this browser session) goes on working. This is the only
    call a login may make while it must change its password after a reset."""
    user = caller(request)
    key = bearer_key(request)
    lockout.check_not_locked(request, user)
    try:
        user = actions.do_change_password(
            user, old_password=payload.old_password, new_password=payload.new_password, keep_token=key
        )
    except Forbidden as exc:
        if exc.code == "wrong_password":
            lockout.count_wrong_password(request, user)
        raise
    if key is None:
        from django.contrib.auth import update_session_auth_hash

        update_session_auth_hash(request, user)
    return {"changed": True, "must_change_password": user.must_change_password}


@router.post("/auth/revoke", response={200: dict[str, bool]}, tags=["auth"])
def revoke_token(request: HttpRequest, payload: RevokeIn) -> dict[str, bool]:
    """Revoke one of your own tokens (for example the one in use, to log out)."""
    return {"revoked": actions.do_revoke_token(caller(request), payload.token)}


@router.get("/orgs", response=Page[OrgOut])
def list_orgs(
    request: HttpRequest,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    kind: OrgKind | None = None,
    parent_id: PathId | None = None,
) -> dict[str, Any]:
    """The orgs the caller may see: their subtree (members see their own bank)."""
    qs = visible_orgs(caller(request))
    if kind:
        qs = qs.filter(kind=kind)
    if parent_id:
        qs = qs.filter(parent_id=parent_id)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # OrgOut reads each row


@router.post("/orgs", response={201: OrgOut})
def create_org(request: HttpRequest, payload: OrgIn) -> Status[Org]:
    """Create a head office (superuser only) or an org under a parent in the caller's subtree."""
    user = caller(request)
    if payload.kind == OrgKind.HEAD_OFFICE and not user.is_superuser:
        raise Forbidden(_("只有系统管理员可以新建时间银行（总行）。"), code="not_superuser")
    parent = access_org_as_admin(user, payload.parent_id) if payload.parent_id is not None else None
    # The action refuses (422) a head office with a parent and any other org without one.
    org = actions.do_create_org(user, name=payload.name, kind=payload.kind, parent=parent)
    return Status(201, org)


@router.get("/orgs/{org_id}", response=OrgOut)
def get_org(request: HttpRequest, org_id: PathId) -> Org:
    return access_org(caller(request), org_id)


def rules_out(rules: Rules) -> dict[str, Any]:
    return rule_registry.to_api(rules)


@router.get("/orgs/{org_id}/rules", response=RulesOut, tags=["rules"])
def get_rules(request: HttpRequest, org_id: PathId) -> dict[str, Any]:
    return rules_out(access_rules(caller(request), org_id, write=False))


@router.patch("/orgs/{org_id}/rules", response=RulesOut, tags=["rules"])
def patch_rules(request: HttpRequest, org_id: PathId, payload: RulesPatch) -> dict[str, Any]:  # type: ignore[valid-type]
    """Change a head office's rules. Fields left out stay as they are; `reserve_min_age` may be null."""
    user = caller(request)
    rules = access_rules(user, org_id, write=True)
    # The action checks every rule (null where not allowed, thresholds increasing, ...): 422 names the rule.
    changes = payload.dict(exclude_unset=True)  # type: ignore[attr-defined]
    return rules_out(actions.do_update_rules(user, rules, changes))


@router.get("/staff", response=Page[StaffOut], tags=["staff"])
def list_staff(
    request: HttpRequest,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    org_id: PathId | None = None,
    role: Role | None = None,
    is_active: bool | None = None,
) -> dict[str, Any]:
    """Staff logins of the caller's subtree (admins and staff; operators and assessors are refused)."""
    qs = visible_staff(caller(request))
    if org_id is not None:
        qs = qs.filter(org_id=org_id)
    if role is not None:
        qs = qs.filter(role=role)
    if is_active is not None:
        qs = qs.filter(is_active=is_active)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # StaffOut reads each login


@router.patch("/staff/{staff_id}", response=StaffOut, tags=["staff"])
def patch_staff(request: HttpRequest, staff_id: PathId, payload: StaffPatch) -> User:
    """Move a staff login (`org_id` inside the caller's subtree), change its `role` (never above the caller's
    own) or disable it (`is_active`: its tokens stop at once). Admins of the login's subtree; not their own."""
    user = caller(request)
    target = access_staff_login(user, staff_id)
    changes = payload.dict(exclude_unset=True)
    for field in ("org_id", "role", "is_active"):
        if field in changes and changes[field] is None:
            raise Invalid(_("这一项不能为空。"), fields={field: "required"})
    org = access_org_as_admin(user, changes["org_id"]) if "org_id" in changes else None
    role = changes.get("role")
    if role is not None and not can_grant_role(user, role):
        raise Forbidden(_("不能授予比自己更高的角色。"), code="role_too_high")
    return actions.do_update_staff(user, target, org=org, role=role, is_active=changes.get("is_active"))


@router.post("/staff/{staff_id}/password-reset", response={200: TemporaryPasswordOut}, tags=["staff", "auth"])
def reset_staff_password(request: HttpRequest, staff_id: PathId) -> dict[str, str]:
    """Admins of the staff login's subtree (never of a higher role) give it a temporary password, answered once;
    the login must choose a new password at its next login."""
    user = caller(request)
    target = access_staff_login(user, staff_id)
    return {"temporary_password": actions.do_reset_password(user, target)}


@router.post("/staff", response={201: StaffOut}, tags=["staff"])
def create_staff(request: HttpRequest, payload: StaffIn) -> Status[User]:
    """Create a staff login scoped to an org. Admins may grant roles up to their own."""
    user = caller(request)
    org = access_org_as_admin(user, payload.org_id)
    if not can_grant_role(user, payload.role):
        raise Forbidden(_("不能授予比自己更高的角色。"), code="role_too_high")
    staff = actions.do_create_staff(
        user, org=org, username=payload.username, password=payload.password, name=payload.name, role=payload.role
    )
    return Status(201, staff)
