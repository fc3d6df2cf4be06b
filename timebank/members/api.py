from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import (
    Page,
    PathId,
    paginate,
)
from timebank.lib import ratelimit
from timebank.lib.errors import Conflict, Forbidden, Invalid, NotFound
from timebank.lib.masking import mask_phone
from timebank.members import actions
from timebank.members.access import (
    access_member,
    access_member_login_to_reset,
    access_member_to_manage,
    can_see_personal_data,
    member_of,
    visible_members,
)
from timebank.members.models import Member, MemberStatus, RelativeLink
from timebank.members.schemas import (
    IdNumberOut,
    MemberFields,
    MemberIn,
    MemberOut,
    MemberPatch,
    MeOut,
    RelativeIn,
    RelativeOut,
)
from timebank.orgs.access import has_role
from timebank.orgs.actions import do_reset_password
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES, Org, User
from timebank.orgs.schemas import TemporaryPasswordOut

router = Router(tags=["members"])


def _reviews(user: User, member: Member) -> bool:
    """Whether `user` reviews this pending registration (staff or admin of its home subtree)."""
    return (
        member.status == MemberStatus.PENDING
        and bool(member.id_number_hash)
        and has_role(user, MANAGING_ROLES, member.home_org)
    )


def member_out(member: Member, user: User, *, personal: bool = False) -> dict[str, Any]:
    """The member as `user` may see them. Phone, address and home coordinates are shown in full only with
    `personal` (the one member's endpoint, which audits it) to those allowed; lists and the answers of
    actions show the phone masked (enough to recognise a caller, not to copy out a register) and no address."""
    full = personal and can_see_personal_data(user, member)
    return {
        "id": member.pk,
        "bank_id": member.bank_id,
        "home_org_id": member.home_org_id,
        "name": member.name,
        "phone": member.phone if full else mask_phone(member.phone),
        "birth_date": member.birth_date,
        "gender": member.gender,
        "id_number_masked": member.id_number_masked,
        "address": member.address if full else None,
        "latitude": member.latitude if full else None,
        "longitude": member.longitude if full else None,
        "roles": member.roles,
        "recipient_categories": member.recipient_categories,
        "skills": member.skills,
        "occupation": member.occupation,
        "willing_services": member.willing_services,
        "availability": member.availability,
        "referred_by_id": member.referred_by_id,
        "status": member.status,
        "has_login": member.user_id is not None,
        # Only staff who may approve the registration learn that its number is someone's (no oracle).
        "duplicate_of_id": actions.duplicate_of(member) if _reviews(user, member) else None,
        "created_at": member.created_at,
    }


def _input(payload: MemberFields) -> actions.MemberInput:
    data = payload.dict(exclude_unset=True, exclude={"home_org_id", "login"})
    for name, value in list(data.items()):
        if value is None and name not in ("referred_by_id",):
            raise Invalid(_("这一项不能为空。"), fields={name: "null"})
    return actions.MemberInput(**data)


def _home_org(org_id: int) -> Org:
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return org


@router.get("/members", response=Page[MemberOut])
def list_members(
    request: HttpRequest,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    status: MemberStatus | None = None,
    role: Literal["volunteer", "recipient"] | None = None,
    org_id: PathId | None = None,
    q: Annotated[str | None, Query(max_length=50)] = None,
) -> dict[str, Any]:
    """Members the caller may see. `q` finds by name or phone (the hotline's lookup)."""
    user = caller(request)
    qs = visible_members(user)
    if status:
        qs = qs.filter(status=status)
    if role == "volunteer":
        qs = qs.filter(is_volunteer=True)
    elif role == "recipient":
        qs = qs.filter(is_recipient=True)
    if org_id:
        org = _home_org(org_id)
        qs = qs.filter(home_org__path__startswith=org.path)
    if q:
        q = q.replace("\x00", "")
        qs = qs.filter(name__contains=q) | qs.filter(phone__contains=q)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": [member_out(m, user) for m in rows], "next_cursor": nxt}


@router.post("/members", response={201: MemberOut})
def create_member(request: HttpRequest, payload: MemberIn) -> Status[dict[str, Any]]:
    """Staff register a member in their subtree; the member is active at once."""
    user = caller(request)
    home = _home_org(payload.home_org_id)
    if not has_role(user, MANAGING_ROLES, home):
        raise Forbidden(_("只能在自己管辖的社区登记会员。"), code="outside_subtree")
    login = (payload.login.username, payload.login.password) if payload.login else None
    member = actions.do_register_member(user, home_org=home, data=_input(payload), login=login, approved=True)
    return Status(201, member_out(member, user))


@router.post("/register", auth=None, response={201: MemberOut}, tags=["members", "auth"])
def self_register(request: HttpRequest, payload: MemberIn) -> Status[dict[str, Any]]:
    """Anyone may register with a login; the member stays `pending` until staff approve.

    The answer never tells whether the ID number is already a member's: such a registration is `pending` like any
    other, flagged for the staff who review it. Limited per client address (429 `rate_limited`)."""
    ratelimit.hit(request, "register")
    if payload.login is None:
        raise Invalid(_("自助注册需要设置用户名和密码。"), fields={"login": "required"})
    home = _home_org(payload.home_org_id)
    member = actions.do_register_member(
        None,
        home_org=home,
        data=_input(payload),
        login=(payload.login.username, payload.login.password),
        approved=False,
    )
    assert member.user is not None
    return Status(201, member_out(member, member.user))


