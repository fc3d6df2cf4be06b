"""Who may keep and read an org's fund ledger: staff and admins of the org's subtree.

The public disclosure needs no access check: it shows totals only, never a person."""

from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.funds.actions import StockInput
from timebank.funds.models import FundEntry
from timebank.goods.access import access_goods
from timebank.lib.errors import Forbidden, Invalid, NotFound
from timebank.orgs.access import has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, User


def get_org(org_id: int) -> Org:
    org = Org.objects.select_related("head_office").filter(pk=org_id).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return org


def access_fund_org(user: User, org_id: int) -> Org:
    """Record entries for `org`, or read its rolled-up totals: staff, branch and head-office admins above it."""
    org = get_org(org_id)
    if has_role(user, MANAGING_ROLES, org):
        return org
    raise Forbidden(_("只有本机构及上级的工作人员可以管理资金账目。"), code="outside_subtree")


def visible_fund_entries(user: User) -> QuerySet[FundEntry]:
    if user.is_superuser:
        return FundEntry.objects.all()
    scope = staff_scope(user)
    if scope is None or user.role not in MANAGING_ROLES:
        return FundEntry.objects.none()
    return FundEntry.objects.filter(org__path__startswith=scope.path)


def access_fund_entry(user: User, entry_id: int) -> FundEntry:
    entry = FundEntry.objects.select_related("org").filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("找不到这条资金记录。"), code="fund_entry_not_found")
    if has_role(user, MANAGING_ROLES, entry.org):
        return entry
    raise Forbidden(_("只有本机构及上级的工作人员可以管理资金账目。"), code="outside_subtree")


def access_stock(
    user: User, *, outlet_id: int, quantity: int, goods_id: int | None, name: str, price_minutes: int | None
) -> StockInput:
    """Donated goods put on a shelf (the `stock` of POST /funds/in-kind, and its page): staff of the outlet's
    subtree; `goods_id` restocks goods they manage, else the new goods need a name and a price."""
    outlet = get_org(outlet_id)
    if not has_role(user, MANAGING_ROLES, outlet):
        raise Forbidden(_("只有网点所在社区及上级的工作人员可以管理物品。"), code="outside_subtree")
    goods = access_goods(user, goods_id, manage=True) if goods_id else None
    if goods is None and (not name.strip() or price_minutes is None):
        raise Invalid(_("新物品需要填写名称和价格（分钟）。"), fields={"stock.name": "required"})
    return StockInput(outlet=outlet, quantity=quantity, goods=goods, name=name, price_minutes=price_minutes or 0)
