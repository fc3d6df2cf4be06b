"""Canonical SHA-256 links for tamper-evident chains."""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS = "0" * 64


def link(prev_hash: str, payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()
