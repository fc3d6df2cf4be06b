"""Signed messages between nodes: RFC 9421 HTTP Message Signatures (the `http-message-signatures` library) with
this node's Ed25519 key, covering the method, the path, the `created` timestamp, a nonce and the body's
Content-Digest (RFC 9530). The private key lives with the other secrets (settings), never in the database."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException

MAX_SKEW = dt.timedelta(minutes=5)
COVERED = ("@method", "@path", "@query", "content-digest")
LABEL = "tb"


def node_id() -> str:
    value = settings.FEDERATION_NODE_ID
    if not value:
        raise ImproperlyConfigured("FEDERATION_NODE_ID is not set")
    return str(value)


def _private_key() -> Ed25519PrivateKey:
    raw = settings.FEDERATION_SIGNING_KEY
    if not raw:
        raise ImproperlyConfigured("FEDERATION_SIGNING_KEY (or FEDERATION_SIGNING_KEY_FILE) is not set")
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw))


def public_key_b64() -> str:
    raw = _private_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(text: str) -> Ed25519PublicKey | None:
    """A peer's key from its base64 (32 raw bytes), or None when it is not one."""
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return None


@dataclass
class Message:
    """What the library signs and verifies: a request's method, absolute URL and headers."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _Keys(HTTPSignatureKeyResolver):
    def __init__(self, public: Callable[[str], Ed25519PublicKey | None] | None = None) -> None:
        self._public = public

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        if key_id != node_id():
            raise KeyError(key_id)
        return _private_key()

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        return self._public(key_id) if self._public is not None else None


def sign(method: str, url: str, body: bytes, *, created: dt.datetime | None = None) -> dict[str, str]:
    """The headers that sign a request to `url` with this node's key: Content-Digest, Signature-Input, Signature."""
    message = Message(method.upper(), url, {"Content-Type": "application/json"})
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Keys())
    signer.sign(
        message,
        key_id=node_id(),
        created=created or dt.datetime.now(dt.UTC),
        nonce=secrets.token_urlsafe(18),
        label=LABEL,
        covered_component_ids=("@method", "@path", "@query"),
        body=body,
    )
    return message.headers


class Unverified(Exception):
    """Why a signed message was refused (answered 401)."""


@dataclass
class Verified:
    key_id: str
    nonce: str


def verify(
    method: str,
    path: str,
    headers: Mapping[str, str],
    body: bytes,
    public_key: Callable[[str], Ed25519PublicKey | None],
    query: str = "",
) -> Verified:
    """Check a request's signature with the key of the node it names (`public_key(node_id)`, None when unknown):
    signed over COVERED (the path and the query as sent), `created` within 5 minutes of now, a nonce, and a digest that matches the body."""
    wanted = {"signature-input", "signature", "content-digest", "content-type"}
    message = Message(
        method.upper(),
        "http://node" + urllib.parse.quote(path, safe="/%:@!$&'()*+,;=-._~") + (f"?{query}" if query else ""),
        {k: v for k, v in headers.items() if k.lower() in wanted},
    )
    if not any(k.lower() == "signature" for k in message.headers):
        raise Unverified("unsigned")
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=_Keys(public_key))
    verifier.max_clock_skew = MAX_SKEW
    try:
        results = verifier.verify(message, max_age=dt.timedelta(0), require_components=COVERED, body=body)
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise Unverified(str(exc)[:200]) from None
    if len(results) != 1 or not results[0].nonce or results[0].body is None:
        raise Unverified("no nonce or no digest")
    return Verified(str(results[0].parameters["keyid"]), str(results[0].nonce))


@dataclass
class Answer:
    """A response as the library signs and verifies it: its status and headers (no request components)."""

    status_code: int
    headers: dict[str, str] = field(default_factory=dict)
    request: None = None


ANSWER_COVERED = ("@status", "content-digest")


def sign_answer(status: int, body: bytes) -> dict[str, str]:
    """Headers that sign an answer of this node (a statement): its status and the Content-Digest of its body."""
    answer = Answer(status, {"Content-Type": "application/json"})
    signer = HTTPMessageSigner(signature_algorithm=algorithms.ED25519, key_resolver=_Keys())
    signer.sign(
        answer,
        key_id=node_id(),
        created=dt.datetime.now(dt.UTC),
        label=LABEL,
        covered_component_ids=("@status",),
        body=body,
    )
    return answer.headers


def verify_answer(status: int, headers: Mapping[str, str], body: bytes, key_id: str, key: Ed25519PublicKey) -> None:
    """Check that an answer was signed by the node `key_id` with `key`, recently, over its status and body."""
    wanted = {"signature-input", "signature", "content-digest", "content-type"}
    answer = Answer(status, {k: v for k, v in headers.items() if k.lower() in wanted})
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ED25519, key_resolver=_Keys(lambda k: key if k == key_id else None)
    )
    verifier.max_clock_skew = MAX_SKEW
    try:
        results = verifier.verify(answer, max_age=dt.timedelta(0), require_components=ANSWER_COVERED, body=body)
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise Unverified(str(exc)[:200]) from None
    if len(results) != 1 or results[0].body is None:
        raise Unverified("no digest")
