"""Who may see and manage safety records.

Policies, certificates and training results: staff of the member's home subtree manage them, the
member reads their own. Incidents: staff of the incident's subtree (or of the volunteer's home
subtree) see and manage them; the parties (the volunteer, the recipient and the recipient's
relatives) read them. Nobody else sees anything.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.members.access import member_of, relative_ids
from timebank.members.models import Member
from timebank.orders.access import RECIPIENT as ORDER_RECIPIENT
from timebank.orders.access import RELATIVE as ORDER_RELATIVE
from timebank.orders.access import STAFF as ORDER_STAFF
from timebank.orders.access import VOLUNTEER as ORDER_VOLUNTEER
from timebank.orders.access import party_roles
from timebank.orders.models import Order
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, User
from timebank.safety.models import IncidentReport, TrainingAttendance, TrainingSession


def is_managing_staff(user: User) -> bool:
    return user.is_superuser or (staff_scope(user) is not None and user.role in MANAGING_ROLES)


def require_managing_staff(user: User) -> Org | None:
    """The subtree a safety report covers (None: everything, for the superuser)."""
    if not is_managing_staff(user):
        raise Forbidden(_("只有工作人员可以查看这份名单。"), code="not_staff")
    return None if user.is_superuser else staff_scope(user)


def _member(member_id: int) -> Member:
    member = Member.objects.select_related("home_org").filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    return member


def access_member_safety(user: User, member_id: int, *, manage: bool = False) -> Member:
    """A member's policies, certificates and training results."""
    member = _member(member_id)
    if has_role(user, MANAGING_ROLES, member.home_org):
        return member
    me = member_of(user)
    if not manage and me is not None and me.pk == member.pk:
        return member
    if manage and me is not None and me.pk == member.pk:
        raise Forbidden(_("保险、证书和培训记录由社区工作人员登记。"), code="not_allowed")
    raise Forbidden(_("只有会员所在社区及上级的工作人员可以办理。"), code="outside_subtree")


def access_members_to_insure(user: User, member_ids: list[int]) -> list[Member]:
    """The members of a group policy (`POST /insurance-policies/bulk`), in primary-key order: the caller must
    manage every one of them. A refusal names the ids concerned (`fields["member_ids"]`)."""
    if len(set(member_ids)) != len(member_ids):
        raise Invalid(_("名单里有重复的会员。"), fields={"member_ids": "duplicate"})
    members = list(Member.objects.select_related("home_org").filter(pk__in=member_ids).order_by("pk"))
    if len(members) != len(member_ids):
        missing = sorted(set(member_ids) - {m.pk for m in members})
        raise NotFound(_("找不到该会员。"), code="member_not_found", fields={"member_ids": missing})
    outside = [m.pk for m in members if not has_role(user, MANAGING_ROLES, m.home_org)]
    if outside:
        raise Forbidden(
            _("只有会员所在社区及上级的工作人员可以办理。"), code="outside_subtree", fields={"member_ids": outside}
        )
    return members


def visible_trainings(user: User) -> QuerySet[TrainingSession]:
    """Staff see the sessions of their subtree and of the orgs above it; members see the ones they attended."""
    if user.is_superuser:
        return TrainingSession.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in MANAGING_ROLES:
        above = [int(p) for p in scope.path.strip("/").split("/") if p]
        return TrainingSession.objects.filter(Q(org__path__startswith=scope.path) | Q(org_id__in=above))
    me = member_of(user)
    if me is None:
        return TrainingSession.objects.none()
    return TrainingSession.objects.filter(pk__in=TrainingAttendance.objects.filter(member=me).values("session_id"))


def access_training(user: User, session_id: int, *, manage: bool = False) -> TrainingSession:
    session = TrainingSession.objects.select_related("org").filter(pk=session_id).first()
    if session is None:
        raise NotFound(_("找不到这次培训。"), code="training_not_found")
    if has_role(user, MANAGING_ROLES, session.org):
        return session
    if not manage and visible_trainings(user).filter(pk=session.pk).exists():
        return session
    raise Forbidden(_("只有举办培训的机构及上级的工作人员可以办理。"), code="outside_subtree")