@router.get("/members/{member_id}", response=MemberOut)
def get_member(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
    """One member. Those allowed see the full phone, address and coordinates here; each such view is audited."""
    user = caller(request)
    member = access_member(user, member_id)
    if can_see_personal_data(user, member):
        shown = actions.contact_fields(member)
        if member.latitude is not None:
            shown.append("coordinates")
        actions.do_view_personal_data(user, [(member, shown)], via=f"member:{member.pk}")
    return member_out(member, user, personal=True)


@router.patch("/members/{member_id}", response=MemberOut)
def patch_member(request: HttpRequest, member_id: PathId, payload: MemberPatch) -> dict[str, Any]:
    """Edit a member. Moving home (`home_org_id`) needs a caller whose subtree holds both orgs. `login` gives a
    member who has none their own login, as `POST /members` does (409 `has_login` when they have one)."""
    user = caller(request)
    member = access_member_to_manage(user, member_id)
    new_home = None
    if payload.home_org_id is not None and payload.home_org_id != member.home_org_id:
        new_home = _home_org(payload.home_org_id)
        if new_home.head_office_id != member.bank_id:
            raise Conflict(_("新社区属于另一家时间银行，请办理跨行转移。"), code="other_bank")
        if not has_role(user, MANAGING_ROLES, new_home):
            raise Forbidden(_("新社区不在您的管辖范围内。"), code="outside_subtree")
    data = _input(payload)
    login = (payload.login.username, payload.login.password) if payload.login else None
    return member_out(actions.do_update_member(user, member, data, new_home=new_home, login=login), user)


def _status_action(name: str, fn: Any) -> None:
    @router.post(f"/members/{{member_id}}/{name}", response=MemberOut, operation_id=f"member_{name}")
    def endpoint(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
        user = caller(request)
        return member_out(fn(user, access_member_to_manage(user, member_id)), user)

    endpoint.__doc__ = {
        "approve": "Approve a pending (self-registered) member: the member becomes `active`.",
        "suspend": "Suspend an active member.",
        "reactivate": "Make a suspended member active again.",
        "leave": "Record that a member has left. Their history and credits stay in the ledger.",
    }[name]


_status_action("approve", actions.do_approve_member)
_status_action("suspend", actions.do_suspend_member)
_status_action("reactivate", actions.do_reactivate_member)
_status_action("leave", actions.do_member_leaves)


@router.get("/members/{member_id}/id-number", response=IdNumberOut)
def reveal_id_number(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
    """The unmasked ID number, for staff of the home subtree. Every call is written to the audit chain."""
    user = caller(request)
    member = access_member_to_manage(user, member_id)
    if not member.id_number_encrypted:
        raise NotFound(_("这位会员没有登记身份证号。"), code="no_id_number")
    return {"member_id": member.pk, "id_number": actions.do_view_id_number(user, member)}


@router.post("/members/{member_id}/relatives", response={201: RelativeOut})
def link_relative(request: HttpRequest, member_id: PathId, payload: RelativeIn) -> Status[dict[str, Any]]:
    """Link two members as relatives. The link is symmetric."""
    user = caller(request)
    member = access_member_to_manage(user, member_id)
    relative = access_member(user, payload.relative_id)
    link = actions.do_link_relative(user, member, relative, payload.relation, contact=payload.contact)
    return Status(
        201, {"member_id": member.pk, "relative_id": relative.pk, "relation": link.relation, "name": relative.name}
    )


@router.get("/members/{member_id}/relatives", response=list[RelativeOut])
def list_relatives(request: HttpRequest, member_id: PathId) -> list[dict[str, Any]]:
    member = access_member(caller(request), member_id)
    links = RelativeLink.objects.filter(member=member).select_related("relative").order_by("pk")
    return [
        {"member_id": member.pk, "relative_id": lk.relative_id, "relation": lk.relation, "name": lk.relative.name}
        for lk in links
    ]


@router.post(
    "/members/{member_id}/password-reset",
    response={200: TemporaryPasswordOut},
    tags=["members", "auth"],
    operation_id="timebank_orgs_api_reset_member_password",  # its name in the document since it lived in orgs
)
def reset_member_password(request: HttpRequest, member_id: PathId) -> dict[str, str]:
    """Staff of the member's home subtree give the member's login a temporary password, answered once. The old
    password and tokens stop at once; the login must choose a new password at its next login."""
    user = caller(request)
    _member, login = access_member_login_to_reset(user, member_id)
    return {"temporary_password": do_reset_password(user, login)}


@router.get("/me", response=MeOut, tags=["auth"])
def me(request: HttpRequest) -> dict[str, Any]:
    from timebank.orgs.api import roles_of

    user = caller(request)
    member = member_of(user)
    return {
        "username": user.username,
        "roles": roles_of(user),
        "org_id": user.org_id,
        "member": member_out(member, user, personal=True) if member else None,  # their own
    }
