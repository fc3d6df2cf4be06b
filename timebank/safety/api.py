"""Volunteer safety and skills: insurance policies, certificates, training and assessment, incident reports."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.db.models import Count, Q
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, paginate
from timebank.lib import clock
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.models import Certificate, InsurancePolicy, Member
from timebank.orgs.access import access_org, has_role, staff_scope
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES, Org, User
from timebank.safety import actions, lists
from timebank.safety.access import (
    access_incident,
    access_member_safety,
    access_members_to_insure,
    access_report_incident,
    access_training,
    is_managing_staff,
    require_managing_staff,
    visible_incidents,
    visible_trainings,
)
from timebank.safety.models import (
    Assessment,
    IncidentReport,
    IncidentStatus,
    TrainingAttendance,
    TrainingSession,
)
from timebank.safety.schemas import (
    AttendanceIn,
    AttendanceOut,
    AttendanceResultOut,
    CertificateIn,
    CertificateOut,
    ClaimIn,
    DecisionIn,
    ExpiringCertificateOut,
    GroupPolicyIn,
    GroupPolicyOut,
    IncidentDetailOut,
    IncidentIn,
    IncidentOut,
    InsuranceAlertOut,
    MemberTrainingOut,
    PolicyIn,
    PolicyOut,
    ReopenIn,
    SafetyCloseIn,
    SafetyFollowUpIn,
    SafetyFollowUpOut,
    TrainingIn,
    TrainingOut,
)

router = Router(tags=["safety"])

CursorParam = Annotated[str | None, Query(max_length=100)]
Days = Annotated[int, Query(ge=0, le=366)]


# Insurance policies ---------------------------------------------------------------------------------


@router.post("/members/{member_id}/insurance-policies", response={201: PolicyOut})
def add_policy(request: HttpRequest, member_id: PathId, payload: PolicyIn) -> Status[InsurancePolicy]:
    """Register a member's accident insurance policy (人身意外伤害险). Staff of the member's home subtree.
    The same policy for the same member twice is 409; a policy number already registered by the same
    insurer with another period is 409 (a group policy shares one period)."""
    user = caller(request)
    member = access_member_safety(user, member_id, manage=True)
    policy = actions.do_add_insurance_policy(
        user,
        member,
        insurer=payload.insurer,
        policy_number=payload.policy_number,
        starts_on=payload.starts_on,
        ends_on=payload.ends_on,
    )
    return Status(201, policy)


@router.get("/members/{member_id}/insurance-policies", response=Page[PolicyOut])
def list_policies(
    request: HttpRequest, member_id: PathId, limit: int = 50, cursor: CursorParam = None
) -> dict[str, Any]:
    """A member's policies, newest first: the member, and staff of the home subtree."""
    member = access_member_safety(caller(request), member_id)
    rows, nxt = paginate(InsurancePolicy.objects.filter(member=member), limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}


@router.post("/insurance-policies/bulk", response={201: GroupPolicyOut})
def add_group_policy(request: HttpRequest, payload: GroupPolicyIn) -> Status[dict[str, Any]]:
    """A group policy (团体意外险) covering several members: one row per member, all or nothing. The
    caller must manage every member listed."""
    user = caller(request)
    members = access_members_to_insure(user, payload.member_ids)
    policies = actions.do_add_group_policy(
        user,
        members,
        insurer=payload.insurer,
        policy_number=payload.policy_number,
        starts_on=payload.starts_on,
        ends_on=payload.ends_on,
    )
    first = policies[0]
    return Status(
        201,
        {
            "insurer": first.insurer,
            "policy_number": first.policy_number,
            "starts_on": first.starts_on,
            "ends_on": first.ends_on,
            "count": len(policies),
            "policies": policies,
        },
    )


def _scope(user: User, org_id: int | None) -> Org | None:
    scope = require_managing_staff(user)
    if org_id is not None:
        org = access_org(user, org_id)
        scope = org
    return scope


