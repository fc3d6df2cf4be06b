"""The needs register (需求清单) and census imports (人口普查导入): every write goes through here."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.catalogue.models import ServiceItem
from timebank.lib import clock, crypto
from timebank.lib.errors import ApiError, Conflict, Invalid
from timebank.members.actions import MemberInput, do_register_member
from timebank.members.models import Member, MemberStatus
from timebank.needs.census import Checked, Progress
from timebank.needs.handover import FOLLOWING_ROLES, open_needs, open_orders
from timebank.needs.models import (
    NEED_TRANSITIONS,
    CensusImport,
    CensusImportStatus,
    FoundBy,
    Need,
    NeedFollowUp,
    NeedLevel,
    NeedStatus,
    WorkOwner,
)
from timebank.orders.models import Order, OrderState
from timebank.orgs.access import has_role
from timebank.orgs.models import MANAGING_ROLES, Org, User

MAX_ITEMS = 20
CONFIRM_BATCH = 500


def _note(text: str, field: str, *, required: bool) -> str:
    text = text.strip()
    if required and not text:
        raise Invalid(_("请填写说明。"), fields={field: "required"})
    if len(text) > 500:
        raise Invalid(_("说明太长（500 字以内）。"), fields={field: "too_long"})
    if "\x00" in text:
        raise Invalid(_("说明含有无效字符。"), fields={field: "invalid"})
    return text


def _items(bank_id: int, item_ids: Iterable[int]) -> list[ServiceItem]:
    ids = sorted(set(item_ids))
    if len(ids) > MAX_ITEMS:
        raise Invalid(_("服务项目太多（最多 20 项）。"), fields={"item_ids": "too_many"})
    items = list(ServiceItem.objects.filter(pk__in=ids, head_office_id=bank_id))
    if len(items) != len(ids):
        raise Invalid(_("有服务项目不存在或属于另一家时间银行。"), fields={"item_ids": "unknown"})
    return items


def _lock(need: Need) -> Need:
    return Need.objects.select_for_update(of=("self",)).select_related("recipient").get(pk=need.pk)


def _require_open(need: Need) -> None:
    if need.status not in (NeedStatus.OPEN, NeedStatus.IN_PROGRESS):
        raise Conflict(_("这项需求已满足或已关闭。"), code="need_closed", fields={"status": need.status})


def _transition(actor: User | None, need: Need, to: str, note: str) -> list[str]:
    """Move the status and write the follow-up that records it; returns the changed fields."""
    if to not in NEED_TRANSITIONS[need.status]:
        raise Conflict(
            _("需求当前状态下不能这样变更。"), code="invalid_transition", fields={"status": need.status, "to": to}
        )
    NeedFollowUp.objects.create(
        need=need, note=note, from_status=need.status, to_status=to, created_by=actor if actor and actor.pk else None
    )
    need.status = to
    changed = ["status"]
    if to == NeedStatus.MET:
        need.met_at = clock.now()
        changed.append("met_at")
    elif to == NeedStatus.CLOSED:
        need.closed_at = clock.now()
        changed.append("closed_at")
    return changed


@transaction.atomic
def do_create_need(
    actor: User | None,
    *,
    recipient: Member,
    level: str,
    found_by: str,
    item_ids: Iterable[int] = (),
    notes: str = "",
    census_import: CensusImport | None = None,
) -> Need:
    if level not in NeedLevel.values:
        raise Invalid(_("需求等级只能是 general、special 或 essential。"), fields={"level": "invalid"})
    if found_by not in FoundBy.values:
        raise Invalid(_("未知的需求来源。"), fields={"found_by": "invalid"})
    notes = _note(notes, "notes", required=False)
    items = _items(recipient.bank_id, item_ids)
    if not recipient.is_recipient:
        raise Invalid(
            _("这位会员不是服务对象，请先把他登记为服务对象。"),
            code="not_a_recipient",
            fields={"recipient_id": "not_a_recipient"},
        )
    if recipient.status not in (MemberStatus.ACTIVE, MemberStatus.PENDING):
        raise Conflict(_("会员不是正常状态，不能办理。"), code="member_not_active")
    need = Need.objects.create(
        bank_id=recipient.bank_id,
        recipient=recipient,
        level=level,
        found_by=found_by,
        notes=notes,
        census_import=census_import,
        created_by=actor if actor and actor.pk else None,
    )
    if items:
        need.items.set(items)
    record(
        actor,
        "need.create",
        need,
        bank_id=need.bank_id,
        data={"recipient": recipient.pk, "level": level, "found_by": found_by, "items": [i.pk for i in items]},
    )
    return need


@transaction.atomic
def do_update_need(
    actor: User | None,
    need: Need,
    *,
    level: str | None = None,
    item_ids: Iterable[int] | None = None,
    notes: str | None = None,
    status: str | None = None,
) -> Need:
    need = _lock(need)
    _require_open(need)
    changed: list[str] = []
    if level is not None and level != need.level:
        if level not in NeedLevel.values:
            raise Invalid(_("需求等级只能是 general、special 或 essential。"), fields={"level": "invalid"})
        need.level = level
        changed.append("level")
    if notes is not None:
        need.notes = _note(notes, "notes", required=False)
        changed.append("notes")
    items = _items(need.bank_id, item_ids) if item_ids is not None else None
    if status is not None and status != need.status:
        if status == NeedStatus.CLOSED:
            raise Invalid(_("关闭需求请使用关闭操作并填写原因。"), fields={"status": "use_close"})
        changed += _transition(actor, need, status, "")
    if changed:
        need.save(update_fields=[*changed, "updated_at"])
    if items is not None:
        need.items.set(items)
        changed.append("items")
    record(
        actor,
        "need.update",
        need,
        bank_id=need.bank_id,
        data={"fields": sorted(set(changed)), "status": need.status, "level": need.level},
    )
    return need


@transaction.atomic
def do_add_follow_up(actor: User | None, need: Need, *, note: str, status: str | None = None) -> NeedFollowUp:
    """A dated note; with `status`, the need moves on too (in_progress or met)."""
    need = _lock(need)
    _require_open(need)
    note = _note(note, "note", required=True)
    if status is not None and status != need.status:
        if status == NeedStatus.CLOSED:
            raise Invalid(_("关闭需求请使用关闭操作并填写原因。"), fields={"status": "use_close"})
        changed = _transition(actor, need, status, note)
        need.save(update_fields=[*changed, "updated_at"])
        follow_up = NeedFollowUp.objects.filter(need=need).latest("pk")
    else:
        follow_up = NeedFollowUp.objects.create(
            need=need,
            note=note,
            from_status=need.status,
            to_status=need.status,
            created_by=actor if actor and actor.pk else None,
        )
        need.save(update_fields=["updated_at"])
    record(actor, "need.follow_up", need, bank_id=need.bank_id, data={"status": need.status})
    return follow_up


@transaction.atomic
def do_close_need(actor: User | None, need: Need, *, reason: str) -> Need:
    need = _lock(need)
    reason = _note(reason, "reason", required=True)
    _require_open(need)
    changed = _transition(actor, need, NeedStatus.CLOSED, reason)
    need.close_reason = reason
    need.save(update_fields=[*changed, "close_reason", "updated_at"])
    record(actor, "need.close", need, bank_id=need.bank_id, data={"reason": reason[:200]})
    return need


@transaction.atomic
def do_link_order(actor: User | None, need: Need, order: Order) -> Need:
    """An order placed to meet the need: an open need is now being followed up. Linking twice changes nothing."""
    need = _lock(need)
    if order.recipient_id != need.recipient_id:
        raise Invalid(_("订单的服务对象与需求不一致。"), fields={"order_id": "other_recipient"})
    if need.orders.filter(pk=order.pk).exists():
        return need
    if order.state == OrderState.CANCELLED:
        raise Conflict(_("这个订单已取消。"), code="order_cancelled")
    _require_open(need)
    need.orders.add(order)
    changed: list[str] = []
    if need.status == NeedStatus.OPEN:
        changed = _transition(actor, need, NeedStatus.IN_PROGRESS, f"订单 #{order.pk}")
    need.save(update_fields=[*changed, "updated_at"])
    record(actor, "need.link_order", need, bank_id=need.bank_id, data={"order": order.pk})
    return need


# ---- census imports -----------------------------------------------------------------------------------


@transaction.atomic
def do_create_census_import(actor: User | None, *, org: Org, filename: str, checked: Checked) -> CensusImport:
    """Keep a checked file as a dry run. Members are written only on confirmation."""
    assert org.head_office_id is not None
    imp = CensusImport.objects.create(
        bank_id=org.head_office_id,
        org=org,
        filename=filename.replace("\x00", "")[:200],
        rows_encrypted=crypto.encrypt(json.dumps(checked.accepted, ensure_ascii=False)) if checked.accepted else "",
        report=checked.report,
        created_by=actor if actor and actor.pk else None,
    )
    record(actor, "census_import.upload", imp, bank_id=imp.bank_id, data={"org": org.pk, **checked.report["counts"]})
    return imp


def do_confirm_census_import(actor: User | None, imp: CensusImport, progress: Progress | None = None) -> CensusImport:
    """Write the accepted rows as recipients (and their census needs). Idempotent: a confirmed import writes
    nothing more. Rows are written in batches, each committed with its progress: a large file does not hold
    the bank's audit chain for minutes, and an interrupted confirmation resumes where it stopped."""
    rows: list[dict[str, Any]] = json.loads(crypto.decrypt(imp.rows_encrypted)) if imp.rows_encrypted else []
    while True:
        current, finished = _confirm_batch(actor, imp.pk, rows)
        if progress is not None:
            progress(current.progress, len(rows))
        if finished:
            return current


