from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.goods.models import Goods, Redemption
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import member_of
from timebank.orgs.access import caller_bank_id, has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, User


def visible_goods(user: User) -> QuerySet[Goods]:
    if user.is_superuser:
        return Goods.objects.all()
    scope = staff_scope(user)
    if scope is not None:
        return Goods.objects.filter(outlet__path__startswith=scope.path)
    bank_id = caller_bank_id(user)
    return Goods.objects.filter(outlet__head_office_id=bank_id, active=True) if bank_id else Goods.objects.none()


def access_goods(user: User, goods_id: int, *, manage: bool = False) -> Goods:
    goods = Goods.objects.select_related("outlet").filter(pk=goods_id).first()
    if goods is None:
        raise NotFound(_("找不到这件物品。"), code="goods_not_found")
    if manage:
        if has_role(user, MANAGING_ROLES, goods.outlet):
            return goods
        raise Forbidden(_("只有网点所在社区及上级的工作人员可以管理物品。"), code="outside_subtree")
    if visible_goods(user).filter(pk=goods.pk).exists():
        return goods
    raise Forbidden(_("这件物品不在您的范围内。"), code="outside_subtree")


def access_redemption(
    user: User, *, redemption_id: int | None = None, voucher_code: str | None = None, manage: bool = False
) -> Redemption:
    qs = Redemption.objects.select_related("goods", "outlet", "member", "transaction")
    redemption = qs.filter(pk=redemption_id).first() if redemption_id else qs.filter(voucher_code=voucher_code).first()
    if redemption is None:
        raise NotFound(_("找不到这张兑换券。"), code="voucher_not_found")
    if has_role(user, MANAGING_ROLES, redemption.outlet):
        return redemption
    me = member_of(user)
    if not manage and me is not None and me.pk == redemption.member_id:
        return redemption
    raise Forbidden(_("您无权查看这张兑换券。"), code="outside_subtree")
