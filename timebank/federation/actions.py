"""Federation actions (issue 16). Each write is atomic and audited; the network is never called inside a database
transaction.

Sending: `do_send_transfer` debits the member (reserve, then earned) into the bank's clearing account for the peer
and writes the transfer and its outbox row in the same transaction, so a transfer is debited exactly once. Then
`deliver` posts the signed message to the peer's inbox, outside any transaction; the peer's answer (completed, or
refused with a reason) is applied by `apply_outcome`, which returns the minutes on a refusal. A peer that cannot be
reached leaves the transfer `pending`: `federation_sync` (and the task worker) deliver it later.

Receiving: `receive` runs in the inbox's transaction with the message's nonce: the transfer's `transfer_id` is
unique here, so a re-delivery answers the original outcome and credits nothing twice."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.federation import signing
from timebank.federation.models import Direction, FederatedTransfer, Outbox, Peer, SeenNonce, TransferState
from timebank.ledger.actions import member_account_ids
from timebank.ledger.models import Account, AccountKind, TransactionKind
from timebank.ledger.posting import MAX_MINUTES, check_minutes, lock_accounts, post
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Member, MemberStatus
from timebank.ops.idempotency import check_key, fingerprint, scope_of, write_once
from timebank.orgs.models import Org, OrgKind, User

logger = logging.getLogger(__name__)

NODE_ID = re.compile(r"^[A-Za-z0-9-]{1,64}$")
LOOPBACK = re.compile(r"^http://127\.0\.0\.1:\d{1,5}$")
INBOX = "/api/v1/federation/inbox"
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 3600
NONCE_KEEP = dt.timedelta(minutes=15)  # longer than the 5 minutes a signature is accepted for


# ---- peers ---------------------------------------------------------------------------------------------------


def check_peer_url(url: object) -> str:
    """A peer's base address: https (or, with FEDERATION_ALLOW_HTTP_LOOPBACK, http://127.0.0.1:<port>)."""
    if not isinstance(url, str) or len(url) > 300:
        raise Invalid(_("对接节点地址无效。"), fields={"url": "invalid"})
    url = url.strip().rstrip("/")
    if settings.FEDERATION_ALLOW_HTTP_LOOPBACK and LOOPBACK.match(url):
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
        raise Invalid(_("对接节点地址必须以 https:// 开头。"), fields={"url": "not_https"})
    return url


def _check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0 or limit > MAX_MINUTES:
        raise Invalid(_("限额必须是不小于零的整数分钟。"), fields={"limit_minutes": "invalid"})
    return limit


@transaction.atomic
def do_create_peer(
    actor: User | None,
    *,
    node_id: str,
    name: str,
    url: str,
    public_key: str,
    bank: Org,
    limit_minutes: int,
) -> Peer:
    """Register a peer node for one head office, with its own clearing account in that bank's ledger."""
    if not isinstance(node_id, str) or not NODE_ID.match(node_id):
        raise Invalid(_("节点编号只能含字母、数字和 -。"), fields={"node_id": "invalid"})
    if node_id == settings.FEDERATION_NODE_ID:
        raise Invalid(_("不能把本节点登记为对接节点。"), fields={"node_id": "self"})
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise Invalid(_("请填写节点名称（200 字以内）。"), fields={"name": "required"})
    url = check_peer_url(url)
    if signing.load_public_key(public_key) is None:
        raise Invalid(_("公钥必须是 Ed25519 公钥的 base64。"), fields={"public_key": "invalid"})
    if bank.kind != OrgKind.HEAD_OFFICE:
        raise Invalid(_("请选择一家时间银行的总行。"), fields={"bank_id": "not_head_office"})
    limit_minutes = _check_limit(limit_minutes)
    if Peer.objects.filter(node_id=node_id).exists():
        raise Conflict(_("这个节点已经登记过了。"), code="peer_exists")
    try:
        with transaction.atomic():
            account = Account.objects.create(bank=bank, kind=AccountKind.FEDERATION)
            peer = Peer.objects.create(
                node_id=node_id,
                name=name,
                url=url,
                public_key=public_key,
                bank=bank,
                limit_minutes=limit_minutes,
                clearing_account=account,
            )
    except IntegrityError:
        raise Conflict(_("这个节点已经登记过了。"), code="peer_exists") from None
    record(
        actor,
        "federation.peer_create",
        peer,
        bank_id=bank.pk,
        data={"node_id": node_id, "url": url, "limit_minutes": limit_minutes, "account": account.pk},
    )
    return peer