@transaction.atomic
def _confirm_batch(actor: User | None, import_id: int, rows: list[dict[str, Any]]) -> tuple[CensusImport, bool]:
    imp = CensusImport.objects.select_for_update(of=("self",)).select_related("org").get(pk=import_id)
    if imp.status == CensusImportStatus.CONFIRMED:
        return imp, True
    start = imp.progress
    batch = rows[start : start + CONFIRM_BATCH]
    results = {r["row"]: r for r in imp.report.get("rows", [])}
    orgs = {
        o.pk: o for o in Org.objects.filter(path__startswith=imp.org.path, pk__in={r["community_id"] for r in batch})
    }
    for data in batch:
        result = results.get(data["row"])
        if result is not None:
            result.update(_write_row(actor, imp, data, orgs.get(data["community_id"]), result))
    imp.progress = start + len(batch)
    finished = imp.progress >= len(rows)
    counts = imp.report.setdefault("counts", {})
    counts["written"] = sum(1 for r in results.values() if r["status"] == "written")
    counts["failed"] = sum(1 for r in results.values() if r["status"] == "failed")
    fields = ["progress", "report", "status"]
    if finished:
        imp.status = CensusImportStatus.CONFIRMED
        imp.confirmed_at = clock.now()
        imp.confirmed_by = actor if actor and actor.pk else None
        # The ID numbers now live (encrypted) on the members; the import need not keep a second copy.
        imp.rows_encrypted = ""
        fields += ["confirmed_at", "confirmed_by", "rows_encrypted"]
    else:
        imp.status = CensusImportStatus.CONFIRMING
    imp.save(update_fields=fields)
    record(
        actor,
        "census_import.confirm",
        imp,
        bank_id=imp.bank_id,
        data={"from": start, "to": imp.progress, "finished": finished, **counts},
    )
    return imp, finished


