"""Delivery channels. Each adapter sends one notification or raises; the sender records the outcome.

SMS (Aliyun 短信服务) and WeChat template messages build the providers' real requests and post them only
when credentials are configured (NOTIFY_SMS_*, NOTIFY_WECHAT_*). Without them they raise NotConfigured,
so the notification is marked failed with that reason rather than silently dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail

from timebank.notify.models import Notification, NotifyChannel, WeChatBinding

HTTP_TIMEOUT_SECONDS = 10


class SendError(Exception):
    """The provider refused or could not be reached: worth trying again later."""

    retry = True


class NotConfigured(SendError):
    """Credentials or a template are missing: retrying cannot help until someone configures it."""

    retry = False


class NoAddress(SendError):
    """The person has no address on this channel (no e-mail, no phone, no WeChat binding)."""

    retry = False


class Adapter(Protocol):
    def send(self, notification: Notification) -> None: ...


class OutboxAdapter:
    """The in-app outbox: the row itself is the message, so delivering it is marking it sent."""

    def send(self, notification: Notification) -> None:
        return None


class EmailAdapter:
    """Django's mail backend (EMAIL_BACKEND, EMAIL_HOST, DEFAULT_FROM_EMAIL...)."""

    def send(self, notification: Notification) -> None:
        email = notification.user.email if notification.user else ""
        if not email:
            raise NoAddress("no e-mail address")
        send_mail(notification.title, notification.body, None, [email], fail_silently=False)


def https_request(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None, method: str = "GET"
) -> urllib.request.Request:
    # Only https: a misconfigured endpoint must not turn into a file: or plain-text request.
    if urllib.parse.urlsplit(url).scheme != "https":
        raise NotConfigured("provider endpoints must be https")
    return urllib.request.Request(url, data=data, headers=headers or {}, method=method)  # noqa: S310