# ---- sending -------------------------------------------------------------------------------------------------


def _locked(member: Member, peer: Peer) -> tuple[dict[str, Account], Account]:
    ids = member_account_ids(member.pk)
    locked = lock_accounts([*ids.values(), peer.clearing_account_id])
    return {kind: locked[pk] for kind, pk in ids.items()}, locked[peer.clearing_account_id]


def do_send_transfer(
    actor: User | None,
    *,
    member: Member,
    peer: Peer,
    to_account: str,
    to_name: str,
    minutes: int,
    memo: str = "",
    idempotency_key: str | None = None,
) -> tuple[FederatedTransfer, bool]:
    """Debit the member into the clearing account for `peer` and queue the message (answers `pending`; the
    caller then `deliver`s it). An insufficient balance or a passed limit is 409 and moves nothing."""
    check_minutes(minutes)
    key = check_key(idempotency_key)
    if not isinstance(to_account, str) or not to_account.strip() or len(to_account) > 64:
        raise Invalid(_("请填写收款人在对方节点的会员编号。"), fields={"to_account": "invalid"})
    if not isinstance(to_name, str) or not to_name.strip() or len(to_name) > 100:
        raise Invalid(_("请填写收款人的姓名。"), fields={"to_name": "required"})
    if not isinstance(memo, str) or len(memo) > 500:
        raise Invalid(_("备注太长。"), fields={"memo": "too_long"})
    if member.bank_id != peer.bank_id:
        raise Invalid(_("这个对接节点不属于您的时间银行。"), fields={"peer_id": "other_bank"})
    to_account, to_name = to_account.strip(), to_name.strip()
    fp = fingerprint(
        "federation.transfer",
        {"from": member.pk, "peer": peer.pk, "to": to_account, "name": to_name, "m": minutes, "memo": memo},
    )

    def body() -> FederatedTransfer:
        if member.status != MemberStatus.ACTIVE:
            raise Conflict(_("会员不是正常状态，不能办理。"), code="member_not_active")
        buckets, clearing = _locked(member, peer)
        earned, reserve = buckets[AccountKind.EARNED], buckets[AccountKind.RESERVE]
        spendable = earned.balance_minutes + reserve.balance_minutes
        if spendable < minutes:
            raise Conflict(_("时间余额不足。"), code="insufficient_balance", fields={"available_minutes": spendable})
        if abs(clearing.balance_minutes + minutes) > peer.limit_minutes:
            raise Conflict(
                _("超过了与这个节点的往来限额。"),
                code="peer_limit",
                fields={"available_minutes": max(peer.limit_minutes - clearing.balance_minutes, 0)},
            )
        from_reserve = min(minutes, max(reserve.balance_minutes, 0))
        transfer_id = uuid.uuid4()
        tx = post(
            bank_id=member.bank_id,
            kind=TransactionKind.TRANSFER,
            legs=[(reserve, -from_reserve), (earned, -(minutes - from_reserve)), (clearing, minutes)],
            actor=actor,
            memo=f"跨节点转账 {transfer_id}"[:500],
            audit=(
                "federation.send",
                {"transfer_id": str(transfer_id), "peer": peer.node_id, "from": member.pk, "minutes": minutes},
            ),
        )
        now = clock.now()
        transfer = FederatedTransfer.objects.create(
            transfer_id=transfer_id,
            direction=Direction.OUT,
            peer=peer,
            member=member,
            remote_account=to_account,
            remote_name=to_name,
            minutes=minutes,
            memo=memo,
            transaction=tx,
            actor=actor if actor is not None and actor.pk else None,
            idem_scope=scope_of(actor) if key else "",
            idempotency_key=key,
            fingerprint=fp,
            agreed_at=now,
        )
        Outbox.objects.create(transfer=transfer, next_attempt_at=now)
        return transfer

    return write_once(FederatedTransfer.objects.filter(direction=Direction.OUT), actor, key, fp, body)


