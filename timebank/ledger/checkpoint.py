"""Signed checkpoints of every chain's tip, to be kept outside the database.

A checkpoint names, for each bank's ledger and audit chain and the global audit chain, the last sealed
row's seq, hash and time, signed with the Ed25519 key `settings.CHECKPOINT_SIGNING_KEY` (outside the
database, like the chain key). `check_checkpoint` then proves the database still extends it: the row at
each seq still carries that hash (and `verify` walks the chain from genesis through it to the tip). A
tail deleted and the head rewound, or a history rewritten from an old row on, no longer contains it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings

from timebank.audit.chain import scope_for, ts
from timebank.audit.models import AuditEntry
from timebank.audit.sealing import seal_all
from timebank.ledger.models import PublishedCheckpoint, Transaction
from timebank.lib import clock
from timebank.lib.hashchain import GENESIS, canonical
from timebank.orgs.models import Org, OrgKind

FORMAT = "timebank-checkpoint/1"


def _private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(settings.CHECKPOINT_SIGNING_KEY))


def public_key() -> Ed25519PublicKey:
    return _private_key().public_key()


def public_key_b64() -> str:
    return base64.b64encode(public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def _tips() -> list[dict[str, Any]]:
    tips: list[dict[str, Any]] = []
    for bank_id in Org.objects.filter(kind=OrgKind.HEAD_OFFICE).order_by("pk").values_list("pk", flat=True):
        tx = Transaction.objects.filter(bank_id=bank_id, seq__isnull=False).order_by("-seq").first()
        if tx is not None:
            tips.append({"bank": bank_id, "chain": "ledger", "seq": tx.seq, "hash": tx.hash, "time": ts(tx.created_at)})
        tips += _audit_tip(bank_id)
    return tips + _audit_tip(None)


def _audit_tip(bank_id: int | None) -> list[dict[str, Any]]:
    entry = AuditEntry.objects.filter(scope=scope_for(bank_id), seq__isnull=False).order_by("-seq").first()
    if entry is None:
        return []
    return [{"bank": bank_id, "chain": "audit", "seq": entry.seq, "hash": entry.hash, "time": ts(entry.created_at)}]


def make_checkpoint() -> dict[str, Any]:
    """A checkpoint of the sealed tips. What is still unsealed is sealed first (on demand), so it is included."""
    seal_all()
    body = {"format": FORMAT, "made_at": ts(clock.now()), "public_key": public_key_b64(), "chains": _tips()}
    signature = _private_key().sign(canonical(body).encode())
    return {**body, "signature": base64.b64encode(signature).decode()}


def load_checkpoint(text: str) -> dict[str, Any]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a checkpoint")
    return data


def checkpoint_text(data: dict[str, Any]) -> str:
    """The text a checkpoint is written and published as (`checkpoint --out`, the disclosure pages' download)."""
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def signature_ok(data: dict[str, Any]) -> bool:
    """Signed with this deployment's key (never the key written in the data) over everything but the signature."""
    body = {k: v for k, v in data.items() if k != "signature"}
    if body.get("format") != FORMAT or not isinstance(body.get("chains"), list):
        return False
    try:
        public_key().verify(base64.b64decode(str(data.get("signature", "")), validate=True), canonical(body).encode())
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def check_checkpoint(data: dict[str, Any]) -> list[str]:
    """What no longer matches in the database; empty when it still extends the checkpoint.

    The signature is checked against this deployment's own key, never the public key written in the file
    (anyone could sign a forged file with a key of their own)."""
    body = {k: v for k, v in data.items() if k != "signature"}
    if body.get("format") != FORMAT or not isinstance(body.get("chains"), list):
        return ["checkpoint: not a timebank checkpoint file"]
    if not signature_ok(data):
        return ["checkpoint: the signature does not verify with this deployment's checkpoint key (edited or foreign)"]
    problems: list[str] = []
    for tip in body["chains"]:
        bank, chain, seq, want = tip.get("bank"), tip.get("chain"), tip.get("seq"), tip.get("hash")
        if chain == "ledger":
            found = Transaction.objects.filter(bank_id=bank, seq=seq).values_list("hash", flat=True).first()
        else:
            found = AuditEntry.objects.filter(scope=scope_for(bank), seq=seq).values_list("hash", flat=True).first()
        name = f"{chain} {scope_for(bank)}"
        if found is None:
            problems.append(
                f"checkpoint: {name} had seq {seq} at {tip.get('time')}, which is no longer in the database "
                "(history rewound)"
            )
        elif found != want:
            problems.append(
                f"checkpoint: {name} seq {seq} has hash {found[:12]}…, the checkpoint signed {str(want)[:12]}… "
                "(history rewritten)"
            )
    return problems


@dataclass(frozen=True)
class Published:
    """A published checkpoint row as read back: its data when its signature verifies, else None."""

    row: PublishedCheckpoint
    data: dict[str, Any] | None

    @property
    def valid(self) -> bool:
        return self.data is not None

    def tip(self, bank_id: int | None, chain: str) -> tuple[int, str]:
        """(seq, hash) of one chain in this checkpoint; (0, GENESIS) for a chain it has no row of."""
        for tip in (self.data or {}).get("chains", []):
            if tip.get("bank") == bank_id and tip.get("chain") == chain:
                return int(tip["seq"]), str(tip["hash"])
        return 0, GENESIS


def read_published(row: PublishedCheckpoint) -> Published:
    try:
        data = load_checkpoint(row.text)
    except ValueError:
        return Published(row, None)
    return Published(row, data if signature_ok(data) and _chains_well_formed(data) else None)


def _chains_well_formed(data: dict[str, Any]) -> bool:
    return all(
        isinstance(t, dict)
        and isinstance(t.get("seq"), int)
        and isinstance(t.get("hash"), str)
        and (t.get("bank") is None or isinstance(t.get("bank"), int))
        for t in data["chains"]
    )


# How many of the newest rows a reader looks through for signed ones: rows a database writer inserted can make
# a reader fall back (the pages list fewer, verify walks everything), never make it trust them.
SCAN = 500


def published(limit: int = 20) -> tuple[list[Published], int]:
    """The newest `limit` published checkpoints whose signature verifies, and how many unsigned or forged rows
    were skipped among the newest `SCAN` rows."""
    good: list[Published] = []
    bad = 0
    for row in PublishedCheckpoint.objects.order_by("-made_at", "-id")[:SCAN]:
        item = read_published(row)
        if not item.valid:
            bad += 1
        elif len(good) < limit:
            good.append(item)
    return good, bad


def latest_published() -> Published | None:
    for row in PublishedCheckpoint.objects.order_by("-made_at", "-id")[:SCAN]:
        item = read_published(row)
        if item.valid:
            return item
    return None
