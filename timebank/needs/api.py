"""The recipient register (对象清单), the needs register (需求清单) and census imports (人口普查导入)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Annotated, Any, Literal

from django.db.models import Count, Exists, OuterRef, Prefetch
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from ninja import File, Form, Query, Router, Status, UploadedFile

from timebank.api.types import MAX_ID, Page, PathId, paginate
from timebank.lib import clock
from timebank.lib.errors import Invalid, NotFound
from timebank.lib.masking import mask_phone
from timebank.members.models import Member, MemberStatus, RecipientCategory
from timebank.needs import actions, census
from timebank.needs.access import (
    access_census_import,
    access_need,
    access_recipient_for_need,
    census_list_scope,
    census_scope,
    visible_needs,
    visible_recipients,
)
from timebank.needs.handover import access_hand_over, handover_targets, open_work
from timebank.needs.models import OPEN_STATUSES, CensusImport, Need, NeedStatus
from timebank.needs.priority import Priority, priority
from timebank.needs.schemas import (
    CensusImportOut,
    CloseIn,
    FollowUpIn,
    FoundByCode,
    HandoverIn,
    HandoverOut,
    LevelCode,
    LinkOrderIn,
    NeedDetailOut,
    NeedIn,
    NeedOut,
    NeedPatch,
    RecipientOut,
    StaffOpenWorkOut,
    person_name,
)
from timebank.orders.access import access_order
from timebank.orders.models import Order, OrderState
from timebank.orgs.access import access_org
from timebank.orgs.api import caller

router = Router(tags=["needs"])

CategoryCode = RecipientCategory
StatusCode = NeedStatus
CursorParam = Annotated[str | None, Query(max_length=100)]


# ---- 对象清单 -----------------------------------------------------------------------------------------


def encode_key(key: tuple[int, ...]) -> str:
    """An opaque cursor for lists ranked in Python: the sort key of the last item shown."""
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_key(cursor: str, length: int) -> tuple[int, ...]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(key, list) or len(key) != length or not all(type(k) is int and abs(k) <= MAX_ID for k in key):
            raise ValueError(cursor)
        return tuple(key)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Invalid(_("翻页参数无效。"), fields={"cursor": "invalid"}) from None


def ranked_recipients(
    qs: Any, today: dt.date, *, category: str | None = None, rank: int | None = None
) -> list[tuple[tuple[int, ...], int, Priority]]:
    """(sort key, member id, priority), served-first order. Categories are JSON lists, which SQLite cannot
    search, so ranking runs over (id, birth date, categories) triples: light even for a whole bank."""
    ranked: list[tuple[tuple[int, ...], int, Priority]] = []
    for pk, born, cats in qs.values_list("pk", "birth_date", "recipient_categories"):
        cats = cats if isinstance(cats, list) else []
        if category and category not in cats:
            continue
        p = priority(born, cats, today)
        if rank is not None and p.rank != rank:
            continue
        ranked.append(((*p.sort_key(), pk), pk, p))
    ranked.sort(key=lambda r: r[0])
    return ranked


@router.get("/recipients", response=Page[RecipientOut])
def list_recipients(
    request: HttpRequest,
    limit: int = 50,
    cursor: CursorParam = None,
    category: CategoryCode | None = None,
    priority_rank: Annotated[int | None, Query(alias="priority", ge=1, le=4)] = None,
    org_id: PathId | None = None,
    status: MemberStatus | None = None,
) -> dict[str, Any]:
    """对象清单: recipients of the caller's subtree, served-first order (staff and operators).
    `priority` filters by rank (1..4). Members who have left are listed only with `status=left`."""
    user = caller(request)
    qs = visible_recipients(user)
    if org_id:
        org = access_org(user, org_id)
        qs = qs.filter(home_org__path__startswith=org.path)
    qs = qs.filter(status=status) if status else qs.exclude(status="left")
    if not 1 <= limit <= 200:
        raise Invalid(_("每页条数应在 1 到 200 之间。"), fields={"limit": "out_of_range"})
    ranked = ranked_recipients(qs, clock.localdate(), category=category, rank=priority_rank)
    if cursor:
        after = decode_key(cursor, 4)
        ranked = [r for r in ranked if r[0] > after]
    page = ranked[:limit]
    members = Member.objects.select_related("home_org").in_bulk([pk for _key, pk, _p in page])
    open_needs = dict(
        Need.objects.filter(recipient_id__in=members, status__in=OPEN_STATUSES)
        .values("recipient_id")
        .annotate(n=Count("pk"))
        .values_list("recipient_id", "n")
    )
    items = []
    for _key, pk, p in page:
        m = members[pk]
        items.append(
            {
                "id": m.pk,
                "name": m.name,
                # A register is a list: phones stay masked (the member's page shows the full number).
                "phone": mask_phone(m.phone),
                "gender": m.gender,
                "birth_date": m.birth_date,
                "age": p.age,
                "home_org_id": m.home_org_id,
                "home_org_name": m.home_org.name,
                "status": m.status,
                "recipient_categories": m.recipient_categories,
                "priority": p.as_dict(),
                "open_needs": open_needs.get(m.pk, 0),
            }
        )
    more = len(ranked) > limit
    return {"items": items, "next_cursor": encode_key(page[-1][0]) if more and page else None}


# ---- 需求清单 -----------------------------------------------------------------------------------------


def _need_qs() -> Any:
    return Need.objects.select_related("recipient", "created_by").prefetch_related(
        "items", Prefetch("orders", queryset=Order.objects.only("pk").order_by("pk"))
    )


def _detail(need: Need) -> Need:
    return _need_qs().get(pk=need.pk)  # NeedDetailOut reads it, and its follow-ups


@router.get("/needs", response=Page[NeedOut])
def list_needs(
    request: HttpRequest,
    limit: int = 50,
    cursor: CursorParam = None,
    status: StatusCode | None = None,
    open: bool = False,
    level: LevelCode | None = None,
    found_by: FoundByCode | None = None,
    recipient_id: PathId | None = None,
    org_id: PathId | None = None,
    without_orders: bool = False,
) -> dict[str, Any]:
    """需求清单 of the caller's subtree, newest first. `open=true`: open or in progress;
    `without_orders=true`: needs with no order placed for them (cancelled orders do not count)."""
    user = caller(request)
    qs = visible_needs(user)
    if status:
        qs = qs.filter(status=status)
    if open:
        qs = qs.filter(status__in=OPEN_STATUSES)
    if level:
        qs = qs.filter(level=level)
    if found_by:
        qs = qs.filter(found_by=found_by)
    if recipient_id:
        qs = qs.filter(recipient_id=recipient_id)
    if org_id:
        org = access_org(user, org_id)
        qs = qs.filter(recipient__home_org__path__startswith=org.path)
    if without_orders:
        # A cancelled order does not meet anything: its need is waiting again.
        placed = Need.orders.through.objects.filter(need_id=OuterRef("pk")).exclude(order__state=OrderState.CANCELLED)
        qs = qs.filter(~Exists(placed))
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    by_pk = _need_qs().in_bulk([n.pk for n in rows])
    return {"items": [by_pk[n.pk] for n in rows], "next_cursor": nxt}  # NeedOut reads each


@router.post("/needs", response={201: NeedDetailOut})
def create_need(request: HttpRequest, payload: NeedIn) -> Status[Need]:
    """Open a need for a recipient: staff and hotline operators of the recipient's home subtree."""
    user = caller(request)
    recipient = access_recipient_for_need(user, payload.recipient_id)
    need = actions.do_create_need(
        user,
        recipient=recipient,
        level=payload.level,
        found_by=payload.found_by,
        item_ids=payload.item_ids,
        notes=payload.notes,
    )
    return Status(201, _detail(need))