def transfer_message(transfer: FederatedTransfer) -> dict[str, Any]:
    """The inbox message for an outgoing transfer (Credit Commons names: uuid, payer, payee, quant, description)."""
    return {
        "type": "transfer",
        "uuid": str(transfer.transfer_id),
        "state": TransferState.PENDING,
        "payer": str(transfer.member_id),
        "payee": transfer.remote_account,
        "payee_name": transfer.remote_name,
        "quant": transfer.minutes,
        "description": transfer.memo,
        "written": transfer.agreed_at.isoformat(),
    }


class Unreachable(Exception):
    """The peer did not answer with an outcome (down, timed out, an error page, a refused signature)."""


def address(message: dict[str, Any], to: str) -> bytes:
    """A message's body as signed: addressed `to` the peer's node id and `from` this node's, so that the peer cannot
    replay it to a third node (the inbox refuses a message not addressed to it, `check_address`)."""
    return json.dumps({**message, "to": to, "from": signing.node_id()}, separators=(",", ":")).encode()


def check_address(peer: Peer, message: object) -> None:
    """Refuse (401) a signed message not addressed to this node, or not from the node whose key signed it."""
    if not isinstance(message, dict) or message.get("to") != signing.node_id() or message.get("from") != peer.node_id:
        raise Misaddressed


class Misaddressed(Exception):
    """A signed message addressed to another node, or naming another sender than its signer."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect answers as the HTTP error it is (Unreachable): the signed request goes nowhere else


# No redirects: a peer (or whoever answers at its address) cannot send our signed request on to another address.
_OPENER = urllib.request.build_opener(_NoRedirect())


def signed_request(
    peer: Peer, method: str, path: str, body: bytes = b"", *, signed_answer: bool = False
) -> dict[str, Any]:
    """Send a signed request to the peer and read its JSON answer (200 only); with `signed_answer`, the answer must
    carry the peer's own signature over its status and body (a statement)."""
    url = peer.url + path
    if body:
        body = address(json.loads(body), peer.node_id)
    headers = signing.sign(method, url, body)
    request = urllib.request.Request(url, data=body if method != "GET" else None, method=method, headers=headers)  # noqa: S310 - https (or the loopback in tests) only, checked when the peer was registered
    try:
        with _OPENER.open(request, timeout=settings.FEDERATION_TIMEOUT_SECONDS) as resp:
            raw = resp.read()
            if signed_answer:
                key = signing.load_public_key(peer.public_key)
                assert key is not None  # checked when the peer was registered
                try:
                    signing.verify_answer(resp.status, dict(resp.headers.items()), raw, peer.node_id, key)
                except signing.Unverified as exc:
                    raise Unreachable(f"the answer's signature is invalid: {exc}") from None
            answer = json.loads(raw or b"null")
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"HTTP {exc.code}: {exc.read()[:200]!r}") from None
    except (OSError, ValueError) as exc:
        raise Unreachable(f"{type(exc).__name__}: {exc}"[:300]) from None
    if not isinstance(answer, dict):
        raise Unreachable("not a JSON object")
    return answer


def deliver(transfer: FederatedTransfer) -> FederatedTransfer:
    """Send one pending transfer's message and apply the peer's answer. Never inside a database transaction."""
    if transfer.state != TransferState.PENDING or transfer.direction != Direction.OUT:
        return transfer
    peer = transfer.peer
    body = json.dumps(transfer_message(transfer), separators=(",", ":")).encode()
    try:
        answer = signed_request(peer, "POST", INBOX, body)
        if answer.get("uuid") != str(transfer.transfer_id) or answer.get("state") not in (
            TransferState.COMPLETED,
            TransferState.REFUSED,
        ):
            raise Unreachable(f"unexpected answer: {str(answer)[:200]}")
    except Unreachable as exc:
        _delivery_failed(transfer, str(exc))
        return FederatedTransfer.objects.get(pk=transfer.pk)
    return apply_outcome(transfer, str(answer["state"]), str(answer.get("reason") or "")[:40])


