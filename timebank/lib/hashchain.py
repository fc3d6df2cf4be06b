"""Canonical keyed links for tamper-evident chains.

Each link is HMAC-SHA256 over the previous link and the row's canonical JSON, with `settings.CHAIN_KEY`,
which lives outside the database (environment, `CHAIN_KEY_FILE` or the local secrets file). Whoever can
write the database but not read that key cannot rehash a changed row and everything after it.

Chains written before the key existed were unkeyed SHA-256 (`legacy_link`); migration
`ledger/0009_reseal_chains_keyed` (or `manage.py reseal_chains`) checks them the old way once and re-seals
them under the key, so `verify` accepts keyed links only and there is no unkeyed format left to fall back to.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from django.conf import settings

GENESIS = "0" * 64


def canonical(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def link(prev_hash: str, payload: dict[str, Any]) -> str:
    key = settings.CHAIN_KEY.encode()
    return hmac.new(key, f"{prev_hash}|{canonical(payload)}".encode(), hashlib.sha256).hexdigest()


def legacy_link(prev_hash: str, payload: dict[str, Any]) -> str:
    """The unkeyed link of rows written before the chains were keyed: only for checking them before a re-seal."""
    return hashlib.sha256(f"{prev_hash}|{canonical(payload)}".encode()).hexdigest()


def head_seal(scope: str, ledger_seq: int, ledger_hash: str, audit_seq: int, audit_hash: str) -> str:
    """The keyed seal of a chain head: without the key, a head cannot be moved back to an older row."""
    return link(GENESIS, {"head": scope, "ledger": [ledger_seq, ledger_hash], "audit": [audit_seq, audit_hash]})
