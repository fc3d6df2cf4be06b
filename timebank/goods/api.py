from __future__ import annotations

from typing import Annotated, Any

import segno
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status
from pydantic import Field

from timebank.api.types import Page, PathId, paginate
from timebank.goods import actions
from timebank.goods.access import (
    access_card_code,
    access_card_to_manage,
    access_goods,
    access_redeem,
    access_redemption,
    visible_goods,
)
from timebank.goods.models import Goods, Redemption
from timebank.goods.schemas import (
    CardCodeOut,
    CardUnlockOut,
    CountIn,
    GoodsIn,
    GoodsOut,
    RedemptionIn,
    RedemptionOut,
    RestockIn,
)
from timebank.ledger.api import transaction_out
from timebank.lib.errors import Forbidden, NotFound
from timebank.members.models import Member
from timebank.orgs.access import has_role
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES, Org

router = Router(tags=["goods"])


@router.get("/goods", response=Page[GoodsOut])
def list_goods(
    request: HttpRequest,
    outlet_id: PathId | None = None,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    qs = visible_goods(caller(request))
    if outlet_id:
        qs = qs.filter(outlet_id=outlet_id)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # GoodsOut reads each row


def _org(org_id: int) -> Org:
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        raise NotFound(_("找不到该机构。"), code="org_not_found")
    return org


@router.post("/goods", response={201: GoodsOut})
def create_goods(request: HttpRequest, payload: GoodsIn) -> Status[Goods]:
    """Staff of the outlet's subtree add goods for redemption."""
    user = caller(request)
    outlet = _org(payload.outlet_id)
    if not has_role(user, MANAGING_ROLES, outlet):
        raise Forbidden(_("只有网点所在社区及上级的工作人员可以管理物品。"), code="outside_subtree")
    goods = actions.do_create_goods(
        user, outlet=outlet, name=payload.name, price_minutes=payload.price_minutes, stock=payload.stock
    )
    return Status(201, goods)


@router.post("/goods/{goods_id}/restock", response=GoodsOut)
def restock(request: HttpRequest, goods_id: PathId, payload: RestockIn) -> Goods:
    user = caller(request)
    return actions.do_restock(
        user, access_goods(user, goods_id, manage=True), quantity=payload.quantity, note=payload.note
    )


@router.post("/goods/{goods_id}/count", response=GoodsOut)
def stock_count(request: HttpRequest, goods_id: PathId, payload: CountIn) -> Goods:
    """盘点: record a stock count; the difference is kept."""
    user = caller(request)
    return actions.do_stock_count(
        user, access_goods(user, goods_id, manage=True), counted=payload.counted, note=payload.note
    )


def redemption_out(r: Redemption) -> dict[str, Any]:
    return {
        **transaction_out(r.transaction),
        "redemption_id": r.pk,
        "goods_id": r.goods_id,
        "quantity": r.quantity,
        "voucher_code": r.voucher_code,
        "voucher_status": r.status,
        "handed_over_at": r.handed_over_at,
    }


@router.post("/goods/redemptions", response={201: RedemptionOut})
def redeem(request: HttpRequest, response: HttpResponse, payload: RedemptionIn) -> Status[dict[str, Any]]:
    """兑换物品: spend minutes from the `goods` bucket; the stock goes down in the same transaction.
    The member redeems from their own account, or staff of the outlet's subtree do it at the counter: for a
    member outside the staff's own subtree only with the member's card code in `member_code` (403 without it
    or with a wrong one; a few wrong codes lock the card)."""
    user = caller(request)
    outlet = _org(payload.outlet_id)
    member = Member.objects.filter(pk=payload.member_id).first()
    if member is None:
        raise NotFound(_("找不到该会员。"), code="member_not_found")
    access_redeem(user, member=member, outlet=outlet, member_code=payload.member_code)
    goods = Goods.objects.filter(pk=payload.goods_id).first()
    if goods is None:
        raise NotFound(_("找不到这件物品。"), code="goods_not_found")
    redemption, replayed = actions.do_redeem(
        user,
        member=member,
        goods=goods,
        quantity=payload.quantity,
        outlet=outlet,
        idempotency_key=payload.idempotency_key,
    )
    if replayed:
        response["Idempotent-Replayed"] = "true"
    body = redemption_out(redemption)
    if replayed:
        body.update(voucher_status="issued", handed_over_at=None)  # the original answer, unchanged
    return Status(201, body)


@router.get("/goods/redemptions/{redemption_id}", response=RedemptionOut)
def get_redemption(request: HttpRequest, redemption_id: PathId) -> dict[str, Any]:
    return redemption_out(access_redemption(caller(request), redemption_id=redemption_id))


@router.get("/goods/redemptions/{redemption_id}/voucher.svg", response={200: None})
def voucher_qr(request: HttpRequest, redemption_id: PathId) -> HttpResponse:
    """The voucher's QR code, to show on a phone or print."""
    redemption = access_redemption(caller(request), redemption_id=redemption_id)
    svg = segno.make(f"TBV:{redemption.voucher_code}", error="m").svg_inline(scale=6)
    return HttpResponse(svg, content_type="image/svg+xml")


VoucherCode = Annotated[str, Field(min_length=4, max_length=40, pattern=r"^(TBV:)?[0-9a-f]+$")]


def _code(code: str) -> str:
    return code.removeprefix("TBV:")


@router.get("/vouchers/{code}", response=RedemptionOut)
def check_voucher(request: HttpRequest, code: VoucherCode) -> dict[str, Any]:
    """The outlet scans or types a voucher: what it is for, and whether it was used."""
    return redemption_out(access_redemption(caller(request), voucher_code=_code(code), manage=True))


@router.post("/vouchers/{code}/hand-over", response=RedemptionOut)
def hand_over(request: HttpRequest, code: VoucherCode) -> dict[str, Any]:
    """Hand the goods over. A voucher can be used once: the second time is 409."""
    user = caller(request)
    redemption = access_redemption(user, voucher_code=_code(code), manage=True)
    return redemption_out(actions.do_hand_over(user, redemption))


@router.get("/members/{member_id}/card-code", response=CardCodeOut)
def get_card_code(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
    """The member-card code (proof of presence at an outlet): the member and their relatives only."""
    return {"code": actions.card_code(access_card_code(caller(request), member_id))}


@router.post("/members/{member_id}/card-code/reissue", response=CardCodeOut)
def reissue_card_code(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
    """A new card code (lost card, or the card was locked after wrong codes): the old code stops working, and
    every staff login's lock on the card ends. The member, their relatives, or staff of the member's home subtree
    (for a member without a phone; audited)."""
    user = caller(request)
    member, by_staff = access_card_to_manage(user, member_id, staff_ok=True)
    return {"code": actions.do_reissue_card(user, member, by_staff=by_staff)}


@router.post("/members/{member_id}/card-code/unlock", response=CardUnlockOut)
def unlock_card_code(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
    """Staff of the member's home subtree end the locks that wrong codes put on the card (one per staff login
    that typed them); the code stays the same. Audited `goods.card_unlocked`."""
    user = caller(request)
    member, by_staff = access_card_to_manage(user, member_id, staff_ok=True)
    if not by_staff:
        raise Forbidden(_("只有会员所在社区的工作人员可以解锁会员卡。"), code="not_allowed")
    return {"unlocked": True, "cleared": actions.do_unlock_card(user, member)}
