"""A local stand-in for Aliyun's SMS service (Dysms `SendSms`, RPC style, signature version 1.0), for tests.

It runs `http.server` on 127.0.0.1 in a thread, over TLS with a certificate made for the test (the adapter only
speaks https), and checks what Aliyun checks, written here from Aliyun's documentation and not taken from
timebank.notify.adapters:

- the signature: StringToSign = HTTPMethod & percent("/") & percent(canonicalised query), the canonicalised query
  being every parameter but Signature, sorted by name, names and values percent-encoded from UTF-8 (RFC 3986:
  only A-Z a-z 0-9 - _ . ~ stay as they are, uppercase hex); Signature = Base64(HMAC-SHA1(AccessKeySecret + "&",
  StringToSign)). A mismatch is HTTP 400 `SignatureDoesNotMatch`.
- the common parameters (Action=SendSms, Version=2017-05-25, SignatureMethod=HMAC-SHA1, SignatureVersion=1.0,
  Format, AccessKeyId of a known key, a Timestamp in ISO 8601 UTC within 15 minutes, a SignatureNonce never seen
  before) and SendSms's own (PhoneNumbers, SignName, TemplateCode, TemplateParam as a JSON object of strings).

It answers `{"Code": "OK", "Message": "OK", "BizId", "RequestId"}`, or the error Aliyun gives, or the code a test
asks for next (`refuse_next`, e.g. `isv.BUSINESS_LIMIT_CONTROL`, which Aliyun answers with HTTP 200).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import re
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import unquote_plus

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")
REQUIRED = (
    "AccessKeyId",
    "Action",
    "Format",
    "PhoneNumbers",
    "SignName",
    "Signature",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "TemplateCode",
    "TemplateParam",
    "Timestamp",
    "Version",
)
MOBILE = re.compile(r"^(?:\+?86)?1[3-9]\d{9}$")


def percent(text: str) -> str:
    """Aliyun's POP percent-encoding, byte by byte."""
    return "".join(chr(b) if b in UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def signature(secret: str, method: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{percent(k)}={percent(v)}" for k, v in sorted(params.items()) if k != "Signature")
    string_to_sign = f"{method}&{percent('/')}&{percent(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_query(query: str) -> dict[str, str]:
    """The query as sent: a repeated name is refused (a signature covers each name once)."""
    params: dict[str, str] = {}
    for pair in query.split("&") if query else []:
        name, _, value = pair.partition("=")
        name, value = unquote_plus(name), unquote_plus(value)
        if name in params:
            raise ValueError(f"repeated parameter {name}")
        params[name] = value
    return params


@dataclass
class Received:
    method: str
    params: dict[str, str]
    answer: dict[str, Any]


@dataclass
class AliyunStandIn:
    keys: dict[str, str]  # AccessKeyId -> AccessKeySecret
    sign_names: set[str]
    templates: set[str]
    workdir: Path
    received: list[Received] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # codes to answer next, first first
    now: Any = None  # a clock for the Timestamp check (defaults to the real time)
    _nonces: set[str] = field(default_factory=set)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}/"

    @property
    def ca_file(self) -> str:
        return str(self.workdir / "standin-cert.pem")

    def refuse_next(self, code: str) -> None:
        self.refusals.append(code)

    # -- what Aliyun checks --

    def judge(self, method: str, params: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request_id = str(uuid.uuid4()).upper()

        def error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
            return status, {"Code": code, "Message": message, "RequestId": request_id}

        missing = [name for name in REQUIRED if not params.get(name)]
        if missing:
            return error(400, "MissingParameter", f"The input parameter {missing[0]} that is mandatory is missing")
        if params["Action"] != "SendSms" or params["Version"] != "2017-05-25":
            return error(400, "InvalidAction.NotFound", "Specified api is not found")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            return error(400, "InvalidParameter", "SignatureMethod or SignatureVersion")
        if params["Format"] not in ("JSON", "XML"):
            return error(400, "InvalidParameter", "Format")
        secret = self.keys.get(params["AccessKeyId"])
        if secret is None:
            return error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        expected = signature(secret, method, params)
        if not hmac.compare_digest(expected, params["Signature"]):
            return error(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        try:
            stamp = dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
        except ValueError:
            return error(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        now = self.now() if self.now else dt.datetime.now(dt.UTC)
        if abs(now - stamp) > dt.timedelta(minutes=15):
            return error(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        if params["SignatureNonce"] in self._nonces:
            return error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._nonces.add(params["SignatureNonce"])
        if self.refusals:
            return error(200, self.refusals.pop(0), "触发分钟级流控Permits:1")
        if params["SignName"] not in self.sign_names:
            return error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        if params["TemplateCode"] not in self.templates:
            return error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        if not all(MOBILE.match(p) for p in params["PhoneNumbers"].split(",")):
            return error(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
        try:
            values = json.loads(params["TemplateParam"])
        except ValueError:
            return error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            return error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        return 200, {"Code": "OK", "Message": "OK", "BizId": f"{uuid.uuid4().int % 10**18}^0", "RequestId": request_id}

    # -- the server --

    def _certificate(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dysmsapi stand-in")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        (self.workdir / "standin-cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (self.workdir / "standin-key.pem").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def __enter__(self) -> AliyunStandIn:
        self._certificate()
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, method: str, query: str) -> None:
                try:
                    params = parse_query(query)
                except ValueError as exc:
                    status, body = 400, {"Code": "InvalidParameter", "Message": str(exc)}
                else:
                    status, body = standin.judge(method, params)
                    standin.received.append(Received(method, params, body))
                data = json.dumps(body, ensure_ascii=False).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET", self.path.partition("?")[2])

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._answer("POST", self.rfile.read(length).decode("utf-8"))

            def log_message(self, format: str, *args: Any) -> None:
                return None

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.workdir / "standin-cert.pem", self.workdir / "standin-key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
