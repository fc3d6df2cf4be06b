from __future__ import annotations

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from timebank.goods.actions import do_check_card_code
from timebank.goods.models import Goods, Redemption
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.access import member_of, relative_ids
from timebank.members.models import Member
from timebank.orgs.access import caller_bank_id, check_may_act_for_relatives, has_role, staff_scope
from timebank.orgs.models import MANAGING_ROLES, Org, User


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


def access_redeem(user: User, *, member: Member, outlet: Org, member_code: str | None) -> None:
    """兑换物品 from `member`'s goods at `outlet`: the member themselves; staff of the outlet's subtree for a
    member of their own subtree; and for a member outside it, only with the member's card code (proof that
    the member stands at the counter; wrong codes are counted and lock the card)."""
    me = member_of(user)
    if me is not None and me.pk == member.pk:
        return
    if not has_role(user, MANAGING_ROLES, outlet):
        raise Forbidden(_("只能用自己的时间兑换，或由网点工作人员办理。"), code="not_allowed")
    if has_role(user, MANAGING_ROLES, member.home_org):
        return
    if member.bank_id != outlet.head_office_id:
        raise Forbidden(_("这位会员不在您的范围内。"), code="outside_subtree")
    if not member_code or not member_code.strip():
        raise Forbidden(_("这位会员不是您社区的会员：请会员出示会员卡，输入卡上的卡码。"), code="member_code_required")
    do_check_card_code(user, member=member, outlet=outlet, code=member_code)


def access_card_code(user: User, member_id: int) -> Member:
    """The member-card code: the member and their linked relatives only. Staff never read it (it proves the
    member's presence to them), nor does the superuser."""
    member = Member.objects.select_related("bank").filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    me = member_of(user)
    if me is not None and me.pk == member.pk:
        return member
    if me is not None and member.pk in relative_ids(me):
        # A relative's login that staff reset lately may have been taken over (timebank.orgs.access.RESET_HOLD).
        check_may_act_for_relatives(user)
        return member
    raise Forbidden(_("只有会员本人和家属可以查看会员卡码。"), code="not_allowed")


def access_card_to_manage(user: User, member_id: int, *, staff_ok: bool) -> tuple[Member, bool]:
    """Re-issuing (new code) or unlocking a card: the member and their relatives as for reading it, and — when
    `staff_ok` — staff of the member's home subtree (who redeem for the member without a code anyway). Answers the
    member and whether the caller acts as staff (audited as such)."""
    member = Member.objects.select_related("bank", "home_org").filter(pk=member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    if staff_ok and has_role(user, MANAGING_ROLES, member.home_org):
        return member, True
    return access_card_code(user, member_id), False