@router.get("/needs/{need_id}", response=NeedDetailOut)
def get_need(request: HttpRequest, need_id: PathId) -> Need:
    return _detail(access_need(caller(request), need_id))


@router.patch("/needs/{need_id}", response=NeedDetailOut)
def patch_need(request: HttpRequest, need_id: PathId, payload: NeedPatch) -> Need:
    """Edit the level, items or notes, or move the status on (in_progress, met): staff of the subtree."""
    user = caller(request)
    need = access_need(user, need_id, manage=True)
    data = payload.dict(exclude_unset=True)
    for name, value in data.items():
        if value is None:
            raise Invalid(_("这一项不能为空。"), fields={name: "null"})
    need = actions.do_update_need(
        user,
        need,
        level=data.get("level"),
        item_ids=data.get("item_ids"),
        notes=data.get("notes"),
        status=data.get("status"),
    )
    return _detail(need)


@router.post("/needs/{need_id}/follow-ups", response={201: NeedDetailOut})
def add_follow_up(request: HttpRequest, need_id: PathId, payload: FollowUpIn) -> Status[Need]:
    """A dated follow-up note; with `status` the need moves on (in_progress, met). Staff of the subtree."""
    user = caller(request)
    need = access_need(user, need_id, manage=True)
    actions.do_add_follow_up(user, need, note=payload.note, status=payload.status)
    return Status(201, _detail(need))


