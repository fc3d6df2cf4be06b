"""Small readers for settings from the environment (healthchecks style)."""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_secret(name: str) -> str | None:
    """A secret from NAME, or from the file named by NAME_FILE."""
    value = os.environ.get(name)
    if value:
        return value
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return None


def _new_signing_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def local_secrets(path: Path) -> dict[str, str]:
    """Secrets for a clone with no configuration: made once, kept in a git-ignored file."""
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    else:
        data = {}
    changed = False
    defaults = {
        "SECRET_KEY": lambda: secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": lambda: Fernet.generate_key().decode(),
        "FIELD_HASH_KEY": lambda: secrets.token_urlsafe(32),
        # Keys of the hash chains (HMAC) and of their signed checkpoints (Ed25519): outside the database, so
        # whoever can write it cannot rewrite history and re-seal it.
        "CHAIN_KEY": lambda: secrets.token_urlsafe(32),
        "CHECKPOINT_SIGNING_KEY": _new_signing_key,
        # Federation (issue 16): this node's id and the Ed25519 key (base64 of the 32 raw bytes) that signs its
        # messages to peer nodes.
        "FEDERATION_NODE_ID": lambda: f"node-{secrets.token_hex(6)}",
        "FEDERATION_SIGNING_KEY": _new_signing_key,
    }
    for key, make in defaults.items():
        if key not in data:
            data[key] = make()
            changed = True
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.chmod(0o600)
        tmp.replace(path)
    return data