@router.get("/insurance-policies/expiring", response=Page[InsuranceAlertOut])
def insurance_alerts(
    request: HttpRequest,
    days: Days = 30,
    org_id: PathId | None = None,
    status: Literal["expiring", "uninsured"] | None = None,
    limit: int = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    """Active volunteers of the caller's subtree (or of `org_id` in it) whose cover ends within `days`
    with no renewal after it (`expiring`), or who have no policy in force today (`uninsured`). Staff."""
    scope = _scope(caller(request), org_id)
    today = clock.localdate()
    rows, nxt = paginate(lists.insurance_alerts(scope, today=today, days=days, status=status), limit, cursor)
    current = lists.current_policies([m.pk for m in rows], today)
    items = []
    for m in rows:
        p = current.get(m.pk)
        items.append(
            {
                "member_id": m.pk,
                "name": m.name,
                "home_org_id": m.home_org_id,
                "status": lists.EXPIRING if p is not None else lists.UNINSURED,
                "policy": p,
                "days_left": (p.ends_on - today).days if p is not None else None,
            }
        )
    return {"items": items, "next_cursor": nxt}


# Certificates ---------------------------------------------------------------------------------------


@router.post("/members/{member_id}/certificates", response={201: CertificateOut})
def add_certificate(request: HttpRequest, member_id: PathId, payload: CertificateIn) -> Status[Certificate]:
    """Register a certificate (资质). Certificates feed matching's hard filter. Staff of the home subtree."""
    user = caller(request)
    member = access_member_safety(user, member_id, manage=True)
    cert = actions.do_add_certificate(
        user,
        member,
        kind=payload.kind,
        issuer=payload.issuer,
        valid_from=payload.valid_from,
        valid_until=payload.valid_until,
    )
    return Status(201, cert)


@router.get("/members/{member_id}/certificates", response=Page[CertificateOut])
def list_certificates(
    request: HttpRequest, member_id: PathId, limit: int = 50, cursor: CursorParam = None
) -> dict[str, Any]:
    member = access_member_safety(caller(request), member_id)
    rows, nxt = paginate(Certificate.objects.filter(member=member), limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}


@router.get("/certificates/expiring", response=Page[ExpiringCertificateOut])
def expiring_certificates(
    request: HttpRequest,
    days: Days = 30,
    org_id: PathId | None = None,
    limit: int = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    """Certificates of active members of the subtree that end within `days` and have not been renewed. Staff."""
    scope = _scope(caller(request), org_id)
    rows, nxt = paginate(lists.expiring_certificates(scope, today=clock.localdate(), days=days), limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # ExpiringCertificateOut reads each certificate


# Training and assessment ----------------------------------------------------------------------------


@router.post("/trainings", response={201: TrainingOut})
def create_training(request: HttpRequest, payload: TrainingIn) -> Status[TrainingSession]:
    """A training session (培训) held by an org. Staff of that org's subtree."""
    user = caller(request)
    org = Org.objects.filter(pk=payload.org_id).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("只能为自己管辖的机构登记培训。"), code="outside_subtree")
    session = actions.do_create_training(
        user,
        org=org,
        title=payload.title,
        topic=payload.topic,
        held_on=payload.held_on,
        place=payload.place,
        trainer=payload.trainer,
        kind=payload.kind,
        grants_certificate=payload.grants_certificate,
        certificate_valid_years=payload.certificate_valid_years,
    )
    return Status(201, session)


@router.get("/trainings", response=Page[TrainingOut])
def list_trainings(
    request: HttpRequest,
    org_id: PathId | None = None,
    limit: int = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    """Staff see the sessions of their subtree and of the orgs above it; a member sees the ones they attended."""
    user = caller(request)
    qs = visible_trainings(user)
    if org_id is not None:
        qs = qs.filter(org_id=org_id)
    qs = qs.annotate(
        n_attended=Count("attendance", filter=Q(attendance__attended=True)),
        n_passed=Count("attendance", filter=Q(attendance__assessment=Assessment.PASSED)),
    )
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}  # TrainingOut reads the annotated counts


@router.get("/trainings/{training_id}", response=TrainingOut)
def get_training(request: HttpRequest, training_id: PathId) -> TrainingSession:
    return access_training(caller(request), training_id)


@router.post("/trainings/{training_id}/attendance", response=AttendanceResultOut)
def record_attendance(request: HttpRequest, training_id: PathId, payload: AttendanceIn) -> dict[str, Any]:
    """Record attendance and assessment results (考核), all or nothing. A pass at a session that grants a
    certificate creates it in the same step (valid `certificate_valid_years` from the session date).
    Staff of the session's subtree, for members of their own subtree. Sending the same results again
    changes nothing."""
    user = caller(request)
    session = access_training(user, training_id, manage=True)
    ids = [r.member_id for r in payload.records]
    found = {m.pk: m for m in Member.objects.select_related("home_org").filter(pk__in=ids)}
    missing = sorted(set(ids) - found.keys())
    if missing:
        raise NotFound(_("找不到该会员。"), code="member_not_found", fields={"member_ids": missing})
    outside = sorted({i for i in ids if not has_role(user, MANAGING_ROLES, found[i].home_org)})
    if outside:
        raise Forbidden(
            _("只有会员所在社区及上级的工作人员可以办理。"), code="outside_subtree", fields={"member_ids": outside}
        )
    rows = [
        actions.AttendanceInput(
            member=found[r.member_id], attended=r.attended, passed=r.passed, score=r.score, note=r.note
        )
        for r in payload.records
    ]
    saved, granted = actions.do_record_attendance(user, session, rows)
    return {"training": session, "records": saved, "certificates_granted": granted}


@router.get("/trainings/{training_id}/attendance", response=Page[AttendanceOut])
def list_attendance(
    request: HttpRequest, training_id: PathId, limit: int = 50, cursor: CursorParam = None
) -> dict[str, Any]:
    """The attendance list of a session: staff who may see it. A member sees only their own row."""
    user = caller(request)
    session = access_training(user, training_id)
    qs = TrainingAttendance.objects.filter(session=session).select_related("member")
    scope = staff_scope(user)
    if has_role(user, MANAGING_ROLES, session.org):
        pass
    elif is_managing_staff(user) and scope is not None:
        # A session held above the caller's subtree: only their own people's rows.
        qs = qs.filter(member__home_org__path__startswith=scope.path)
    else:
        qs = qs.filter(member__user=user)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}


@router.get("/members/{member_id}/trainings", response=Page[MemberTrainingOut])
def member_trainings(
    request: HttpRequest, member_id: PathId, limit: int = 50, cursor: CursorParam = None
) -> dict[str, Any]:
    """A member's training record: the member, and staff of the home subtree."""
    member = access_member_safety(caller(request), member_id)
    qs = TrainingAttendance.objects.filter(member=member).select_related("session", "member")
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": rows, "next_cursor": nxt}  # MemberTrainingOut reads each row and its session


# Incidents ------------------------------------------------------------------------------------------


def _who(user: User | None) -> str | None:
    return (user.display_name or user.username) if user is not None else None


def incident_out(i: IncidentReport) -> dict[str, Any]:
    decision = None
    if i.responsibility and i.decided_at is not None:
        # `decisions` is prefetched on lists: pick the newest in Python rather than query per row.
        last = max(i.decisions.all(), key=lambda d: (d.decided_at, d.pk), default=None)
        decision = {
            "responsibility": i.responsibility,
            "note": i.decision_note,
            "change_reason": last.change_reason if last else "",
            "decided_by_id": i.decided_by_id,
            "decided_by_name": _who(i.decided_by),
            "decided_at": i.decided_at,
        }
    return {
        "id": i.pk,
        "org_id": i.org_id,
        "order_id": i.order_id,
        "volunteer_id": i.volunteer_id,
        "recipient_id": i.recipient_id,
        "occurred_at": i.occurred_at,
        "place": i.place,
        "what_happened": i.what_happened,
        "injury": i.injury,
        "status": i.status,
        "claim": {"policy_id": i.claim_policy_id, "claim_number": i.claim_number, "status": i.claim_status},
        "decision": decision,
        "reported_by_id": i.reported_by_id,
        "created_at": i.created_at,
        "closed_at": i.closed_at,
    }


def incident_detail(user: User, i: IncidentReport, *, show_injury: bool) -> dict[str, Any]:
    body = incident_out(i)
    injury = None
    if i.injury_description_encrypted:
        # Only staff and the parties reach here (access_incident); each showing goes on the audit chain.
        injury = actions.do_view_incident_injury(user, i) if show_injury else None
    return {
        **body,
        "injury_description": injury,
        "decisions": [
            {
                "responsibility": d.responsibility,
                "note": d.note,
                "change_reason": d.change_reason,
                "decided_by_id": d.decided_by_id,
                "decided_by_name": _who(d.decided_by),
                "decided_at": d.decided_at,
            }
            for d in i.decisions.select_related("decided_by").order_by("decided_at", "pk")
        ],
        "follow_ups": [
            {"id": f.pk, "kind": f.kind, "note": f.note, "created_by_id": f.created_by_id, "created_at": f.created_at}
            for f in i.follow_ups.order_by("created_at", "pk")
        ],
    }


@router.post("/incidents", response={201: IncidentDetailOut})
def report_incident(request: HttpRequest, payload: IncidentIn) -> Status[dict[str, Any]]:
    """Report an incident (意外事件) during a service. With `order_id`: the volunteer on the order, the
    recipient, their relatives, and staff of the order's subtree. Without an order: staff of the
    subtree of the recipient's (else the volunteer's) home."""
    user = caller(request)
    order, volunteer, recipient = access_report_incident(
        user, order_id=payload.order_id, volunteer_id=payload.volunteer_id, recipient_id=payload.recipient_id
    )
    incident = actions.do_report_incident(
        user,
        order=order,
        volunteer=volunteer,
        recipient=recipient,
        occurred_at=payload.occurred_at,
        place=payload.place,
        what_happened=payload.what_happened,
        injury=payload.injury,
        injury_description=payload.injury_description,
    )
    # The reporter already knows what they wrote: no need to audit a showing of it.
    body = incident_detail(user, incident, show_injury=False)
    body["injury_description"] = payload.injury_description.strip() or None
    return Status(201, body)


@router.get("/incidents", response=Page[IncidentOut])
def list_incidents(
    request: HttpRequest,
    status: IncidentStatus | None = None,
    order_id: PathId | None = None,
    limit: int = 50,
    cursor: CursorParam = None,
) -> dict[str, Any]:
    """Incidents the caller may see, newest first: staff of the subtree, and the parties. Lists carry no
    injury details: open one incident to see them."""
    user = caller(request)
    qs = visible_incidents(user).select_related("decided_by").prefetch_related("decisions")
    if status:
        qs = qs.filter(status=status)
    if order_id is not None:
        qs = qs.filter(order_id=order_id)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": [incident_out(i) for i in rows], "next_cursor": nxt}


@router.get("/incidents/{incident_id}", response=IncidentDetailOut)
def get_incident(request: HttpRequest, incident_id: PathId) -> dict[str, Any]:
    """One incident with its follow-ups and every responsibility decision. Injury details are shown to
    staff of the subtree and the parties, and each showing is written to the audit chain."""
    user = caller(request)
    incident, _roles = access_incident(user, incident_id)
    return incident_detail(user, incident, show_injury=True)


@router.post("/incidents/{incident_id}/follow-ups", response={201: SafetyFollowUpOut})
def add_follow_up(request: HttpRequest, incident_id: PathId, payload: SafetyFollowUpIn) -> Status[dict[str, Any]]:
    """Add a dated follow-up note (跟进). Staff of the subtree; not on a closed incident."""
    user = caller(request)
    incident, _roles = access_incident(user, incident_id, manage=True)
    f = actions.do_add_incident_follow_up(user, incident, payload.note)
    return Status(
        201, {"id": f.pk, "kind": f.kind, "note": f.note, "created_by_id": f.created_by_id, "created_at": f.created_at}
    )


def _fresh(user: User, incident_id: int) -> dict[str, Any]:
    """The answer to a write: the incident as it now is, without injury details (GET shows them, audited)."""
    incident, _roles = access_incident(user, incident_id)
    return incident_detail(user, incident, show_injury=False)


@router.post("/incidents/{incident_id}/decision", response=IncidentDetailOut)
def decide(request: HttpRequest, incident_id: PathId, payload: DecisionIn) -> dict[str, Any]:
    """责任认定: who is responsible. Staff, branch and head-office admins of the subtree. Once decided, a
    change needs a `reason` (409 without one) and is kept as a new decision: the history stays."""
    user = caller(request)
    incident, _roles = access_incident(user, incident_id, manage=True)
    actions.do_decide_responsibility(
        user, incident, responsibility=payload.responsibility, note=payload.note, reason=payload.reason
    )
    return _fresh(user, incident_id)


@router.post("/incidents/{incident_id}/claim", response=IncidentDetailOut)
def update_claim(request: HttpRequest, incident_id: PathId, payload: ClaimIn) -> dict[str, Any]:
    """The insurance claim (理赔): `filed` (with the policy of a party and the claim number), then
    `paid` or `rejected`; a rejected claim may be filed again. Staff of the subtree."""
    user = caller(request)
    incident, _roles = access_incident(user, incident_id, manage=True)
    policy = None
    if payload.policy_id is not None:
        policy = InsurancePolicy.objects.filter(pk=payload.policy_id).first()
        if policy is None:
            raise NotFound(_("找不到这张保单。"), code="policy_not_found")
    actions.do_update_claim(
        user,
        incident,
        claim_status=payload.claim_status,
        policy=policy,
        claim_number=payload.claim_number,
        note=payload.note,
    )
    return _fresh(user, incident_id)


@router.post("/incidents/{incident_id}/close", response=IncidentDetailOut)
def close_incident(request: HttpRequest, incident_id: PathId, payload: SafetyCloseIn) -> dict[str, Any]:
    """结案. An incident with an injury needs a responsibility decision first; a claim still `filed` blocks it."""
    user = caller(request)
    incident, _roles = access_incident(user, incident_id, manage=True)
    actions.do_close_incident(user, incident, payload.note)
    return _fresh(user, incident_id)


@router.post("/incidents/{incident_id}/reopen", response=IncidentDetailOut)
def reopen_incident(request: HttpRequest, incident_id: PathId, payload: ReopenIn) -> dict[str, Any]:
    user = caller(request)
    incident, _roles = access_incident(user, incident_id, manage=True)
    actions.do_reopen_incident(user, incident, payload.reason)
    return _fresh(user, incident_id)