def _write_row(
    actor: User | None, imp: CensusImport, data: dict[str, Any], community: Org | None, result: dict[str, Any]
) -> dict[str, Any]:
    """Validate the row again (the bank may have changed since the dry run) and write it in its own savepoint."""
    if community is None:
        return {
            "status": "failed",
            "reasons": [{"code": "unknown_community", "params": {"community": result["community"]}}],
        }
    if actor is not None and not has_role(actor, MANAGING_ROLES, community):
        return {"status": "failed", "reasons": [{"code": "outside_subtree"}]}
    birth = dt.date.fromisoformat(data["birth_date"]) if data.get("birth_date") else None
    member_input = MemberInput(
        name=data["name"],
        id_number=data["id_number"],
        gender=data["gender"] or None,
        birth_date=birth,
        phone=data["phone"] or None,
        address=data["address"] or None,
        roles=["recipient"],
        recipient_categories=data["categories"],
    )
    try:
        with transaction.atomic():
            member = do_register_member(actor, home_org=community, data=member_input, approved=True)
            need = None
            if data.get("need"):
                need = do_create_need(
                    actor,
                    recipient=member,
                    level=NeedLevel.GENERAL,
                    found_by=FoundBy.CENSUS,
                    notes=data["need"],
                    census_import=imp,
                )
    except ApiError as exc:
        code = "duplicate_in_bank" if exc.code == "duplicate_id_number" else exc.code
        return {"status": "failed", "reasons": [{"code": code, "message": str(exc.message)}]}
    except IntegrityError:
        return {"status": "failed", "reasons": [{"code": "write_failed"}]}
    return {"status": "written", "member_id": member.pk, "need_id": need.pk if need else None}


