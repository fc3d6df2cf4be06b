from __future__ import annotations

from typing import Annotated, Any

from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import Query, Router, Status

from timebank.api.types import Page, PathId, paginate
from timebank.catalogue import actions
from timebank.catalogue.models import MenuEntry, ServiceItem
from timebank.catalogue.schemas import CategoryCode, ItemIn, ItemOut, MenuIn, MenuOut, TierCode
from timebank.lib.errors import Forbidden, NotFound
from timebank.orgs.access import access_bank_admin, access_org, caller_bank_id, has_role
from timebank.orgs.api import caller
from timebank.orgs.models import MANAGING_ROLES

router = Router(tags=["catalogue"])


@router.get("/catalogue/items", response=Page[ItemOut])
def list_items(
    request: HttpRequest,
    limit: int = 50,
    cursor: Annotated[str | None, Query(max_length=100)] = None,
    category: CategoryCode | None = None,
    tier: TierCode | None = None,
    head_office_id: PathId | None = None,
) -> dict[str, Any]:
    """The service catalogue of the caller's bank (the superuser names `head_office_id`)."""
    user = caller(request)
    bank_id = caller_bank_id(user)
    if user.is_superuser and head_office_id:
        bank_id = head_office_id
    elif head_office_id and head_office_id != bank_id:
        raise Forbidden(_("只能查看本银行的服务清单。"), code="outside_subtree")
    if bank_id is None:
        return {"items": [], "next_cursor": None}
    qs = ServiceItem.objects.filter(head_office_id=bank_id).select_related("head_office__rules")
    if category:
        qs = qs.filter(category=category)
    if tier:
        qs = qs.filter(tier=tier)
    rows, nxt = paginate(qs, limit, cursor)
    return {"items": rows, "next_cursor": nxt}  # ItemOut reads each row and its bank's multipliers


@router.post("/catalogue/items", response={201: ItemOut})
def create_item(request: HttpRequest, payload: ItemIn) -> Status[ServiceItem]:
    """Head-office admins add service items to their bank's catalogue."""
    user = caller(request)
    bank_id = payload.head_office_id or caller_bank_id(user)
    if bank_id is None:
        raise Forbidden(_("只有总行管理员可以这样做。"), code="not_head_office_admin")
    head_office = access_bank_admin(user, bank_id)
    item = actions.do_create_service_item(
        user,
        head_office=head_office,
        name=payload.name,
        category=payload.category,
        tier=payload.tier,
        requires_certificate=payload.requires_certificate,
        description=payload.description,
    )
    return Status(201, item)


@router.get("/orgs/{org_id}/menu", response=list[MenuOut])
def get_menu(request: HttpRequest, org_id: PathId) -> list[MenuEntry]:
    """制单: what a sub-branch offers, when and where."""
    org = access_org(caller(request), org_id)
    return list(MenuEntry.objects.filter(org=org).select_related("item").order_by("pk"))  # MenuOut reads each


@router.put("/orgs/{org_id}/menu", response=MenuOut)
def set_menu_entry(request: HttpRequest, org_id: PathId, payload: MenuIn) -> MenuEntry:
    user = caller(request)
    org = access_org(user, org_id)
    if not has_role(user, MANAGING_ROLES, org):
        raise Forbidden(_("只有本社区及上级的工作人员可以编辑服务菜单。"), code="not_allowed")
    item = ServiceItem.objects.filter(pk=payload.service_item_id).first()
    if item is None:
        raise NotFound(_("找不到该服务项目。"), code="item_not_found")
    entry = actions.do_set_menu_entry(
        user, org=org, item=item, times=payload.times, place=payload.place, active=payload.active
    )
    return entry
