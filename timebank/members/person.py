"""The person behind a page: a login, the member it belongs to and their relatives, as the header and the home
page describe them (settings.WEB_PERSON names `who` for the page kit, which imports no app); and a member's
name shown in full or masked by who reads it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from timebank.lib.masking import mask_name
from timebank.members.access import READ_ROLES, member_of
from timebank.members.models import Member, RelativeLink
from timebank.orgs.access import has_role
from timebank.orgs.models import Org, OrgKind, User
from timebank.orgs.scope import is_workbench_user, user_of


@dataclass
class Who:
    """The person behind a request, as the header and the home page describe them."""

    user: User
    member: Member | None
    relatives: list[RelativeLink] = field(default_factory=list)

    @property
    def name(self) -> str:
        if self.member is not None:
            return self.member.name
        return self.user.display_name or self.user.username

    @property
    def is_volunteer(self) -> bool:
        return self.member is not None and self.member.is_volunteer

    @property
    def is_recipient(self) -> bool:
        return self.member is not None and self.member.is_recipient

    @property
    def is_relative(self) -> bool:
        return bool(self.relatives)

    @property
    def is_workbench(self) -> bool:
        return is_workbench_user(self.user)

    @property
    def orders_care(self) -> bool:
        """May order services: for themselves (a recipient) or for a linked family member."""
        return self.is_recipient or self.is_relative

    @property
    def role_labels(self) -> list[str]:
        labels: list[str] = []
        if self.user.is_superuser:
            labels.append(str(_("系统管理员")))
        if self.user.role:
            labels.append(str(self.user.get_role_display()))
        if self.is_volunteer:
            labels.append(str(_("志愿者")))
        if self.is_recipient:
            labels.append(str(_("服务对象")))
        if self.is_relative:
            labels.append(str(_("亲属")))
        if self.member is not None and not labels:
            labels.append(str(_("会员")))
        return labels

    @property
    def place(self) -> str:
        if self.member is not None:
            return self.member.home_org.name
        return self.user.org.name if self.user.org_id and self.user.org else ""


def who(request: HttpRequest) -> Who:
    cached = getattr(request, "_web_who", None)
    if cached is not None:
        return cached
    user = user_of(request)
    member = member_of(user)
    relatives: list[RelativeLink] = []
    if member is not None:
        member = Member.objects.select_related("home_org", "bank").get(pk=member.pk)
        relatives = list(RelativeLink.objects.filter(member=member).select_related("relative").order_by("pk"))
    result = Who(user, member, relatives)
    request._web_who = result  # type: ignore[attr-defined]
    return result


def bank_name(me: Who | None) -> str:
    """The caller's bank; for visitors, the only bank of this deployment (or a plain title when there are several).
    The page kit's `bank_name` tag asks this through settings.WEB_BANK_NAME."""
    bank = None
    if me is not None and me.member is not None:
        bank = me.member.bank
    elif me is not None and me.user.org is not None:
        bank = me.user.org.head_office
    elif me is None:
        banks = list(Org.objects.filter(kind=OrgKind.HEAD_OFFICE)[:2])
        bank = banks[0] if len(banks) == 1 else None
    return bank.name if bank is not None else str(_("互助养老时间银行"))


class NameShield:
    """A member's name in full for staff who may read their home subtree, otherwise masked (王**).
    Decided once per org: lists and reports read many members of few orgs."""

    def __init__(self, user: User) -> None:
        self.user = user
        self._orgs: dict[int, bool] = {}

    def allowed(self, org_id: int) -> bool:
        if org_id not in self._orgs:
            org = Org.objects.filter(pk=org_id).first()
            self._orgs[org_id] = org is not None and has_role(self.user, READ_ROLES, org)
        return self._orgs[org_id]

    def name(self, name: str, org_id: int) -> str:
        return name if self.allowed(org_id) else mask_name(name)

    def member(self, member: Member) -> str:
        return self.name(member.name, member.home_org_id)