def _delivery_failed(transfer: FederatedTransfer, error: str) -> None:
    with transaction.atomic():
        box = Outbox.objects.select_for_update().get(transfer=transfer)
        if box.delivered_at is not None:
            return
        box.attempts += 1
        delay = min(RETRY_BASE_SECONDS * 2 ** min(box.attempts - 1, 10), RETRY_MAX_SECONDS)
        box.next_attempt_at = clock.now() + dt.timedelta(seconds=delay)
        box.last_error = error[:300]
        box.save(update_fields=["attempts", "next_attempt_at", "last_error"])
        when = box.next_attempt_at
    logger.warning("federation: transfer %s not delivered (%s), next attempt %s", transfer.transfer_id, error, when)
    from timebank.federation.tasks import enqueue_sync

    enqueue_sync(run_after=when)


@transaction.atomic
def apply_outcome(transfer: FederatedTransfer, state: str, reason: str) -> FederatedTransfer:
    """The peer's answer to an outgoing transfer, applied once: completed, or refused (the minutes go back)."""
    locked = (
        FederatedTransfer.objects.select_for_update(of=("self",)).select_related("peer", "member").get(pk=transfer.pk)
    )
    if locked.state != TransferState.PENDING:
        return locked
    now = clock.now()
    if state == TransferState.REFUSED:
        assert locked.member is not None and locked.transaction is not None
        debit = list(locked.transaction.legs.values_list("account_id", "minutes"))
        accounts = lock_accounts([a for a, _m in debit])
        locked.refund = post(
            bank_id=locked.peer.bank_id,
            kind=TransactionKind.TRANSFER,
            legs=[(accounts[a], -m) for a, m in debit],
            actor=None,
            memo=f"跨节点转账退回 {locked.transfer_id}",
        )
        locked.reason = reason or "refused"
    locked.state = state
    locked.completed_at = now
    locked.save(update_fields=["state", "reason", "refund", "completed_at"])
    Outbox.objects.filter(transfer=locked).update(delivered_at=now)
    record(
        None,
        f"federation.{state}",
        locked,
        bank_id=locked.peer.bank_id,
        data={"transfer_id": str(locked.transfer_id), "reason": locked.reason},
    )
    return locked


@dataclass
class SyncResult:
    delivered: int = 0
    pending: int = 0


def sync(*, due_only: bool = False) -> SyncResult:
    """Deliver every pending outgoing transfer (`due_only`: those whose next attempt is due), and forget nonces
    older than any signature still accepted."""
    SeenNonce.objects.filter(seen_at__lt=clock.now() - NONCE_KEEP).delete()
    boxes = Outbox.objects.filter(delivered_at__isnull=True).select_related("transfer__peer").order_by("pk")
    if due_only:
        boxes = boxes.filter(next_attempt_at__lte=clock.now())
    result = SyncResult()
    for box in boxes.iterator(chunk_size=200):
        done = deliver(box.transfer)
        if done.state == TransferState.PENDING:
            result.pending += 1
        else:
            result.delivered += 1
    from timebank.federation.moves import sync_moves

    result.pending += sync_moves()
    return result


# ---- receiving -----------------------------------------------------------------------------------------------


