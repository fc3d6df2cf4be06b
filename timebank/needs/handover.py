"""工作交接: a staff member's open work, listed for hand-over when they leave or change post (the first seed's
complaint: records lost when staff change), and who follows each item now.

- An open order (not yet confirmed, cancelled or reviewed: `OPEN_STATES`) is followed by the staff login named in
  its `WorkOwner` row, else by whoever dispatched it last (the order's events).
- An open need (`OPEN_STATUSES`) is followed by the login named in its `WorkOwner` row, else by whoever wrote its
  latest follow-up, else by whoever entered it.

The hand-over itself (`timebank.needs.actions.do_hand_over`) writes `WorkOwner` rows; history (events, follow-ups,
audit) is never rewritten.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import BigIntegerField, F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.needs.access import visible_needs
from timebank.needs.models import OPEN_STATUSES, Need, NeedFollowUp, WorkOwner
from timebank.orders.access import visible_orders
from timebank.orders.models import Order, OrderEvent
from timebank.orders.rules import OPEN_STATES
from timebank.orgs.access import access_staff_login, has_role, visible_staff
from timebank.orgs.models import ADMIN_ROLES, Role, User


def _last_dispatcher() -> Subquery:
    return Subquery(
        OrderEvent.objects.filter(order=OuterRef("pk"), action="dispatch")
        .order_by("-created_at", "-pk")
        .values("actor_id")[:1]
    )


def _last_follower() -> Subquery:
    return Subquery(
        NeedFollowUp.objects.filter(need=OuterRef("pk"), created_by__isnull=False)
        .order_by("-created_at", "-pk")
        .values("created_by_id")[:1]
    )


def open_orders(staff: User) -> QuerySet[Order]:
    """Open orders the staff login follows: handed to them, or dispatched by them last and not handed on."""
    owner = Subquery(WorkOwner.objects.filter(order=OuterRef("pk")).values("staff_id")[:1])
    return (
        Order.objects.filter(state__in=OPEN_STATES)
        .annotate(follower_id=Coalesce(owner, _last_dispatcher(), output_field=BigIntegerField()))
        .filter(follower_id=staff.pk)
        .select_related("service_item", "org")
        .order_by("scheduled_start", "pk")
    )


def open_needs(staff: User) -> QuerySet[Need]:
    """Open needs the staff login follows: handed to them, or last followed up (else entered) by them."""
    owner = Subquery(WorkOwner.objects.filter(need=OuterRef("pk")).values("staff_id")[:1])
    return (
        Need.objects.filter(status__in=OPEN_STATUSES)
        .annotate(follower_id=Coalesce(owner, _last_follower(), F("created_by_id"), output_field=BigIntegerField()))
        .filter(follower_id=staff.pk)
        .select_related("recipient__home_org")
        .order_by("created_at", "pk")
    )


@dataclass(frozen=True)
class OpenWork:
    """A login's open work as `reader` may see it: the orders and needs of the reader's reach (`visible_orders`,
    `visible_needs`: what the rest of the app shows them), and how many more lie outside it (counted, never shown).
    A login moved between orgs may still follow work of its old subtree, which its new admin cannot see."""

    orders: QuerySet[Order]
    needs: QuerySet[Need]
    orders_out_of_reach: int
    needs_out_of_reach: int


def open_work(reader: User, staff: User) -> OpenWork:
    every_order, every_need = open_orders(staff), open_needs(staff)
    orders = every_order.filter(pk__in=visible_orders(reader).values("pk"))
    needs = every_need.filter(pk__in=visible_needs(reader).values("pk"))
    return OpenWork(
        orders=orders,
        needs=needs,
        orders_out_of_reach=every_order.count() - orders.count(),
        needs_out_of_reach=every_need.count() - needs.count(),
    )


def has_open_work(staff: User) -> bool:
    return open_orders(staff).exists() or open_needs(staff).exists()


# Who may follow orders and needs, so who may receive them in a hand-over.
FOLLOWING_ROLES = frozenset({Role.HEAD_OFFICE_ADMIN, Role.BRANCH_ADMIN, Role.STAFF, Role.OPERATOR})


def access_hand_over(actor: User, from_id: int, to_id: int | None = None) -> tuple[User, User | None]:
    """The departing login: one the actor may manage (`access_staff_login`: an admin of its subtree, not of a
    higher role, not their own). The receiving login: an active staff login of the actor's admin subtree, of a
    role that follows orders and needs, and not the departing one."""
    source = access_staff_login(actor, from_id)
    if to_id is None:
        return source, None
    target = User.objects.select_related("org").filter(pk=to_id, org__isnull=False).exclude(role="").first()
    if target is None:
        raise NotFound(_("找不到接手的工作人员账号。"), code="staff_not_found", fields={"to_staff_id": "not_found"})
    assert target.org is not None
    if not has_role(actor, ADMIN_ROLES, target.org):
        raise Forbidden(
            _("只能交接给本机构及下级机构的工作人员。"), code="outside_subtree", fields={"to_staff_id": "outside"}
        )
    if target.pk == source.pk:
        raise Invalid(_("请选择另一位工作人员接手。"), fields={"to_staff_id": "same"})
    if not target.is_active or target.role not in FOLLOWING_ROLES:
        raise Invalid(_("接手的账号须是可以登录的工作人员账号。"), fields={"to_staff_id": "not_staff"})
    return source, target


def handover_targets(actor: User, source: User) -> QuerySet[User]:
    """The logins the page offers: active staff logins of the actor's subtree who may follow work."""
    return (
        visible_staff(actor)
        .filter(is_active=True, role__in=FOLLOWING_ROLES)
        .exclude(pk=source.pk)
        .select_related("org")
        .order_by("org__path", "username")
    )
