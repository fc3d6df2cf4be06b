"""Access to members and their accounts, by the org tree and by family links."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Conflict, Forbidden, NotFound
from timebank.members.models import Member, RelativeLink
from timebank.orgs.access import check_may_reset_login, has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Role, User

READ_ROLES = MANAGING_ROLES | {Role.OPERATOR}


def member_of(user: User) -> Member | None:
    try:
        return user.member
    except Member.DoesNotExist:
        return None


def relative_ids(member: Member) -> set[int]:
    return set(RelativeLink.objects.filter(member=member).values_list("relative_id", flat=True))


def visible_members(user: User) -> QuerySet[Member]:
    if user.is_superuser:
        return Member.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in READ_ROLES:
        return Member.objects.filter(home_org__path__startswith=scope.path)
    me = member_of(user)
    if me is None:
        return Member.objects.none()
    return Member.objects.filter(Q(pk=me.pk) | Q(pk__in=relative_ids(me)))


def _get(member_id: int) -> Member:
    # By its key, so at most one row: no `.first()`, whose ORDER BY makes Django hash every selected column.
    member = next(iter(Member.objects.select_related("home_org", "bank").filter(pk=member_id)), None)
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    return member


def access_member(user: User, member_id: int) -> Member:
    """Read a member, their balance and statement: themselves, relatives, staff and operators of the home subtree."""
    member = _get(member_id)
    if may_read_member(user, member):
        return member
    raise Forbidden(_("您无权查看这位会员。"), code="outside_subtree")


def may_read_member(user: User, member: Member) -> bool:
    """`access_member`'s rule for a member already loaded (with their home org)."""
    if has_role(user, READ_ROLES, member.home_org):
        return True
    me = member_of(user)
    return me is not None and (me.pk == member.pk or member.pk in relative_ids(me))


def access_member_to_manage(user: User, member_id: int) -> Member:
    """Edit, approve, link relatives, adjust: staff and admins of the member's home subtree."""
    member = _get(member_id)
    if has_role(user, MANAGING_ROLES, member.home_org):
        return member
    raise Forbidden(_("只有会员所在社区及上级的工作人员可以办理。"), code="outside_subtree")


def access_member_login_to_reset(user: User, member_id: int) -> tuple[Member, User]:
    """A member's login that staff reset (API and page): staff of the home subtree, a member who has a login,
    never the caller's own login nor one of higher rank."""
    member = access_member_to_manage(user, member_id)
    if member.user is None or member.anonymised_at is not None:
        raise Conflict(_("这位会员没有登录账号。"), code="no_login")
    check_may_reset_login(user, member.user)
    return member, member.user


def access_own_member(user: User, member_id: int) -> Member:
    """Spend from an account: only the member themselves (and the superuser, who may do everything)."""
    member = _get(member_id)
    if user.is_superuser:
        return member
    me = member_of(user)
    if me is not None and me.pk == member.pk:
        return member
    raise Forbidden(_("只能从自己的账户转出。"), code="not_own_account")


def can_see_personal_data(user: User, member: Member) -> bool:
    """Full phone and address: the member, and staff/operators of the home subtree."""
    me = member_of(user)
    return (me is not None and me.pk == member.pk) or has_role(user, READ_ROLES, member.home_org)
