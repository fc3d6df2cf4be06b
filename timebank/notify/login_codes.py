"""Logging in with a one-time code sent by SMS (the contract's "Logging in with an SMS code").

`POST /api/v1/auth/sms-code` sends a 6-digit code to the phone of the one active member who has it, valid
CODE_VALID; the answer is 202 whether or not the phone is known, and nothing is written for an unknown one.
Only an HMAC of the code is kept (keyed by the SECRET_KEY: the table alone does not give the codes away). A new
code replaces the phone's earlier one. `POST /api/v1/auth/token` with `{"phone", "sms_code"}` publishes
`SmsCodeLogin`, answered here: the code is checked under a row lock (two requests with one code give one token),
a wrong one counts, and after MAX_WRONG the code is refused until a new one is sent. The first such login of a
member without a login creates one, acting as that member (no password: they log in by code, or staff reset it).

Sending is limited per client address and per phone (`timebank.lib.ratelimit`, 429 `rate_limited`).
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import translation
from django.utils.crypto import constant_time_compare, salted_hmac
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.lib import clock, ratelimit
from timebank.lib.client import client_address
from timebank.lib.events import subscribe
from timebank.members.models import Member, MemberStatus
from timebank.notify.messages import Message
from timebank.notify.models import SmsLoginCode
from timebank.notify.sms import mobile_number, queue_sms
from timebank.orgs.events import SmsCodeLogin
from timebank.orgs.models import User

CODE_VALID = dt.timedelta(minutes=10)
MAX_WRONG = 5
LOGIN_CODE_TEMPLATE = "login.sms_code"


def code_hash(phone: str, code: str) -> str:
    return salted_hmac("timebank.notify.login_codes", f"{phone}:{code}", algorithm="sha256").hexdigest()


def phone_owner(phone: str) -> Member | None:
    """The one active member with this mobile on file; None for none, or for several (a shared phone cannot
    tell whose login it opens)."""
    owners = list(
        Member.objects.filter(phone=phone, status=MemberStatus.ACTIVE, anonymised_at__isnull=True).select_related(
            "user"
        )[:2]
    )
    return owners[0] if len(owners) == 1 else None


def login_code_message(code: str) -> Message:
    payload = {"code": code, "minutes": int(CODE_VALID.total_seconds() // 60)}
    with translation.override(settings.LANGUAGE_CODE):
        title = str(_("登录验证码"))
        body = str(
            _("您的时间银行登录验证码是%(code)s，%(minutes)s分钟内有效。请不要告诉任何人，包括志愿者。") % payload
        )
    return Message(LOGIN_CODE_TEMPLATE, title, body, payload)


def do_send_login_code(request: HttpRequest, phone: str) -> None:
    """Count the request against both limits (429 either way, known phone or not), then send a code to the
    phone's member, if there is one. Answers nothing: the caller answers 202 in every case."""
    ratelimit.hit(request, "sms_code")
    ratelimit.hit_key("sms_code_phone", phone)
    with transaction.atomic():
        member = phone_owner(phone)
        if member is None:
            return
        code = f"{secrets.randbelow(10**6):06d}"
        now = clock.now()
        fields = {
            "code_hash": code_hash(phone, code),
            "member": member,
            "wrong": 0,
            "sent_at": now,
            "expires_at": now + CODE_VALID,
            "used_at": None,
        }
        try:
            with transaction.atomic():
                SmsLoginCode.objects.update_or_create(phone=phone, defaults=fields)
        except IntegrityError:  # the same phone's first code twice at once: the other request created the row
            SmsLoginCode.objects.filter(phone=phone).update(**fields)
        sms = queue_sms(member, login_code_message(code), bank_id=member.bank_id)
        record(
            None,
            "login.sms_code_sent",
            member,
            bank_id=member.bank_id,
            data={"notification": sms.pk, "address": (client_address(request) or "")[:45]},
        )


def _login_of(member: Member) -> User:
    """The member's login, created at their first login by code (no password, acting as the member)."""
    if member.user_id is not None:
        assert member.user is not None
        return member.user
    username = f"sms{member.pk}"
    if User.objects.filter(username=username).exists():
        username = f"sms{member.pk}-{secrets.token_hex(3)}"
    user = User.objects.create_user(username=username, password=None, display_name=member.name)
    Member.objects.filter(pk=member.pk).update(user=user)
    member.user = user
    record(None, "member.create_login", member, bank_id=member.bank_id, data={"by": "sms_code", "user": user.pk})
    return user


@subscribe(SmsCodeLogin)
def on_sms_code_login(event: SmsCodeLogin) -> list[User]:
    """Check a login code (the token request's transaction): the login it opens, or nothing. A wrong code counts
    and stays counted when the request is refused (the caller raises after its transaction commits)."""
    phone = mobile_number(event.phone)
    if phone is None:
        return []
    row = (
        SmsLoginCode.objects.select_for_update(of=("self",)).filter(phone=phone).select_related("member__user").first()
    )
    now = clock.now()
    if row is None or row.used_at is not None or row.wrong >= MAX_WRONG or row.expires_at <= now:
        return []
    if not constant_time_compare(row.code_hash, code_hash(phone, event.code)):
        SmsLoginCode.objects.filter(pk=row.pk).update(wrong=row.wrong + 1)
        record(None, "login.sms_code_wrong", row.member, bank_id=row.member.bank_id, data={"wrong": row.wrong + 1})
        return []
    member = row.member
    SmsLoginCode.objects.filter(pk=row.pk).update(used_at=now)
    if member.status != MemberStatus.ACTIVE or member.anonymised_at is not None or member.phone != phone:
        return []  # left, suspended, or changed phones since the code was sent
    user = _login_of(member)
    record(user, "login.sms_code", member, bank_id=member.bank_id)
    return [user]
