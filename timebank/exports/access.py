"""Who may issue and read service certificates and statements, and whose own personal data (a copy, the
separate consents) a caller reaches."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from timebank.exports.models import IssuedCertificate
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import READ_ROLES, access_member, member_of
from timebank.members.models import Member
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, User


def access_member_to_certify(user: User, member_id: int) -> Member:
    """Issue a certificate: the volunteer themselves, or staff and admins of their home subtree."""
    member = Member.objects.select_related("home_org", "bank").filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    me = member_of(user)
    if (me is not None and me.pk == member.pk) or has_role(user, MANAGING_ROLES, member.home_org):
        return member
    raise Forbidden(_("只有本人或所在社区及上级的工作人员可以开具证明。"), code="outside_subtree")


def access_certificate(user: User, serial: str) -> IssuedCertificate:
    """Download an issued certificate: the volunteer, and staff or operators of their home subtree."""
    cert = IssuedCertificate.objects.select_related("member", "member__home_org").filter(serial=serial.upper()).first()
    if cert is None:
        raise NotFound(_("找不到这份证明。"), code="certificate_not_found")
    me = member_of(user)
    if (me is not None and me.pk == cert.member_id) or has_role(user, READ_ROLES, cert.member.home_org):
        return cert
    raise NotFound(_("找不到这份证明。"), code="certificate_not_found")


def access_statement(user: User, member_id: int) -> Member:
    """A member's statement: the member, their linked relatives, staff and operators of the home subtree."""
    return access_member(user, member_id)


def access_own_member(user: User) -> Member:
    """The caller's own member record (`/me/data`, `/me/consents`): members only; staff logins have none."""
    member = member_of(user)
    if member is None:
        raise Forbidden(_("只有会员本人可以使用这项功能。"), code="not_a_member")
    return Member.objects.select_related("bank", "home_org").get(pk=member.pk)
