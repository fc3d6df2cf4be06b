"""Who may see and act on an order: the parties to it, and staff/operators of the order's subtree."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import member_of, relative_ids
from timebank.members.models import Member
from timebank.orders.models import Order, OrderQuerySet
from timebank.orders.rules import ACTIVE_STATES, CANDIDATES_ROLES, READ_ROLES, TRANSITIONS
from timebank.orders.rules import AREA_VOLUNTEER as AREA_VOLUNTEER
from timebank.orders.rules import OPERATOR as OPERATOR
from timebank.orders.rules import RECIPIENT as RECIPIENT
from timebank.orders.rules import RELATIVE as RELATIVE
from timebank.orders.rules import STAFF as STAFF
from timebank.orders.rules import VOLUNTEER as VOLUNTEER
from timebank.orgs.access import check_may_act_for_relatives, has_role, recently_reset, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, Role, Rules, User

# The parties' roles (STAFF, ...) live with the transition table in orders.rules; importers read them here too.
# Who may do what to an order: reading and the candidates list, and every transition of the rulebook's table.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "read": READ_ROLES,
    "candidates": CANDIDATES_ROLES,
    **{action: move.roles for action, move in TRANSITIONS.items()},
}


def volunteer_area(member: Member) -> Org:
    """The pool a volunteer may take orders from: the branch above their community (or the community)."""
    home = member.home_org
    return home.parent if home.parent_id and home.kind in ("sub_branch", "outlet") and home.parent else home


def _relatives(me: Member) -> set[int]:
    # Asked again for the answer after an action: kept on the caller's member object, which lives as long
    # as the request.
    cached: set[int] | None = getattr(me, "_relative_ids", None)
    if cached is None:
        cached = relative_ids(me)
        me._relative_ids = cached  # type: ignore[attr-defined]
    return cached


def party_roles(user: User, order: Order) -> set[str]:
    roles: set[str] = set()
    if user.is_superuser or has_role(user, MANAGING_ROLES, order.org):
        roles.add(STAFF)
    if has_role(user, {Role.OPERATOR}, order.org):
        roles.add(OPERATOR)
    me = member_of(user)
    if me is not None:
        if me.pk == order.recipient_id:
            roles.add(RECIPIENT)
        elif order.recipient_id in _relatives(me) and not recently_reset(user):
            # A login reset lately may be someone else's for now (timebank.orgs.access.RESET_HOLD): it does not
            # act on the family's orders (confirming moves the elder's minutes) until the hold ends.
            roles.add(RELATIVE)
        if order.volunteer_id == me.pk:
            roles.add(VOLUNTEER)
        elif (
            order.is_takeable()  # requested, and not past (Order.objects.takeable)
            and me.is_volunteer
            and me.bank_id == order.bank_id
            and me.pk != order.recipient_id
            and volunteer_area(me).contains(order.org)
            and Rules.objects.filter(head_office_id=order.bank_id, allow_volunteer_take=True).exists()
        ):
            roles.add(AREA_VOLUNTEER)
    return roles


def check_may_order_for(user: User, recipient: Member) -> None:
    """A member's login ordering for a linked relative: not while the login is on hold after a staff reset
    (timebank.orgs.access.RESET_HOLD): the elder would pay for it. Staff and operators order as staff."""
    me = member_of(user)
    if me is None or me.pk == recipient.pk or has_role(user, MANAGING_ROLES | {Role.OPERATOR}, recipient.home_org):
        return
    if recipient.pk in _relatives(me):
        check_may_act_for_relatives(user)


def access_order(user: User, order_id: int, action: str = "read") -> tuple[Order, set[str]]:
    """The order and the caller's roles on it, if they allow `action`. The API's order actions read it locked
    instead (orders.actions.lock_order, then `check_found`)."""
    orders = Order.objects.select_related("org", "recipient", "volunteer", "service_item", "recipient__home_org")
    # By its key, so at most one row: no `.first()`, whose ORDER BY makes Django hash every selected column.
    return check_found(user, next(iter(orders.filter(pk=order_id)), None), action)


def check_found(user: User, order: Order | None, action: str = "read") -> tuple[Order, set[str]]:
    """`access_order`'s rule for an order the caller read (None: there is none), e.g. locked for an action."""
    if order is None:
        raise NotFound(_("找不到该订单。"), code="order_not_found")
    return order, check_roles(user, order, action)


def check_roles(user: User, order: Order, action: str = "read") -> set[str]:
    """The caller's roles on an order already loaded, if they allow `action`."""
    roles = party_roles(user, order)
    if not roles & ACTION_ROLES[action]:
        if roles:
            raise Forbidden(_("您不能对这个订单做这项操作。"), code="not_allowed", fields={"action": action})
        raise Forbidden(_("您无权查看这个订单。"), code="outside_subtree")
    return roles


def visible_orders(user: User) -> OrderQuerySet:
    if user.is_superuser:
        return Order.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in MANAGING_ROLES | {Role.OPERATOR}:
        return Order.objects.filter(org__path__startswith=scope.path)
    me = member_of(user)
    if me is None:
        return Order.objects.none()
    return Order.objects.filter(Q(recipient=me) | Q(volunteer=me) | Q(recipient_id__in=relative_ids(me)))


def pool_orders(user: User) -> OrderQuerySet:
    """Open orders a volunteer may take: takeable (requested, not past: `OrderQuerySet.takeable`), in their area, not their own nor (unless the rules allow it)
    their relatives'."""
    me = member_of(user)
    if me is None or not me.is_volunteer:
        return Order.objects.none()
    serve_relatives = (
        Rules.objects.filter(head_office_id=me.bank_id, allow_volunteer_take=True)
        .values_list("serve_relatives", flat=True)
        .first()
    )
    if serve_relatives is None:  # no rules, or taking is off
        return Order.objects.none()
    area = volunteer_area(me)
    orders = Order.objects.takeable().filter(bank_id=me.bank_id, org__path__startswith=area.path).exclude(recipient=me)
    if not serve_relatives:  # conflicts of interest: their family's orders are not theirs to take
        orders = orders.exclude(recipient_id__in=relative_ids(me))
    return orders


def sees_contact_details(roles: set[str], order: Order) -> bool:
    """Safety: a volunteer sees the address and phone only while the order is theirs and active."""
    if roles & {STAFF, OPERATOR, RECIPIENT, RELATIVE}:
        return True
    return VOLUNTEER in roles and order.state in ACTIVE_STATES


def sees_code(roles: set[str]) -> bool:
    # The order's volunteer must hear the code from the recipient, even when they are also a relative or staff.
    return bool(roles & {STAFF, RECIPIENT, RELATIVE}) and VOLUNTEER not in roles