@transaction.atomic
def do_hand_over(actor: User | None, source: User, target: User) -> dict[str, list[int]]:
    """工作交接: every open order and need `source` follows (timebank/needs/handover.py) is followed by `target`
    from now on. All or nothing: when `target` cannot reach one of them (its org is outside the target's
    subtree), nothing changes (409 out_of_reach). One audit entry lists what moved."""
    # One hand-over of a login at a time: a second, concurrent one waits and then finds what is left.
    User.objects.select_for_update().filter(pk=source.pk).first()
    # Rows locked in key order, as the other writers of orders (the paper sheet, the order actions) lock them.
    orders = list(open_orders(source).order_by("pk").select_for_update(of=("self",)))
    needs = list(open_needs(source).order_by("pk").select_for_update(of=("self",)))
    away = [o.pk for o in orders if not has_role(target, FOLLOWING_ROLES, o.org)]
    away += [n.pk for n in needs if not has_role(target, FOLLOWING_ROLES, n.recipient.home_org)]
    if away:
        raise Conflict(
            _("接手的工作人员管不到其中 %(n)s 项工作（不在其机构范围内），没有交接任何工作。") % {"n": len(away)},
            code="out_of_reach",
            fields={"to_staff_id": "out_of_reach"},
        )
    if not orders and not needs:
        return {"order_ids": [], "need_ids": []}  # nothing (left) to hand over: nothing happened, nothing to audit
    now = clock.now()
    by = actor if actor and actor.pk else None
    for order in orders:
        WorkOwner.objects.update_or_create(
            order=order, defaults={"staff": target, "handed_over_by": by, "handed_over_at": now}
        )
    for need in needs:
        WorkOwner.objects.update_or_create(
            need=need, defaults={"staff": target, "handed_over_by": by, "handed_over_at": now}
        )
    moved = {"order_ids": [o.pk for o in orders], "need_ids": [n.pk for n in needs]}
    assert source.org is not None
    record(
        actor,
        "staff.hand_over",
        source,
        bank_id=source.org.head_office_id or source.org.pk,
        data={"from_staff_id": source.pk, "to_staff_id": target.pk, **moved},
    )
    return moved
