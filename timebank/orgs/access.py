"""Who may act where. Every endpoint and page asks these functions; none grows its own checks."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib import clock
from timebank.lib.errors import Forbidden, NotAuthenticated, NotFound
from timebank.orgs.models import ADMIN_ROLES, MANAGING_ROLES, ROLE_RANK, Org, OrgKind, Role, Rules, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser


def require_login(user: User | AnonymousUser | None) -> User:
    if user is None or not user.is_authenticated:
        raise NotAuthenticated(_("请先登录。"))
    assert isinstance(user, User)
    return user


def staff_scope(user: User) -> Org | None:
    """The org whose subtree a staff login may act in (None for member logins)."""
    return user.org if user.role and user.org_id else None


def has_role(user: User, roles: frozenset[str] | set[str], org: Org) -> bool:
    """True when the user holds one of `roles` at `org` or above it."""
    if user.is_superuser:
        return True
    scope = staff_scope(user)
    return scope is not None and user.role in roles and scope.contains(org)


def caller_bank_id(user: User) -> int | None:
    scope = staff_scope(user)
    if scope is not None:
        return scope.head_office_id
    member = getattr(user, "member", None)
    return member.bank_id if member is not None else None


def _get_org(org_id: int) -> Org:
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return org


def visible_orgs(user: User) -> QuerySet[Org]:
    if user.is_superuser:
        return Org.objects.all()
    scope = staff_scope(user)
    if scope is not None:
        return Org.objects.filter(path__startswith=scope.path)
    bank_id = caller_bank_id(user)
    # A member may see the public structure of their own bank (to choose where to be served).
    return Org.objects.filter(head_office_id=bank_id) if bank_id else Org.objects.none()


def access_org(user: User, org_id: int) -> Org:
    org = _get_org(org_id)
    if visible_orgs(user).filter(pk=org.pk).exists():
        return org
    raise Forbidden(_("这个机构不在您的管辖范围内。"), code="outside_subtree")


def access_org_as_admin(user: User, org_id: int) -> Org:
    """Create children and staff logins under `org`: admins whose subtree holds it."""
    org = _get_org(org_id)
    if has_role(user, ADMIN_ROLES, org):
        return org
    raise Forbidden(_("只有上级机构的管理员可以在这里新建机构或账号。"), code="not_admin")


def can_grant_role(user: User, role: str) -> bool:
    if user.is_superuser:
        return True
    return ROLE_RANK.get(Role(user.role), 0) >= ROLE_RANK.get(Role(role), 99) if user.role else False


def access_rules(user: User, org_id: int, *, write: bool) -> Rules:
    org = _get_org(org_id)
    if org.kind != OrgKind.HEAD_OFFICE:
        raise NotFound(_("规则只属于总行。"), code="not_head_office")
    if write:
        allowed = has_role(user, {Role.HEAD_OFFICE_ADMIN}, org)
    else:
        # "Its staff too": staff and admins anywhere in the bank; operators and assessors are not named.
        allowed = user.is_superuser or (
            staff_scope(user) is not None and user.role in MANAGING_ROLES and caller_bank_id(user) == org.pk
        )
    if not allowed:
        raise Forbidden(_("只有该总行的管理员可以修改规则。"), code="not_allowed")
    return Rules.objects.get(head_office=org)


def access_bank_admin(user: User, bank_id: int) -> Org:
    """Head-office admins of this bank (and the superuser)."""
    org = _get_org(bank_id)
    if org.kind == OrgKind.HEAD_OFFICE and has_role(user, {Role.HEAD_OFFICE_ADMIN}, org):
        return org
    raise Forbidden(_("只有总行管理员可以这样做。"), code="not_head_office_admin")


def subtree_q(prefix: str, org: Org) -> Q:
    """A filter for rows whose `<prefix>path` lies in `org`'s subtree."""
    return Q(**{f"{prefix}path__startswith": org.path})


# Logins ----------------------------------------------------------------------------------------------------------

# A member in these states may not log in (strings: members imports orgs, not the other way round).
CLOSED_MEMBER_STATUSES = frozenset({"suspended", "left"})


def login_allowed(user: User) -> bool:
    """May this login log in, and may its tokens and sessions still act? Asked at login, at every token use and
    at every session request, so a change of status takes effect at once."""
    if not user.is_active:
        return False
    member = getattr(user, "member", None)  # None for a staff login
    return member is None or member.status not in CLOSED_MEMBER_STATUSES


# A login whose password staff reset was, for a moment, in someone else's hands: a staff member who cannot read an
# elder could reset the elder's son's login (the son lives in their community), choose its new password and act as
# the son. For this long after a reset, the login acts for itself only: it does not read or re-issue a relative's
# card code (the proof of presence at an outlet) nor act on a relative's orders (confirming moves their minutes).
# Long enough for the real owner to notice: they can no longer log in, and they and their family are told of the
# reset (the PasswordReset event, timebank.notify.hooks); their home staff can reset it again for them.
RESET_HOLD = dt.timedelta(hours=72)


def recently_reset(user: User) -> bool:
    return user.password_reset_at is not None and clock.now() - user.password_reset_at < RESET_HOLD


def check_may_act_for_relatives(user: User) -> None:
    if recently_reset(user):
        raise Forbidden(
            _("您的密码刚由工作人员重置，为了安全，72 小时内不能代家属办理这件事。"), code="recent_password_reset"
        )


def visible_staff(user: User) -> QuerySet[User]:
    """Staff logins of the caller's subtree: admins and staff read them; operators, assessors and members do not."""
    if user.is_superuser:
        return User.objects.exclude(role="").filter(org__isnull=False)
    scope = staff_scope(user)
    if scope is None or user.role not in MANAGING_ROLES:
        raise Forbidden(_("只有工作人员和管理员可以查看工作人员账号。"), code="not_allowed")
    return User.objects.exclude(role="").filter(org__path__startswith=scope.path)


def access_staff_login(user: User, staff_id: int) -> User:
    """Change or reset a staff login: admins whose subtree holds its org, never a login of higher role than
    their own, and never their own login (that is /me/password)."""
    target = User.objects.select_related("org").filter(pk=staff_id).exclude(role="").filter(org__isnull=False).first()
    if target is None:
        raise NotFound(_("找不到这个工作人员账号。"), code="staff_not_found")
    check_may_manage_staff(user, target)
    return target


def check_may_manage_staff(user: User, target: User) -> None:
    """`access_staff_login`'s rule for a staff login already loaded (with its org), e.g. each row of a list."""
    _check_not_own(user, target)
    assert target.org is not None
    if not has_role(user, ADMIN_ROLES, target.org):
        raise Forbidden(_("只有上级机构的管理员可以管理这个账号。"), code="outside_subtree")
    _check_rank(user, target)


def check_may_reset_login(user: User, target: User) -> None:
    """A member's login reset by staff: never the caller's own, never a login of higher rank than theirs."""
    _check_not_own(user, target)
    _check_rank(user, target)


def _check_not_own(user: User, target: User) -> None:
    if target.pk == user.pk:
        raise Forbidden(_("自己的账号请在“修改密码”里办理。"), code="own_login")


def _check_rank(user: User, target: User) -> None:
    if (target.is_superuser and not user.is_superuser) or (target.role and not can_grant_role(user, target.role)):
        raise Forbidden(_("不能管理比自己角色更高的账号。"), code="role_too_high")