@router.post("/needs/{need_id}/close", response=NeedDetailOut)
def close_need(request: HttpRequest, need_id: PathId, payload: CloseIn) -> Need:
    """Close a need that will not be met, with a reason. A met or closed need is 409."""
    user = caller(request)
    need = access_need(user, need_id, manage=True)
    return _detail(actions.do_close_need(user, need, reason=payload.reason))


@router.post("/needs/{need_id}/orders", response=NeedDetailOut)
def link_order(request: HttpRequest, need_id: PathId, payload: LinkOrderIn) -> Need:
    """Link an order placed for this need (staff and operators, who place orders); an open need goes
    in progress. Linking the same order again changes nothing."""
    user = caller(request)
    need = access_need(user, need_id)
    order, _roles = access_order(user, payload.order_id, "dispatch")
    return _detail(actions.do_link_order(user, need, order))


# ---- 人口普查导入 -------------------------------------------------------------------------------------


RowFilter = Literal["all", "accepted", "rejected", "written", "failed"]


def import_out(imp: CensusImport, rows: RowFilter = "all", *, with_rows: bool = True) -> dict[str, Any]:
    report = imp.report or {}
    wanted = [r for r in report.get("rows", []) if rows == "all" or r["status"] == rows] if with_rows else []
    return {
        "id": imp.pk,
        "org_id": imp.org_id,
        "filename": imp.filename,
        "status": imp.status,
        "processed_rows": imp.progress,
        "counts": report.get("counts", {"rows": 0, "accepted": 0, "rejected": 0, "empty_rows": 0}),
        "columns": report.get("columns", {}),
        "ignored_columns": report.get("ignored_columns", []),
        "rows": census.render_rows(wanted),
        "created_by": person_name(imp.created_by),
        "created_at": imp.created_at,
        "confirmed_at": imp.confirmed_at,
    }


@router.post("/census-imports", response={201: CensusImportOut})
def upload_census(
    request: HttpRequest,
    file: Annotated[UploadedFile, File(description=".xlsx or .csv (UTF-8 with or without BOM, or GBK), at most 5 MB")],
    org_id: Annotated[
        int | None, Form(ge=1, le=MAX_ID, description="import into this org's subtree (default: your own org)")
    ] = None,
) -> Status[dict[str, Any]]:
    """人口普查导入, step one: upload a file (multipart, field `file`) and get the dry-run report. Nothing is
    written until `confirm`. Columns: 姓名 name, 身份证号 id_number, 性别 gender, 出生日期 birth_date, 电话 phone,
    住址 address, 社区 community, 类别 categories, 需求 need. At most 20,000 rows."""
    user = caller(request)
    org = census_scope(user, org_id)
    if file.size is not None and file.size > census.MAX_FILE_BYTES:
        raise Invalid(
            _("文件太大，最大 5 MB。"),
            code="file_too_large",
            fields={"file": "file_too_large", "max_bytes": census.MAX_FILE_BYTES},
        )
    data = file.read(census.MAX_FILE_BYTES + 1)
    filename = file.name or ""
    checked = census.check_table(org, census.read_table(filename, data))
    imp = actions.do_create_census_import(user, org=org, filename=filename, checked=checked)
    return Status(201, import_out(imp))


@router.get("/census-imports", response=Page[CensusImportOut])
def list_census_imports(request: HttpRequest, limit: int = 50, cursor: CursorParam = None) -> dict[str, Any]:
    """Imports of the caller's subtree, newest first (rows are left out: read one import to see them)."""
    user = caller(request)
    scope = census_list_scope(user)
    qs = CensusImport.objects.select_related("created_by")
    if scope is not None:
        qs = qs.filter(org__path__startswith=scope.path)
    rows, nxt = paginate(qs, limit, cursor, newest_first=True)
    return {"items": [import_out(i, with_rows=False) for i in rows], "next_cursor": nxt}