# Who someone is to an incident.
STAFF = "staff"
VOLUNTEER = "volunteer"
RECIPIENT = "recipient"
RELATIVE = "relative"
PARTIES = frozenset({VOLUNTEER, RECIPIENT, RELATIVE})


def incident_roles(user: User, incident: IncidentReport) -> set[str]:
    roles: set[str] = set()
    volunteer_home = incident.volunteer.home_org if incident.volunteer is not None else None
    if has_role(user, MANAGING_ROLES, incident.org) or (
        volunteer_home is not None and has_role(user, MANAGING_ROLES, volunteer_home)
    ):
        roles.add(STAFF)
    me = member_of(user)
    if me is not None:
        if me.pk == incident.volunteer_id:
            roles.add(VOLUNTEER)
        if me.pk == incident.recipient_id:
            roles.add(RECIPIENT)
        elif incident.recipient_id is not None and incident.recipient_id in relative_ids(me):
            roles.add(RELATIVE)
    return roles


def visible_incidents(user: User) -> QuerySet[IncidentReport]:
    if user.is_superuser:
        return IncidentReport.objects.all()
    scope = staff_scope(user)
    if scope is not None and user.role in MANAGING_ROLES:
        return IncidentReport.objects.filter(
            Q(org__path__startswith=scope.path) | Q(volunteer__home_org__path__startswith=scope.path)
        )
    me = member_of(user)
    if me is None:
        return IncidentReport.objects.none()
    return IncidentReport.objects.filter(Q(volunteer=me) | Q(recipient=me) | Q(recipient_id__in=relative_ids(me)))


def access_incident(user: User, incident_id: int, *, manage: bool = False) -> tuple[IncidentReport, set[str]]:
    incident = (
        IncidentReport.objects.select_related(
            "org", "order", "volunteer", "volunteer__home_org", "recipient", "claim_policy", "decided_by"
        )
        .filter(pk=incident_id)
        .first()
    )
    if incident is None:
        raise NotFound(_("找不到这份事件报告。"), code="incident_not_found")
    roles = incident_roles(user, incident)
    if manage and STAFF not in roles:
        if roles:
            raise Forbidden(_("事件的跟进、理赔和责任认定由工作人员办理。"), code="not_allowed")
        raise Forbidden(_("您无权查看这份事件报告。"), code="outside_subtree")
    if not roles:
        raise Forbidden(_("您无权查看这份事件报告。"), code="outside_subtree")
    return incident, roles


def access_report_incident(
    user: User, *, order_id: int | None, volunteer_id: int | None, recipient_id: int | None
) -> tuple[Order | None, Member | None, Member | None]:
    """Who may report an incident (POST /incidents and the page). With an order: its volunteer, its recipient,
    their relatives and staff of the order's subtree. Without one: staff of the subtree of the recipient's (else
    the volunteer's) home. Returns the order and the members named."""
    volunteer = _member(volunteer_id) if volunteer_id else None
    recipient = _member(recipient_id) if recipient_id else None
    order = None
    if order_id is not None:
        order = Order.objects.select_related("org", "recipient", "volunteer").filter(pk=order_id).first()
        if order is None:
            raise NotFound(_("找不到该订单。"), code="order_not_found", fields={"order_id": "not_found"})
        if not party_roles(user, order) & {ORDER_STAFF, ORDER_VOLUNTEER, ORDER_RECIPIENT, ORDER_RELATIVE}:
            raise Forbidden(_("只有订单的当事人和工作人员可以报告这个订单的事件。"), code="outside_subtree")
    else:
        someone = recipient or volunteer
        if someone is None:
            raise Invalid(_("请写明订单，或涉及的志愿者或服务对象。"), fields={"order_id": "required"})
        if not has_role(user, MANAGING_ROLES, someone.home_org):
            if is_managing_staff(user):
                raise Forbidden(_("只有会员所在社区及上级的工作人员可以办理。"), code="outside_subtree")
            raise Invalid(_("请写明发生事件的订单。"), fields={"order_id": "required"})
    return order, volunteer, recipient