def _post_or_get(request: urllib.request.Request) -> dict[str, Any]:
    try:
        # Requests are built by https_request: only https reaches urlopen.
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_SECONDS) as resp:  # noqa: S310
            data = json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        # Providers answer some refusals with a 4xx and their own code in the body (Aliyun: 400
        # SignatureDoesNotMatch, 404 InvalidAccessKeyId.NotFound): hand the code on, not just the status.
        data = _error_body(exc)
        if data is None:
            raise SendError(f"HTTPError: {exc}") from exc
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise SendError(f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise SendError("provider answered something that is not a JSON object")
    return data


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any] | None:
    try:
        data = json.loads(exc.read(64 * 1024).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _text_params(payload: dict[str, Any], limit: int) -> dict[str, str]:
    return {k: str(v)[:limit] for k, v in payload.items() if k != "order_id" and v not in ("", None)}


# --- SMS: Aliyun Dysms SendSms (RPC API, signature version 1.0) ---


@dataclass(frozen=True)
class SmsConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    templates: dict[str, str]
    endpoint: str


def sms_config() -> SmsConfig:
    key_id = getattr(settings, "NOTIFY_SMS_ACCESS_KEY_ID", "")
    secret = getattr(settings, "NOTIFY_SMS_ACCESS_KEY_SECRET", "")
    sign_name = getattr(settings, "NOTIFY_SMS_SIGN_NAME", "")
    if not (key_id and secret and sign_name):
        raise NotConfigured("SMS is not configured (NOTIFY_SMS_ACCESS_KEY_ID, _SECRET, _SIGN_NAME)")
    return SmsConfig(
        key_id,
        secret,
        sign_name,
        dict(getattr(settings, "NOTIFY_SMS_TEMPLATES", {})),
        getattr(settings, "NOTIFY_SMS_ENDPOINT", "https://dysmsapi.aliyuncs.com/"),
    )


def _pct(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


def aliyun_sms_request(
    config: SmsConfig,
    *,
    phone: str,
    template_code: str,
    params: dict[str, str],
    now: dt.datetime,
    nonce: str,
    extra: dict[str, str] | None = None,
) -> urllib.request.Request:
    query: dict[str, str] = {
        "AccessKeyId": config.access_key_id,
        "Action": "SendSms",
        "Format": "JSON",
        "PhoneNumbers": phone,
        "SignName": config.sign_name,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce,
        "SignatureVersion": "1.0",
        "TemplateCode": template_code,
        "TemplateParam": json.dumps(params, ensure_ascii=False, separators=(",", ":")),
        "Timestamp": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Version": "2017-05-25",
        **(extra or {}),
    }
    canonical = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(query.items()))
    to_sign = f"GET&{_pct('/')}&{_pct(canonical)}"
    digest = hmac.new(f"{config.access_key_secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    signature = base64.b64encode(digest).decode()
    return https_request(f"{config.endpoint}?Signature={_pct(signature)}&{canonical}")


class SmsRefused(SendError):
    """Aliyun refused the message for a reason that sending it again cannot change (the credentials, the
    signature name or template, the number): the notification fails at once, with the provider's code."""

    retry = False


# Aliyun's codes for refusals that stay refusals (its 短信服务 error code list); anything else, such as
# isv.BUSINESS_LIMIT_CONTROL (too many to one number this minute/hour/day) or isp.SYSTEM_ERROR, is retried with
# the notify app's backoff.
SMS_FINAL_REFUSALS = frozenset(
    {
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "MissingParameter",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.INVALID_PARAMETERS",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.BLACK_KEY_CONTROL_LIMIT",
    }
)


class SmsAdapter:
    def send(self, notification: Notification) -> None:
        config = sms_config()
        phone = notification.member.phone if notification.member else ""
        if not phone:
            raise NoAddress("no phone number")
        template_code = config.templates.get(notification.template)
        if not template_code:
            raise NotConfigured(f"no SMS template for {notification.template}")
        # Aliyun limits each template variable (35 characters for most kinds).
        request = aliyun_sms_request(
            config,
            phone=phone,
            template_code=template_code,
            params=_text_params(notification.payload, 35),
            now=dt.datetime.now(dt.UTC),
            nonce=uuid.uuid4().hex,
        )
        answer = _post_or_get(request)
        code = str(answer.get("Code"))
        if code != "OK":
            error = SmsRefused if code in SMS_FINAL_REFUSALS else SendError
            raise error(f"aliyun: {code} {answer.get('Message')}")


# --- WeChat official account template messages ---


@dataclass(frozen=True)
class WeChatConfig:
    app_id: str
    app_secret: str
    # template key → {"template_id": ..., "data": {wechat field: payload key | "title" | "body"}}
    templates: dict[str, Any]
    api: str


def wechat_config() -> WeChatConfig:
    app_id = getattr(settings, "NOTIFY_WECHAT_APP_ID", "")
    secret = getattr(settings, "NOTIFY_WECHAT_APP_SECRET", "")
    if not (app_id and secret):
        raise NotConfigured("WeChat is not configured (NOTIFY_WECHAT_APP_ID, NOTIFY_WECHAT_APP_SECRET)")
    return WeChatConfig(
        app_id,
        secret,
        dict(getattr(settings, "NOTIFY_WECHAT_TEMPLATES", {})),
        getattr(settings, "NOTIFY_WECHAT_API", "https://api.weixin.qq.com").rstrip("/"),
    )


DEFAULT_WECHAT_FIELDS = {"first": "title", "keyword1": "service", "keyword2": "start", "remark": "body"}


def wechat_template_body(openid: str, template: dict[str, Any], notification: Notification) -> dict[str, Any]:
    values = {**_text_params(notification.payload, 20), "title": notification.title, "body": notification.body}
    fields: dict[str, str] = template.get("data") or DEFAULT_WECHAT_FIELDS
    return {
        "touser": openid,
        "template_id": template["template_id"],
        "data": {field: {"value": values.get(source, "")} for field, source in fields.items()},
    }


def _token_key(config: WeChatConfig) -> str:
    return f"notify:wechat-token:{config.app_id}"


def wechat_access_token(config: WeChatConfig) -> str:
    token = cache.get(_token_key(config))
    if token:
        return str(token)
    query = urllib.parse.urlencode(
        {"grant_type": "client_credential", "appid": config.app_id, "secret": config.app_secret}
    )
    answer = _post_or_get(https_request(f"{config.api}/cgi-bin/token?{query}"))
    token = answer.get("access_token")
    if not token:
        raise SendError(f"wechat token: {answer.get('errcode')} {answer.get('errmsg')}")
    # Tokens last 7200 s; renew a few minutes early.
    cache.set(_token_key(config), token, max(60, int(answer.get("expires_in", 7200)) - 300))
    return str(token)


class WeChatTemplateAdapter:
    def send(self, notification: Notification) -> None:
        config = wechat_config()
        binding = WeChatBinding.objects.filter(user_id=notification.user_id).first() if notification.user_id else None
        if binding is None:
            raise NoAddress("no WeChat binding")
        template = config.templates.get(notification.template)
        if isinstance(template, str):
            template = {"template_id": template}
        if not template or not template.get("template_id"):
            raise NotConfigured(f"no WeChat template for {notification.template}")
        token = wechat_access_token(config)
        body = json.dumps(wechat_template_body(binding.openid, template, notification), ensure_ascii=False)
        request = https_request(
            f"{config.api}/cgi-bin/message/template/send?access_token={urllib.parse.quote(token)}",
            data=body.encode("utf-8"),
            headers={"Content-Type": "application/json; charset=utf-8"},
            method="POST",
        )
        answer = _post_or_get(request)
        if answer.get("errcode", 0) != 0:
            if answer.get("errcode") in (40001, 40014, 42001):  # token invalid or expired
                cache.delete(_token_key(config))
            raise SendError(f"wechat: {answer.get('errcode')} {answer.get('errmsg')}")


ADAPTERS: dict[str, Adapter] = {
    NotifyChannel.OUTBOX: OutboxAdapter(),
    NotifyChannel.EMAIL: EmailAdapter(),
    NotifyChannel.SMS: SmsAdapter(),
    NotifyChannel.WECHAT: WeChatTemplateAdapter(),
}


def adapter_for(channel: str) -> Adapter:
    return ADAPTERS[channel]