@router.get("/census-imports/{import_id}", response=CensusImportOut)
def get_census_import(request: HttpRequest, import_id: PathId, rows: RowFilter = "all") -> dict[str, Any]:
    return import_out(access_census_import(caller(request), import_id), rows)


@router.post("/census-imports/{import_id}/confirm", response=CensusImportOut)
def confirm_census_import(request: HttpRequest, import_id: PathId) -> dict[str, Any]:
    """人口普查导入, step two: write the accepted rows as recipients (each row checked again; a row that now
    fails is reported and the others are written). Rows are committed in batches of 500: if the request is
    cut off, confirming again resumes after the last committed batch. Once confirmed, confirming again
    writes nothing more."""
    user = caller(request)
    imp = access_census_import(user, import_id)
    imp = actions.do_confirm_census_import(user, imp)
    fresh = CensusImport.objects.select_related("created_by").filter(pk=imp.pk).first()
    if fresh is None:
        raise NotFound(_("找不到该导入记录。"), code="import_not_found")
    return import_out(fresh)


# ---- 工作交接 ------------------------------------------------------------------------------------------------
# Beside the hand-over page (needs/views_handover.py): the same access function (`access_hand_over`), the same
# lists and the same action. The routes live here, not with the staff logins, because the work they move sits
# above the org tree (timebank/layers.py).

OPEN_WORK_SHOWN = 200  # as many as the page lists


@router.get("/staff/{staff_id}/open-work", response=StaffOpenWorkOut, tags=["staff"])
def staff_open_work(request: HttpRequest, staff_id: PathId) -> dict[str, Any]:
    """A staff login's open work, as its hand-over page lists it: the open orders it dispatched last (or was handed)
    and the open needs it follows, and the logins that may take them over. Admins of the login's subtree (never
    of a higher role, never their own login), as for the login's other changes. Only the work the caller may see
    is listed and counted; work outside the caller's subtree (a login moved between orgs may still follow some) is
    counted in `orders_out_of_reach` / `needs_out_of_reach`, never shown."""
    user = caller(request)
    source, _target = access_hand_over(user, staff_id)
    work = open_work(user, source)
    orders, needs = work.orders, work.needs
    return {
        "staff_id": source.pk,
        "orders": [
            {
                "id": o.pk,
                "state": o.state,
                "org_id": o.org_id,
                "service_item": o.service_item.name,
                "scheduled_start": o.scheduled_start,
            }
            for o in orders[:OPEN_WORK_SHOWN]
        ],
        "needs": [
            {
                "id": n.pk,
                "status": n.status,
                "level": n.level,
                "recipient_id": n.recipient_id,
                "home_org_id": n.recipient.home_org_id,
            }
            for n in needs[:OPEN_WORK_SHOWN]
        ],
        "order_count": orders.count(),
        "need_count": needs.count(),
        "orders_out_of_reach": work.orders_out_of_reach,
        "needs_out_of_reach": work.needs_out_of_reach,
        "targets": [
            {"id": t.pk, "username": t.username, "name": t.display_name, "org_id": t.org_id, "role": t.role}
            for t in handover_targets(user, source)[:500]
        ],
    }


@router.post("/staff/{staff_id}/handover", response=HandoverOut, tags=["staff"])
def hand_over_staff_work(request: HttpRequest, staff_id: PathId, payload: HandoverIn) -> dict[str, Any]:
    """工作交接: every open order and need the login follows is followed by `to_staff_id` from now on, all or nothing
    (409 out_of_reach when the receiver cannot reach one of them). The receiver: an active login of the caller's
    subtree that follows work (staff, operators, admins), not the departing one. A repeat moves what is left
    (nothing); under an Idempotency-Key (or the body's `idempotency_key`) it answers the first answer."""
    user = caller(request)
    source, target = access_hand_over(user, staff_id, payload.to_staff_id)
    assert target is not None
    moved = actions.do_hand_over(user, source, target)
    return {"from_staff_id": source.pk, "to_staff_id": target.pk, **moved}
