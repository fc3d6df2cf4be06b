"""Moving home across nodes (跨城迁移, issue 16), mirroring the inter-bank move of one deployment
(ledger/interbank.py) over the signed inbox of federation/actions.py.

1. The member (or staff of their home subtree) asks on the sending node: `do_request_move` debits every bucket into
   the bank's clearing account for the peer and keeps what travels (`snapshot`); `deliver_request` posts it to the
   peer's inbox as a signed `move_request`. The member stays `active` until the outcome.
2. The receiving node keeps it as an incoming move (`receive`, once per `move_id`) for its head office.
3. Its head office approves (`do_approve_move`): the member is created in the chosen community, credited from the
   clearing account for the sender, with certificates, insurance policies, consents and the lifetime credited
   minutes by category (star levels count them: evaluation/stars.py). Or rejects (`do_reject_move`).
4. The receiving node tells the sender (`notify`, a signed `move_outcome`): the sender marks the member `left` with
   where they went, or gives the minutes back. Both steps are once per move whatever is re-delivered.

The ID number never travels. What travels is `id_number_hash`: HMAC-SHA256 under FEDERATION_ID_HASH_KEY, a secret
the nodes of one federation share (kept with the other secrets, never in the database). Not FIELD_HASH_KEY: each
node's own key makes its hashes comparable only inside that node. Not a plain hash: an ID number has so little
entropy (region, birth date, a sequence) that anyone who saw a plain hash could find the number. The receiver
checks it against its own members by computing the same HMAC from their encrypted numbers. The member's consent
to share it (`consent_share_id_number`) is required; a move without it is refused and nothing changes."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.federation.actions import INBOX, Replayed, Unreachable, note_nonce, signed_request
from timebank.federation.models import Direction, FederatedMove, MoveState, Peer
from timebank.ledger.actions import member_account_ids, open_member_accounts
from timebank.ledger.models import MEMBER_BUCKETS, AccountKind, TransactionKind
from timebank.ledger.posting import MAX_MINUTES, lock_accounts, post
from timebank.lib import clock, crypto
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import (
    Certificate,
    Consent,
    ConsentScope,
    Gender,
    InsurancePolicy,
    Member,
    MemberStatus,
)
from timebank.orders.models import Order, ServiceRecord
from timebank.orgs.models import Org, User

logger = logging.getLogger(__name__)

COPIED = ("name", "phone", "gender", "is_volunteer", "is_recipient", "recipient_categories", "skills", "occupation")
BUCKET_FIELDS = {
    AccountKind.EARNED: "earned_minutes",
    AccountKind.GOODS: "goods_minutes",
    AccountKind.RESERVE: "reserve_minutes",
}


def id_number_hash(number: str) -> str:
    """The ID number as it travels between nodes (see the module's docstring)."""
    key = settings.FEDERATION_ID_HASH_KEY
    if not key:
        raise Conflict(_("本节点没有配置跨节点身份证号校验密钥。"), code="id_hash_not_configured")
    return hmac.new(key.encode(), f"id_number\x00{number.strip().upper()}".encode(), hashlib.sha256).hexdigest()


def lifetime_minutes_by_category(member: Member) -> dict[str, int]:
    """Credited service minutes (orders and service records, nothing reversed), by category, plus any carried in."""
    totals: dict[str, int] = {}
    orders = Order.objects.filter(volunteer=member, transaction__isnull=False, transaction__reversed_by__isnull=True)
    records = ServiceRecord.objects.filter(volunteer=member, transaction__reversed_by__isnull=True)
    for qs in (orders, records):
        rows = qs.order_by().values("service_item__category").annotate(m=Sum("credited_minutes"))
        for row in rows:
            cat = str(row["service_item__category"])
            totals[cat] = totals.get(cat, 0) + int(row["m"] or 0)
    for move in FederatedMove.objects.filter(member=member, direction=Direction.IN, state=MoveState.COMPLETED):
        for cat, minutes in (move.snapshot.get("lifetime_minutes") or {}).items():
            totals[cat] = totals.get(cat, 0) + int(minutes)
    return totals


def _snapshot(member: Member, amounts: dict[str, int], consent: bool) -> dict[str, Any]:
    number = crypto.decrypt(member.id_number_encrypted) if member.id_number_encrypted else ""
    consents: dict[str, bool] = {}
    for c in Consent.objects.filter(member=member).order_by("created_at", "pk"):
        consents[c.scope] = c.granted
    return {
        "member": {f: getattr(member, f) for f in COPIED}
        | {"birth_date": member.birth_date.isoformat() if member.birth_date else None},
        "id_number_hash": id_number_hash(number) if number else "",
        "consent_share_id_number": consent,
        "buckets": amounts,
        "lifetime_minutes": lifetime_minutes_by_category(member),
        "certificates": [
            {
                "kind": c.kind,
                "issuer": c.issuer,
                "valid_from": c.valid_from.isoformat() if c.valid_from else None,
                "valid_until": c.valid_until.isoformat() if c.valid_until else None,
            }
            for c in member.certificates.order_by("pk")
        ],
        "insurance": [
            {
                "insurer": p.insurer,
                "policy_number": p.policy_number,
                "starts_on": p.starts_on.isoformat(),
                "ends_on": p.ends_on.isoformat(),
            }
            for p in member.insurance_policies.order_by("pk")
        ],
        "consents": consents,
    }


# ---- the sending node ----------------------------------------------------------------------------------------


@transaction.atomic
def do_request_move(
    actor: User | None, *, member: Member, peer: Peer, to_org: str, consent_share_id_number: bool, reason: str = ""
) -> FederatedMove:
    """Ask to move `member` to the community `to_org` (its id on the peer). Debits every bucket into the clearing
    account for the peer; the caller then `deliver_request`s it."""
    if consent_share_id_number is not True:
        raise Invalid(_("需要会员同意向对方节点提供身份证号的校验值。"), fields={"consent_share_id_number": "required"})
    to_org = str(to_org).strip()
    if not (to_org.isascii() and to_org.isdigit()) or len(to_org) > 18:
        raise Invalid(_("请填写对方节点的社区编号。"), fields={"to_org_id": "invalid"})
    if len(reason) > 500:
        raise Invalid(_("备注太长。"), fields={"reason": "too_long"})
    if member.bank_id != peer.bank_id:
        raise Invalid(_("这个对接节点不属于您的时间银行。"), fields={"peer_id": "other_bank"})
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status != MemberStatus.ACTIVE:
        raise Conflict(_("会员不是正常状态，不能办理。"), code="member_not_active")
    if FederatedMove.objects.filter(member=member, direction=Direction.OUT, state=MoveState.REQUESTED).exists():
        raise Conflict(_("这位会员已有一个待审批的跨节点迁移。"), code="move_pending")
    ids = member_account_ids(member.pk)
    locked = lock_accounts([*ids.values(), peer.clearing_account_id])
    amounts = {str(k): locked[ids[k]].balance_minutes for k in MEMBER_BUCKETS}
    move_id = uuid.uuid4()
    snapshot = _snapshot(member, amounts, True)
    if any(v < 0 for v in amounts.values()):
        # The receiving node takes no debt (it refuses a negative bucket): settle it here first.
        raise Conflict(_("会员有负数余额，不能迁出。"), code="negative_balance")
    tx = None
    total = sum(amounts.values())
    if _past_limit(peer, locked[peer.clearing_account_id].balance_minutes + total):
        raise _limit_error(peer, locked[peer.clearing_account_id].balance_minutes)
    if any(amounts.values()):
        tx = post(
            bank_id=member.bank_id,
            kind=TransactionKind.TRANSFER,
            actor=actor,
            memo=f"跨节点迁移 {move_id}",
            legs=[
                *((locked[ids[k]], -amounts[str(k)]) for k in MEMBER_BUCKETS),
                (locked[peer.clearing_account_id], total),
            ],
        )
    try:
        with transaction.atomic():
            move = FederatedMove.objects.create(
                move_id=move_id,
                direction=Direction.OUT,
                peer=peer,
                member=member,
                remote_org=to_org,
                reason=reason.strip(),
                snapshot=snapshot,
                transaction=tx,
                requested_by=actor if actor is not None and actor.pk else None,
                **{BUCKET_FIELDS[k]: amounts[str(k)] for k in MEMBER_BUCKETS},
            )
    except IntegrityError:
        raise Conflict(_("这位会员已有一个待审批的跨节点迁移。"), code="move_pending") from None
    record(
        actor,
        "federation.move_request",
        move,
        bank_id=member.bank_id,
        data={"move_id": str(move_id), "peer": peer.node_id, "member": member.pk, "to_org": to_org, "minutes": total},
    )
    return move


def request_message(move: FederatedMove) -> dict[str, Any]:
    return {
        "type": "move_request",
        "uuid": str(move.move_id),
        "member_id": str(move.member_id),
        "to_org": move.remote_org,
        "snapshot": move.snapshot,
    }


def deliver_request(move: FederatedMove) -> FederatedMove:
    """Post the request to the peer's inbox (never inside a transaction). A refusal there gives the minutes back;
    an unreachable peer leaves it for `sync_moves`."""
    if move.direction != Direction.OUT or move.state != MoveState.REQUESTED or move.notified_at is not None:
        return move
    body = json.dumps(request_message(move), separators=(",", ":")).encode()
    try:
        answer = signed_request(move.peer, "POST", INBOX, body)
    except Unreachable as exc:
        logger.warning("federation: move %s not delivered (%s)", move.move_id, exc)
        return move
    if answer.get("uuid") != str(move.move_id):
        return move
    if answer.get("state") == MoveState.REFUSED:
        return apply_outcome(move.peer, {"uuid": str(move.move_id), "state": "refused", "reason": answer.get("reason")})
    FederatedMove.objects.filter(pk=move.pk, notified_at__isnull=True).update(notified_at=clock.now())
    return FederatedMove.objects.get(pk=move.pk)


@transaction.atomic
def apply_outcome(peer: Peer, msg: dict[str, Any]) -> FederatedMove:
    """The receiving node's decision, applied once: `completed` marks the member `left` with where they went;
    `refused` gives the minutes back."""
    move = (
        FederatedMove.objects.select_for_update(of=("self",))
        .select_related("member", "transaction")
        .filter(move_id=uuid.UUID(str(msg.get("uuid"))), direction=Direction.OUT, peer=peer)
        .first()
    )
    if move is None:
        raise Conflict(_("找不到这个跨节点迁移。"), code="move_not_found")
    if move.state != MoveState.REQUESTED:
        return move
    now = clock.now()
    assert move.member_id is not None
    member = Member.objects.select_for_update().get(pk=move.member_id)
    if msg.get("state") == MoveState.COMPLETED:
        remote = str(msg.get("member_id") or "")[:64]
        move.remote_member = remote
        member.status = MemberStatus.LEFT
        member.user = None
        member.save(update_fields=["status", "user", "updated_at"])
    elif msg.get("state") == MoveState.REFUSED:
        if move.transaction is not None:
            legs = list(move.transaction.legs.values_list("account_id", "minutes"))
            accounts = lock_accounts([a for a, _m in legs])
            post(
                bank_id=member.bank_id,
                kind=TransactionKind.TRANSFER,
                legs=[(accounts[a], -m) for a, m in legs],
                actor=None,
                memo=f"跨节点迁移退回 {move.move_id}",
            )
        move.reason = str(msg.get("reason") or "refused")[:200]
    else:
        raise Invalid(_("消息格式错误。"), fields={"state": "invalid"})
    move.state = str(msg["state"])
    move.completed_at = now
    move.notified_at = move.notified_at or now
    move.save(update_fields=["state", "reason", "remote_member", "completed_at", "notified_at"])
    record(
        None,
        f"federation.move_{move.state}",
        move,
        bank_id=member.bank_id,
        data={"move_id": str(move.move_id), "peer": peer.node_id, "remote_member": move.remote_member},
    )
    return move


def where_went(move: FederatedMove) -> dict[str, Any]:
    return {
        "peer_id": move.peer_id,
        "node_id": move.peer.node_id,
        "to_org": move.remote_org,
        "member_id": move.remote_member,
    }


# ---- the receiving node --------------------------------------------------------------------------------------


def _bad(field: str) -> Invalid:
    return Invalid(_("消息格式错误。"), fields={field: "invalid"})


def _text(value: object, limit: int, *, required: bool = False) -> bool:
    return isinstance(value, str) and len(value) <= limit and (bool(value.strip()) or not required)


def _iso_date(value: object, *, required: bool = False) -> bool:
    if value is None:
        return not required
    if not isinstance(value, str) or len(value) > 10:
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _minutes(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= MAX_MINUTES


def _check_request(msg: dict[str, Any]) -> dict[str, Any]:
    """The snapshot of a peer's `move_request`, checked whole on arrival (a bad one is refused here, 422, never an
    error at approval): every bucket and lifetime figure 0..MAX_MINUTES, the member's fields as the model keeps
    them, certificates and insurance policies as lists of objects with real dates, consents an object."""
    snap = msg.get("snapshot")
    if (
        not isinstance(snap, dict)
        or not isinstance(snap.get("member"), dict)
        or not isinstance(snap.get("buckets"), dict)
    ):
        raise _bad("snapshot")
    if not all(_minutes(snap["buckets"].get(str(kind))) for kind in MEMBER_BUCKETS):
        raise _bad("buckets")
    if sum(snap["buckets"][str(kind)] for kind in MEMBER_BUCKETS) > MAX_MINUTES:
        raise _bad("buckets")
    m = snap["member"]
    if not _text(m.get("name"), 50, required=True):
        raise _bad("name")
    for f, limit in (("phone", 20), ("gender", 6), ("occupation", 100)):
        if m.get(f) is not None and not _text(m[f], limit):
            raise _bad(f)
    if m.get("gender") and m["gender"] not in Gender.values:
        raise _bad("gender")
    for f in ("is_volunteer", "is_recipient"):
        if m.get(f) is not None and not isinstance(m[f], bool):
            raise _bad(f)
    for f in ("recipient_categories", "skills"):
        v = m.get(f)
        if v is not None and (not isinstance(v, list) or len(v) > 50 or not all(_text(x, 100) for x in v)):
            raise _bad(f)
    if not _iso_date(m.get("birth_date")):
        raise _bad("birth_date")
    lifetime = snap.get("lifetime_minutes") or {}
    if (
        not isinstance(lifetime, dict)
        or len(lifetime) > 50
        or not all(_text(k, 40) and _minutes(v) for k, v in lifetime.items())
    ):
        raise _bad("lifetime_minutes")
    certificates = snap.get("certificates") or []
    if not isinstance(certificates, list) or len(certificates) > 100:
        raise _bad("certificates")
    for c in certificates:
        if (
            not isinstance(c, dict)
            or not _text(c.get("kind"), 20, required=True)
            or (c.get("issuer") is not None and not _text(c["issuer"], 100))
            or not _iso_date(c.get("valid_from"))
            or not _iso_date(c.get("valid_until"))
        ):
            raise _bad("certificates")
    insurance = snap.get("insurance") or []
    if not isinstance(insurance, list) or len(insurance) > 100:
        raise _bad("insurance")
    for p in insurance:
        if (
            not isinstance(p, dict)
            or not _text(p.get("insurer"), 100, required=True)
            or not _text(p.get("policy_number"), 60, required=True)
            or not _iso_date(p.get("starts_on"), required=True)
            or not _iso_date(p.get("ends_on"), required=True)
        ):
            raise _bad("insurance")
    consents = snap.get("consents") or {}
    if not isinstance(consents, dict) or len(consents) > 50:
        raise _bad("consents")
    if not _text(snap.get("id_number_hash") or "", 128):
        raise _bad("id_number_hash")
    return snap


def receive(peer: Peer, nonce: str, message: dict[str, Any]) -> dict[str, Any]:
    """An inbox message about a move: a peer's `move_request` (kept once per `move_id`) or the outcome of ours."""
    try:
        key = uuid.UUID(str(message.get("uuid")))
    except ValueError:
        raise Invalid(_("消息格式错误。"), fields={"uuid": "invalid"}) from None
    with transaction.atomic():
        if not note_nonce(peer, nonce):
            raise Replayed
        if message.get("type") == "move_outcome":
            move = apply_outcome(peer, message)
            return {"uuid": str(key), "state": move.state, "reason": move.reason}
        if message.get("type") == "move_status":
            return _status(peer, key)
        if message.get("type") != "move_request":
            raise Invalid(_("无法识别的消息。"), fields={"type": "invalid"})
        existing = FederatedMove.objects.filter(move_id=key).first()
        if existing is None:
            snap = _check_request(message)
            try:
                with transaction.atomic():
                    existing = _keep_request(peer, key, message, snap)
            except IntegrityError:
                existing = FederatedMove.objects.filter(move_id=key).first()
                if existing is None:
                    raise
        if existing.peer_id != peer.pk or existing.direction != Direction.IN:
            raise Conflict(_("这个迁移编号已被使用。"), code="move_id_taken")
        return {"uuid": str(key), "state": existing.state, "reason": existing.reason}


def _status(peer: Peer, key: uuid.UUID) -> dict[str, Any]:
    """The sender asks how its request stands (it polls, so it learns the decision even when it cannot be reached).
    Answering a decision counts as telling it."""
    move = FederatedMove.objects.filter(move_id=key, peer=peer, direction=Direction.IN).first()
    if move is None:
        return {"uuid": str(key), "state": "unknown", "reason": "", "member_id": ""}
    if move.state != MoveState.REQUESTED and move.notified_at is None:
        FederatedMove.objects.filter(pk=move.pk, notified_at__isnull=True).update(notified_at=clock.now())
    return {"uuid": str(key), "state": move.state, "reason": move.reason, "member_id": str(move.member_id or "")}


def _keep_request(peer: Peer, key: uuid.UUID, msg: dict[str, Any], snap: dict[str, Any]) -> FederatedMove:
    to = str(msg.get("to_org") or "")
    digits = to.isascii() and to.isdigit() and len(to) <= 18
    org = Org.objects.filter(pk=int(to), path__startswith=peer.bank.path).first() if digits else None
    total = sum(int(snap["buckets"][str(k)]) for k in MEMBER_BUCKETS)
    reason = ""
    if org is None:
        reason = "unknown_org"
    elif _past_limit(peer, peer.clearing_account.balance_minutes - total):
        reason = "peer_limit"
    elif snap.get("id_number_hash") and snap.get("consent_share_id_number") is not True:
        reason = "no_consent"
    move = FederatedMove.objects.create(
        move_id=key,
        direction=Direction.IN,
        peer=peer,
        to_org=org,
        remote_org=to[:64],
        remote_member=str(msg.get("member_id") or "")[:64],
        state=MoveState.REFUSED if reason else MoveState.REQUESTED,
        reason=reason,
        snapshot=snap,
        # A refusal on arrival is answered right here: nothing to tell the sender later.
        notified_at=clock.now() if reason else None,
        **{BUCKET_FIELDS[k]: int(snap["buckets"][str(k)]) for k in MEMBER_BUCKETS},
    )
    record(None, "federation.move_received", move, bank_id=peer.bank_id, data={"move_id": str(key), "reason": reason})
    return move


def _duplicate(bank_id: int, wire_hash: str) -> bool:
    """Whether the receiving bank already has a member with this ID number (same HMAC from their own numbers)."""
    if not wire_hash:
        return False
    if (
        FederatedMove.objects.filter(
            direction=Direction.IN, state=MoveState.COMPLETED, peer__bank_id=bank_id, snapshot__id_number_hash=wire_hash
        )
        .exclude(member__status=MemberStatus.LEFT)
        .exists()
    ):
        return True
    numbers = Member.objects.filter(bank_id=bank_id).exclude(id_number_encrypted="").exclude(status=MemberStatus.LEFT)
    for encrypted in numbers.values_list("id_number_encrypted", flat=True).iterator(chunk_size=500):
        if hmac.compare_digest(id_number_hash(crypto.decrypt(encrypted)), wire_hash):
            return True
    return False


def _past_limit(peer: Peer, balance: int) -> bool:
    """Whether the clearing account for `peer` would end past its limit either way (as transfers: actions.py)."""
    return abs(balance) > peer.limit_minutes


def _limit_error(peer: Peer, balance: int) -> Conflict:
    return Conflict(
        _("超过了与这个节点的往来限额。"),
        code="peer_limit",
        fields={"available_minutes": max(peer.limit_minutes - abs(balance), 0)},
    )


def _date(value: object) -> dt.date | None:
    return dt.date.fromisoformat(str(value)) if value else None


@transaction.atomic
def do_approve_move(actor: User | None, move: FederatedMove) -> FederatedMove:
    """The receiving head office approves: the member arrives here, credited once from the clearing account for
    the sender. The caller then `notify`s the sender."""
    move = FederatedMove.objects.select_for_update(of=("self",)).select_related("peer", "to_org").get(pk=move.pk)
    if move.direction != Direction.IN or move.state != MoveState.REQUESTED or move.to_org is None:
        raise Conflict(_("这个跨节点迁移已经办结。"), code="move_closed")
    snap, peer = move.snapshot, move.peer
    if _duplicate(peer.bank_id, str(snap.get("id_number_hash") or "")):
        raise Conflict(_("本银行已有这个身份证号的会员。"), code="duplicate_id_number")
    amounts = {k: int(snap["buckets"][str(k)]) for k in MEMBER_BUCKETS}
    clearing = lock_accounts([peer.clearing_account_id])[peer.clearing_account_id]
    if _past_limit(peer, clearing.balance_minutes - sum(amounts.values())):
        raise _limit_error(peer, clearing.balance_minutes)
    fields = {f: snap["member"].get(f) for f in COPIED if snap["member"].get(f) is not None}
    member = Member.objects.create(
        bank_id=peer.bank_id,
        home_org=move.to_org,
        status=MemberStatus.ACTIVE,
        birth_date=_date(snap["member"].get("birth_date")),
        **fields,
    )
    open_member_accounts(member)
    ids = member_account_ids(member.pk)
    locked = lock_accounts([*ids.values(), peer.clearing_account_id])
    if any(amounts.values()):
        move.transaction = post(
            bank_id=peer.bank_id,
            kind=TransactionKind.TRANSFER,
            actor=actor,
            memo=f"跨节点迁入 {move.move_id}",
            legs=[
                *((locked[ids[k]], v) for k, v in amounts.items()),
                (locked[peer.clearing_account_id], -sum(amounts.values())),
            ],
        )
    for c in snap.get("certificates") or []:
        Certificate.objects.create(
            member=member,
            kind=str(c.get("kind"))[:20],
            issuer=str(c.get("issuer") or "")[:100],
            valid_from=_date(c.get("valid_from")),
            valid_until=_date(c.get("valid_until")),
        )
    for p in snap.get("insurance") or []:
        InsurancePolicy.objects.create(
            member=member,
            insurer=str(p.get("insurer"))[:100],
            policy_number=str(p.get("policy_number"))[:60],
            starts_on=dt.date.fromisoformat(str(p["starts_on"])),
            ends_on=dt.date.fromisoformat(str(p["ends_on"])),
        )
    scopes = set(ConsentScope.values)
    for scope, granted in (snap.get("consents") or {}).items():
        if scope in scopes and isinstance(granted, bool):
            Consent.objects.create(member=member, scope=scope, granted=granted, channel="peer")
    move.member = member
    move.carried_minutes = sum(int(v) for v in (snap.get("lifetime_minutes") or {}).values())
    move.state = MoveState.COMPLETED
    move.decided_by = actor if actor is not None and actor.pk else None
    move.completed_at = clock.now()
    move.save(update_fields=["member", "carried_minutes", "transaction", "state", "decided_by", "completed_at"])
    record(
        actor,
        "federation.move_approve",
        move,
        bank_id=peer.bank_id,
        data={"move_id": str(move.move_id), "member": member.pk, "minutes": sum(amounts.values())},
    )
    return move


@transaction.atomic
def do_reject_move(actor: User | None, move: FederatedMove, reason: str) -> FederatedMove:
    move = FederatedMove.objects.select_for_update(of=("self",)).select_related("peer").get(pk=move.pk)
    if move.direction != Direction.IN or move.state != MoveState.REQUESTED:
        raise Conflict(_("这个跨节点迁移已经办结。"), code="move_closed")
    move.state = MoveState.REFUSED
    move.reason = (reason or "").strip()[:200] or "rejected"
    move.decided_by = actor if actor is not None and actor.pk else None
    move.completed_at = clock.now()
    move.save(update_fields=["state", "reason", "decided_by", "completed_at"])
    record(actor, "federation.move_reject", move, bank_id=move.peer.bank_id, data={"reason": move.reason})
    return move


def notify(move: FederatedMove) -> FederatedMove:
    """Tell the sending node the decision (never inside a transaction); `sync_moves` retries until it answers."""
    if move.direction != Direction.IN or move.state == MoveState.REQUESTED or move.notified_at is not None:
        return move
    msg = {
        "type": "move_outcome",
        "uuid": str(move.move_id),
        "state": move.state,
        "reason": move.reason,
        "member_id": str(move.member_id or ""),
    }
    try:
        answer = signed_request(move.peer, "POST", INBOX, json.dumps(msg, separators=(",", ":")).encode())
    except Unreachable as exc:
        logger.warning("federation: move outcome %s not delivered (%s)", move.move_id, exc)
        return move
    if answer.get("uuid") == str(move.move_id) and answer.get("state") == move.state:
        FederatedMove.objects.filter(pk=move.pk).update(notified_at=clock.now())
    return FederatedMove.objects.select_related("peer").get(pk=move.pk)


def poll(move: FederatedMove) -> FederatedMove:
    """Ask the peer how our request stands, and apply its decision once it has one."""
    msg = {"type": "move_status", "uuid": str(move.move_id)}
    try:
        answer = signed_request(move.peer, "POST", INBOX, json.dumps(msg, separators=(",", ":")).encode())
    except Unreachable as exc:
        logger.warning("federation: move %s status not available (%s)", move.move_id, exc)
        return move
    if answer.get("uuid") != str(move.move_id):
        return move
    if answer.get("state") == "unknown":
        # The peer never kept the request: send it again.
        FederatedMove.objects.filter(pk=move.pk).update(notified_at=None)
        return deliver_request(FederatedMove.objects.select_related("peer").get(pk=move.pk))
    if answer.get("state") in (MoveState.COMPLETED, MoveState.REFUSED):
        return apply_outcome(move.peer, answer)
    return move


def sync_moves() -> int:
    """What a peer has not acknowledged or decided yet: deliver our requests and learn their outcome, and tell
    the sender our decisions on theirs. Answers how many are still waiting."""
    waiting = 0
    out = Q(direction=Direction.OUT, state=MoveState.REQUESTED)
    told = Q(direction=Direction.IN, notified_at__isnull=True) & ~Q(state=MoveState.REQUESTED)
    for move in FederatedMove.objects.filter(out | told).select_related("peer").order_by("pk"):
        if move.direction == Direction.IN:
            waiting += notify(move).notified_at is None
        elif move.notified_at is None:
            waiting += deliver_request(move).state == MoveState.REQUESTED
        else:
            waiting += poll(move).state == MoveState.REQUESTED
    return waiting