def _check_message(message: object) -> dict[str, Any]:
    if not isinstance(message, dict) or message.get("type") != "transfer":
        raise Invalid(_("无法识别的消息。"), fields={"type": "invalid"})
    try:
        uuid.UUID(str(message.get("uuid")))
        written = dt.datetime.fromisoformat(str(message.get("written")))
    except ValueError:
        raise Invalid(_("消息格式错误。"), fields={"uuid": "invalid"}) from None
    # Not from the future (beyond the clock skew a signature is allowed). A past one is fine: a transfer delivered
    # late by `federation_sync` keeps the time it was debited, and both statements date it so.
    if timezone.is_naive(written) or written - clock.now() > signing.MAX_SKEW:
        raise Invalid(_("消息格式错误。"), fields={"written": "invalid"})
    check_minutes(message.get("quant"), field="quant")
    for name in ("payer", "payee", "payee_name", "description"):
        if not isinstance(message.get(name), str) or len(message[name]) > 500:
            raise Invalid(_("消息格式错误。"), fields={name: "invalid"})
    return message


def note_nonce(peer: Peer, nonce: str) -> bool:
    """Keep a signed request's nonce; False when it was seen before (a replay)."""
    try:
        with transaction.atomic():
            SeenNonce.objects.create(peer=peer, nonce=nonce[:100])
    except IntegrityError:
        return False
    return True


def outcome(transfer: FederatedTransfer) -> dict[str, Any]:
    return {"uuid": str(transfer.transfer_id), "state": transfer.state, "reason": transfer.reason}


def receive(peer: Peer, nonce: str, message: object) -> dict[str, Any]:
    """A peer's transfer, once: credit the member's reserve out of the clearing account for that peer, or refuse
    (`unknown_account`, `name_mismatch`, `member_not_active`, `peer_limit`). Runs with the message's nonce in one
    transaction; a nonce seen before is `Replayed`. A re-delivered transfer answers its original outcome."""
    msg = _check_message(message)
    key = uuid.UUID(msg["uuid"])
    with transaction.atomic():
        if not note_nonce(peer, nonce):
            raise Replayed
        existing = FederatedTransfer.objects.filter(transfer_id=key).first()
        if existing is not None:
            return _same_transfer(existing, peer)
        try:
            with transaction.atomic():
                return outcome(_credit(peer, msg, key))
        except IntegrityError:
            # The same transfer delivered twice at once: the other delivery committed it first.
            existing = FederatedTransfer.objects.filter(transfer_id=key).first()
            if existing is None:
                raise
            return _same_transfer(existing, peer)


class Replayed(Exception):
    """A signed message whose nonce was seen before."""


def _same_transfer(existing: FederatedTransfer, peer: Peer) -> dict[str, Any]:
    if existing.peer_id != peer.pk or existing.direction != Direction.IN:
        raise Conflict(_("这个转账编号已被使用。"), code="transfer_id_taken")
    return outcome(existing)


def _credit(peer: Peer, msg: dict[str, Any], key: uuid.UUID) -> FederatedTransfer:
    minutes = int(msg["quant"])
    payee = msg["payee"].strip()
    member = None
    if payee.isascii() and payee.isdigit():
        member = Member.objects.filter(pk=int(payee), bank_id=peer.bank_id).first()
    reason = ""
    if member is None:
        reason = "unknown_account"
    elif member.name != msg["payee_name"].strip():
        reason = "name_mismatch"
    elif member.status != MemberStatus.ACTIVE:
        reason = "member_not_active"
    transfer = FederatedTransfer(
        transfer_id=key,
        direction=Direction.IN,
        peer=peer,
        member=member,
        remote_account=msg["payer"][:64],
        remote_name="",
        minutes=minutes,
        memo=msg["description"][:500],
        agreed_at=dt.datetime.fromisoformat(msg["written"]),
    )
    if not reason:
        assert member is not None
        buckets, clearing = _locked(member, peer)
        if abs(clearing.balance_minutes - minutes) > peer.limit_minutes:
            reason = "peer_limit"
        else:
            transfer.transaction = post(
                bank_id=peer.bank_id,
                kind=TransactionKind.TRANSFER,
                legs=[(clearing, -minutes), (buckets[AccountKind.RESERVE], minutes)],
                actor=None,
                memo=f"跨节点转入 {key}",
            )
    transfer.state = TransferState.REFUSED if reason else TransferState.COMPLETED
    transfer.reason = reason
    transfer.completed_at = clock.now()
    transfer.save(force_insert=True)
    record(
        None,
        "federation.receive",
        transfer,
        bank_id=peer.bank_id,
        data={
            "transfer_id": str(key),
            "peer": peer.node_id,
            "minutes": minutes,
            "state": transfer.state,
            "reason": reason,
        },
    )
    return transfer


