"""Field encryption at rest (Fernet, rotatable) and keyed hashes for finding encrypted values again."""

from __future__ import annotations

import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


@cache
def _fernet() -> MultiFernet:
    # The first key encrypts; all keys decrypt, so a rotation can re-encrypt row by row.
    return MultiFernet([Fernet(k.encode()) for k in settings.FIELD_ENCRYPTION_KEYS])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("field cannot be decrypted with the configured keys") from exc


def rotate(token: str) -> str:
    return _fernet().rotate(token.encode()).decode()


def keyed_hash(value: str, *, scope: str = "") -> str:
    key = settings.FIELD_HASH_KEY.encode()
    return hmac.new(key, f"{scope}\x00{value}".encode(), hashlib.sha256).hexdigest()


def reset_cache() -> None:
    _fernet.cache_clear()