# ---- statements ----------------------------------------------------------------------------------------------


def statement(peer: Peer, day: dt.date) -> dict[str, Any]:
    """The completed transfers with `peer` dated `day` (both nodes date a transfer by the sender's time), signed
    from this node's side: positive when the peer owes us more."""
    start, end = clock.day_bounds(day, day)
    done = FederatedTransfer.objects.filter(peer=peer, state=TransferState.COMPLETED)

    def signed_sum(qs: Any) -> int:
        out = qs.filter(direction=Direction.OUT).aggregate(s=Sum("minutes"))["s"] or 0
        inn = qs.filter(direction=Direction.IN).aggregate(s=Sum("minutes"))["s"] or 0
        return int(out) - int(inn)

    opening = signed_sum(done.filter(agreed_at__lt=start))
    rows = done.filter(agreed_at__gte=start, agreed_at__lt=end).order_by("agreed_at", "transfer_id")
    entries: list[dict[str, Any]] = [
        {
            "transfer_id": str(t.transfer_id),
            "minutes": t.minutes if t.direction == Direction.OUT else -t.minutes,
            "at": t.agreed_at.isoformat(),
        }
        for t in rows
    ]
    return {
        "peer_node_id": peer.node_id,
        "date": day.isoformat(),
        "opening_minutes": opening,
        "closing_minutes": opening + sum(e["minutes"] for e in entries),
        "entries": entries,
    }


@dataclass
class Reconciliation:
    peer: Peer
    problems: list[str]


def reconcile(peer: Peer, day: dt.date) -> Reconciliation:
    """Compare this node's statement with the peer's for `day`: they must mirror (the same transfers, opposite
    signs, opposite opening and closing). Names every transfer where they differ."""
    mine = statement(peer, day)
    problems: list[str] = []
    try:
        theirs = signed_request(
            peer,
            "GET",
            f"/api/v1/federation/peers/{peer.pk}/statement?"
            + urllib.parse.urlencode({"date": day.isoformat(), "to": peer.node_id, "from": signing.node_id()}),
            signed_answer=True,
        )
    except Unreachable as exc:
        return Reconciliation(peer, [f"{peer.node_id}: statement not available ({exc})"])
    if theirs.get("peer_node_id") != signing.node_id() or theirs.get("date") != day.isoformat():
        problems.append(f"{peer.node_id}: the statement is not for this node and day: {str(theirs)[:200]}")
    ours = {e["transfer_id"]: e["minutes"] for e in mine["entries"]}
    try:
        other = {str(e["transfer_id"]): int(e["minutes"]) for e in theirs.get("entries") or []}
    except (KeyError, TypeError, ValueError):
        return Reconciliation(peer, [*problems, f"{peer.node_id}: the statement's entries are malformed"])
    for tid in sorted(set(ours) | set(other)):
        if tid not in other:
            problems.append(f"{peer.node_id}: transfer {tid} ({ours[tid]:+d} min) is missing on the peer")
        elif tid not in ours:
            problems.append(f"{peer.node_id}: transfer {tid} ({-other[tid]:+d} min) is missing here")
        elif other[tid] != -ours[tid]:
            problems.append(f"{peer.node_id}: transfer {tid} is {ours[tid]:+d} min here but {-other[tid]:+d} there")
    for field in ("opening_minutes", "closing_minutes"):
        if theirs.get(field) != -mine[field]:
            problems.append(f"{peer.node_id}: {field} {mine[field]:+d} here, the peer's mirror is {theirs.get(field)}")
    return Reconciliation(peer, problems)
