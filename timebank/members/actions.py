"""Registering, approving, editing and linking members."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Case, IntegerField, Q, Value, When
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import Note, record, record_all
from timebank.lib import clock, crypto, idnumber
from timebank.lib.errors import Conflict, Invalid
from timebank.lib.events import publish
from timebank.lib.phone import PHONE_RE
from timebank.lib.summaries import LOCK_TIMEOUT_SECONDS, Rebuilt, rebuild
from timebank.members import counts
from timebank.members.events import MemberAnonymised, MemberRegistered, MemberStatusChanged
from timebank.members.models import (
    Consent,
    ConsentScope,
    Gender,
    Member,
    MemberStatus,
    RecipientCategory,
    RelativeLink,
)
from timebank.orgs.actions import TEMPORARY_ALPHABET, TEMPORARY_LENGTH, check_login, check_name, create_login
from timebank.orgs.models import Org, OrgKind, User

LIST_LIMIT = 50
ITEM_LIMIT = 50
HOME_PRECISION = Decimal("0.001")  # degrees: about 110 m of latitude
# Fields whose new value an audit entry may show; of all others (name, phone, birth date, ID number, address,
# coordinates, categories, skills...) only the name of the field is recorded, so anonymising a member leaves no
# personal value behind in the audit chain, which cannot be rewritten.
AUDIT_VALUE_FIELDS = frozenset({"home_org", "is_volunteer", "is_recipient", "referred_by"})


@dataclass
class MemberInput:
    """What a caller may set on a member. `None` means "leave as it is" on update."""

    name: str | None = None
    phone: str | None = None
    birth_date: dt.date | None = None
    gender: str | None = None
    id_number: str | None = None
    address: str | None = None
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    roles: list[str] | None = None
    recipient_categories: list[str] | None = None
    skills: list[str] | None = None
    occupation: str | None = None
    willing_services: list[str] | None = None
    availability: dict[str, list[str]] | None = None
    referred_by_id: int | None = None
    home_org_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _str_list(value: list[str], name: str) -> list[str]:
    if len(value) > LIST_LIMIT:
        raise Invalid(_("列表太长。"), fields={name: "too_long"})
    out = []
    for item in value:
        text = item.strip()
        if not text or len(text) > ITEM_LIMIT:
            raise Invalid(_("列表中有空项或过长的项。"), fields={name: "invalid_item"})
        out.append(text)
    return sorted(set(out))


def _apply(member: Member, data: MemberInput, *, creating: bool) -> list[str]:
    """Validate `data` onto `member`; returns the changed field names. Raises Invalid (422)."""
    changed: list[str] = []

    def put(name: str, value: Any) -> None:
        setattr(member, name, value)
        changed.append(name)

    if data.name is not None:
        put("name", check_name(data.name, max_length=50))
    elif creating:
        raise Invalid(_("请填写姓名。"), fields={"name": "required"})
    if data.phone is not None:
        phone = data.phone.strip()
        if phone and not PHONE_RE.match(phone):
            raise Invalid(_("电话号码格式不对。"), fields={"phone": "invalid"})
        put("phone", phone)
    if data.birth_date is not None:
        today = clock.localdate()
        if data.birth_date > today or data.birth_date < dt.date(1900, 1, 1):
            raise Invalid(_("出生日期不合理。"), fields={"birth_date": "out_of_range"})
        put("birth_date", data.birth_date)
    if data.gender is not None:
        if data.gender not in Gender.values:
            raise Invalid(_("性别只能是 male 或 female。"), fields={"gender": "invalid"})
        put("gender", data.gender)
    if data.id_number is not None:
        try:
            number = idnumber.normalise(data.id_number)
        except idnumber.IdNumberError as exc:
            if exc.reason == "checksum":
                raise Invalid(
                    _("身份证号校验位不正确，请核对。"), code="id_number_checksum", fields={"id_number": "checksum"}
                ) from None
            raise Invalid(
                _("身份证号格式不正确，应为 18 位。"), code="id_number_invalid", fields={"id_number": exc.reason}
            ) from None
        put("id_number_encrypted", crypto.encrypt(number))
        put("id_number_hash", crypto.keyed_hash(number, scope="id_number"))
        put("id_number_masked", idnumber.mask(number))
        if data.birth_date is None and member.birth_date is None:
            put("birth_date", idnumber.birth_date(number))
    if data.address is not None:
        address = data.address.strip()
        if len(address) > 200:
            raise Invalid(_("地址太长。"), fields={"address": "too_long"})
        put("address_encrypted", crypto.encrypt(address) if address else "")
    for name, bound in (("latitude", 90), ("longitude", 180)):
        value = getattr(data, name)
        if value is not None:
            if not value.is_finite() or abs(value) > bound:
                raise Invalid(_("坐标超出范围。"), fields={name: "out_of_range"})
            # A home to about 100 m is enough to match volunteers nearby; a door-exact point is not kept.
            put(name, value.quantize(HOME_PRECISION))
    if data.roles is not None:
        unknown = set(data.roles) - {"volunteer", "recipient"}
        if unknown:
            raise Invalid(_("角色只能是 volunteer 或 recipient。"), fields={"roles": "invalid"})
        put("is_volunteer", "volunteer" in data.roles)
        put("is_recipient", "recipient" in data.roles)
    if data.recipient_categories is not None:
        if set(data.recipient_categories) - set(RecipientCategory.values):
            raise Invalid(_("未知的服务对象类别。"), fields={"recipient_categories": "invalid"})
        put("recipient_categories", sorted(set(data.recipient_categories)))
    for name in ("skills", "willing_services"):
        value = getattr(data, name)
        if value is not None:
            put(name, _str_list(value, name))
    if data.occupation is not None:
        if len(data.occupation) > 100:
            raise Invalid(_("职业太长。"), fields={"occupation": "too_long"})
        put("occupation", data.occupation.strip())
    if data.availability is not None:
        days = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
        slots = {"morning", "afternoon", "evening"}
        if set(data.availability) - days or any(set(v) - slots for v in data.availability.values()):
            raise Invalid(_("空闲时间格式不对。"), fields={"availability": "invalid"})
        put("availability", {d: sorted(set(v)) for d, v in data.availability.items()})
    if data.referred_by_id is not None:
        referrer = Member.objects.filter(pk=data.referred_by_id, bank_id=member.bank_id).first()
        if referrer is None or referrer.pk == member.pk:
            raise Invalid(_("推荐人不存在。"), fields={"referred_by_id": "unknown"})
        put("referred_by", referrer)
    return changed


# ID numbers. Every member staff accepted (not `pending`) holds theirs alone in the bank; the database's partial
# unique constraint keeps it so under any race. A pending self-registration holds nothing: it may give a number
# that is already a member's, since the anonymous answer must never tell whether a number is taken. The staff who
# review it see the duplicate (`duplicate_of`), and approving it is 409.


def _id_number_holder(member: Member) -> int | None:
    """The accepted member of the bank, other than this one, who has this member's ID number."""
    if not member.id_number_hash:
        return None
    return (
        Member.objects.filter(bank_id=member.bank_id, id_number_hash=member.id_number_hash)
        .exclude(status=MemberStatus.PENDING)
        .exclude(pk=member.pk)
        .values_list("pk", flat=True)
        .first()
    )


def duplicate_of(member: Member) -> int | None:
    """Whom a pending registration duplicates: the accepted holder of its number, else the earliest other pending
    registration that gave it. Worked out when asked (nothing to keep in step when the holder changes). One query,
    whatever the answer, so registering takes as long either way. For staff eyes only."""
    if member.status != MemberStatus.PENDING or not member.id_number_hash:
        return None
    pending_last = Case(When(status=MemberStatus.PENDING, then=Value(1)), default=Value(0), output_field=IntegerField())
    return (
        Member.objects.filter(bank_id=member.bank_id, id_number_hash=member.id_number_hash)
        .exclude(pk=member.pk)
        .order_by(pending_last, "pk")
        .values_list("pk", flat=True)
        .first()
    )


def _duplicate(holder: int | None = None) -> Conflict:
    message = str(_("本银行已有这个身份证号的会员。"))
    if holder is not None:
        message = _("本银行已有这个身份证号的会员（会员 #%(id)s），这份注册是重复的，不能通过审核。") % {"id": holder}
    return Conflict(message, code="duplicate_id_number", fields={"id_number": "duplicate"})


def _save_checking_duplicate(member: Member, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            member.save(**kwargs)
    except IntegrityError:
        if member.status != MemberStatus.PENDING and _id_number_holder(member) is not None:
            raise _duplicate() from None
        raise


@transaction.atomic
def do_register_member(
    actor: User | None,
    *,
    home_org: Org,
    data: MemberInput,
    login: tuple[str, str] | None = None,
    approved: bool,
    temporary: bool = False,
) -> Member:
    """Staff-created members are active at once; self-registered ones wait for approval. With `temporary`, the
    login's password is a temporary one staff hand over (`temporary_password()`): changed at its first login.

    The username is checked first: its answer must not depend on anything else in the body, least of all the ID
    number. A self-registration never tells whether its ID number is already a member's (see `_same_number`)."""
    assert home_org.head_office_id is not None
    member = Member(
        home_org=home_org,
        bank_id=home_org.head_office_id,
        status=MemberStatus.ACTIVE if approved else MemberStatus.PENDING,
    )
    if login is not None:
        username, password = check_login(*login)
    _apply(member, data, creating=True)
    if approved and _id_number_holder(member) is not None:
        raise _duplicate()
    # Looked up for every self-registration, taken or not: the audit entry tells staff, the answer tells nobody.
    duplicate = None if approved else duplicate_of(member)
    if login is not None:
        member.user = _create_member_login(member, username, password, temporary=temporary)
    _save_checking_duplicate(member, force_insert=True)
    publish(MemberRegistered(actor, member))  # the ledger opens the member's accounts
    record(
        actor,
        "member.register",
        member,
        bank_id=member.bank_id,
        data={
            "home_org": home_org.pk,
            "status": member.status,
            "self": actor is None,
            "duplicate_of": duplicate,
        },
    )
    return member


def temporary_password() -> str:
    """A temporary password for a login staff create for a member (a walk-in, or one who had none): read out or
    written down once, like a reset's (the same alphabet and length)."""
    return "".join(secrets.choice(TEMPORARY_ALPHABET) for _ in range(TEMPORARY_LENGTH))


def _create_member_login(member: Member, username: str, password: str, *, temporary: bool) -> User:
    """The member's own login (`check_login` found the username free). A temporary password must be changed at
    the first login and opens one login within the reset's validity, as after a reset by staff."""
    if not temporary:
        return create_login(username, password, display_name=member.name)
    return create_login(
        username, password, display_name=member.name, must_change_password=True, password_reset_at=clock.now()
    )


@transaction.atomic
def do_update_member(
    actor: User | None,
    member: Member,
    data: MemberInput,
    *,
    new_home: Org | None = None,
    login: tuple[str, str] | None = None,
    temporary: bool = False,
) -> Member:
    """Edit a member; with `login` (username, password), also give a member who has none their own login
    (409 `has_login` when they have one; with `temporary`, see `do_register_member`). All or nothing."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if login is not None:
        if member.anonymised_at is not None:
            raise Conflict(_("这位会员已经注销。"), code="member_anonymised")
        if member.user_id is not None:
            raise Conflict(_("这位会员已经有登录账号了。"), code="has_login", fields={"login": "has_login"})
        username, password = check_login(*login)
    changed = _apply(member, data, creating=False)
    if new_home is not None and new_home.pk != member.home_org_id:
        if new_home.head_office_id != member.bank_id:
            raise Conflict(_("新社区属于另一家时间银行，请办理跨行转移。"), code="other_bank")
        # 通存通兑: the accounts belong to the member and the bank, so moving home moves nothing in the ledger.
        member.home_org = new_home
        changed.append("home_org")
    if login is not None:
        member.user = _create_member_login(member, username, password, temporary=temporary)
        changed.append("user")
    if changed:
        _save_checking_duplicate(member, update_fields=[*changed, "updated_at"])
    safe = sorted({f for f in changed if f in AUDIT_VALUE_FIELDS})
    fields = sorted({_audit_field(f) for f in changed if f != "user"})
    if fields or login is None:
        record(
            actor,
            "member.update",
            member,
            bank_id=member.bank_id,
            data={
                "fields": fields,
                "values": {f: str(getattr(member, f + "_id", getattr(member, f, ""))) for f in safe},
            },
        )
    if login is not None:
        assert member.user is not None
        record(
            actor,
            "member.add_login",
            member,
            bank_id=member.bank_id,
            data={"user": member.user.pk, "temporary": temporary},
        )
    return member


def _audit_field(name: str) -> str:
    """The caller's name of a changed field: `id_number_hash` and its kin are one `id_number`."""
    for prefix in ("id_number", "address"):
        if name.startswith(prefix):
            return prefix
    return name


def _set_status(actor: User | None, member: Member, allowed_from: set[str], to: str, action: str) -> Member:
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status not in allowed_from:
        raise Conflict(_("会员当前状态不能办理这项操作。"), code="invalid_status", fields={"status": member.status})
    fields = ["status", "updated_at"]
    data: dict[str, Any] = {"status": to}
    was_pending = member.status == MemberStatus.PENDING
    if was_pending and member.id_number_hash:
        if to == MemberStatus.ACTIVE:
            holder = _id_number_holder(member)
            if holder is not None:
                raise _duplicate(holder)
        else:
            # A registration refused (or withdrawn) before approval keeps no ID number: it was never accepted as
            # this person's, and a row that left must not hold a number its owner may still register with.
            member.id_number_encrypted = member.id_number_hash = member.id_number_masked = ""
            fields += ["id_number_encrypted", "id_number_hash", "id_number_masked"]
            data["id_number_dropped"] = True
    member.status = to
    # Two approvals of one number at once: the constraint refuses the second (409), which waits for the first.
    _save_checking_duplicate(member, update_fields=fields)
    record(actor, action, member, bank_id=member.bank_id, data=data)
    publish(MemberStatusChanged(actor, member))  # the teams app takes a suspended or departed leader's role away
    return member


@transaction.atomic
def do_approve_member(actor: User | None, member: Member) -> Member:
    return _set_status(actor, member, {MemberStatus.PENDING}, MemberStatus.ACTIVE, "member.approve")


def _close_login(member: Member) -> None:
    """A suspended or departed member's tokens stop now; their sessions end at the next request and no new login
    is allowed while the status lasts (timebank.orgs.access.login_allowed). Reactivating needs a new login."""
    if member.user_id is not None:
        from timebank.orgs.actions import revoke_tokens

        assert member.user is not None
        revoke_tokens(member.user)


@transaction.atomic
def do_suspend_member(actor: User | None, member: Member) -> Member:
    member = _set_status(actor, member, {MemberStatus.ACTIVE}, MemberStatus.SUSPENDED, "member.suspend")
    _close_login(member)
    return member


@transaction.atomic
def do_reactivate_member(actor: User | None, member: Member) -> Member:
    return _set_status(actor, member, {MemberStatus.SUSPENDED}, MemberStatus.ACTIVE, "member.reactivate")


@transaction.atomic
def do_member_leaves(actor: User | None, member: Member) -> Member:
    member = _set_status(
        actor,
        member,
        {MemberStatus.ACTIVE, MemberStatus.SUSPENDED, MemberStatus.PENDING},
        MemberStatus.LEFT,
        "member.leave",
    )
    _close_login(member)
    return member


@transaction.atomic
def do_link_relative(
    actor: User | None, member: Member, relative: Member, relation: str, *, contact: bool = False
) -> RelativeLink:
    """Link two members as relatives (both rows). `contact`: the relative becomes the member's contact, who gets
    the member's SMS (an accepted order's code) in place of any earlier contact."""
    relation = relation.strip()
    if not relation or len(relation) > 30:
        raise Invalid(_("请填写亲属关系（30 字以内）。"), fields={"relation": "invalid"})
    if relative.pk == member.pk:
        raise Invalid(_("不能把自己设为亲属。"), fields={"relative_id": "self"})
    if relative.bank_id != member.bank_id:
        raise Invalid(_("亲属必须是同一家时间银行的会员。"), fields={"relative_id": "other_bank"})
    if RelativeLink.objects.filter(member=member, relative=relative).exists():
        raise Conflict(_("已经是亲属了。"), code="already_linked")
    from timebank.lib.races import unique_or_conflict

    # Both directions, the lower member id's row first: two links of one pair at once (either way round) wait on
    # the same row instead of deadlocking, and the later one is the 409 the check above would have been.
    rows = sorted([(member, relative), (relative, member)], key=lambda pair: pair[0].pk)
    with unique_or_conflict(_("已经是亲属了。"), code="already_linked"):
        made = {a.pk: RelativeLink.objects.create(member=a, relative=b, relation=relation) for a, b in rows}
    link = made[member.pk]
    if contact:
        RelativeLink.objects.filter(member=member, is_contact=True).update(is_contact=False)
        RelativeLink.objects.filter(pk=link.pk).update(is_contact=True)
        link.is_contact = True
    record(
        actor,
        "member.link_relative",
        member,
        bank_id=member.bank_id,
        data={"relative": relative.pk, "relation": relation, "contact": contact},
    )
    return link


@transaction.atomic
def do_view_id_number(actor: User | None, member: Member) -> str:
    """Unmasked ID numbers are shown only through here, and every showing is on the audit chain."""
    record(actor, "member.view_id_number", member, bank_id=member.bank_id)
    return member.id_number()


def contact_fields(member: Member) -> list[str]:
    """The contact fields a member has on file: what an unmasked view shows (and audits)."""
    return [f for f, value in (("phone", member.phone), ("address", member.address_encrypted)) if value]


def do_view_personal_data(actor: User | None, shown: Sequence[tuple[Member, Sequence[str]]], *, via: str) -> None:
    """Unmasked phones and addresses are shown only on one object's page or endpoint, and each showing is on the
    audit chain (like `do_view_id_number`): whose, which fields, where. Lists show them masked. A member reading
    their own is not recorded. One chain lock per bank, however many members the page shows."""
    me = getattr(actor, "member", None) if actor is not None and actor.pk else None
    by_bank: dict[int, list[Note]] = {}
    for member, fields in shown:
        if not fields or (me is not None and me.pk == member.pk):
            continue
        note = Note(actor, "member.view_personal_data", member, data={"fields": sorted(fields), "via": via[:60]})
        by_bank.setdefault(member.bank_id, []).append(note)
    if not by_bank:
        return
    with transaction.atomic():
        for bank_id, notes in sorted(by_bank.items()):
            record_all(notes, bank_id=bank_id)


# --- Personal data (PIPL): separate consents and anonymising a member who leaves ---------------------------

CONSENT_CHANNELS = ("web", "api", "staff")


@transaction.atomic
def do_record_consent(
    actor: User | None, member: Member, *, scope: str, granted: bool, channel: str, text_version: str = "2025-1"
) -> Consent:
    """Record a member giving (or withdrawing) one separate consent, with its date and scope."""
    if scope not in ConsentScope.values:
        raise Invalid(_("未知的同意事项。"), code="invalid_consent_scope", fields={"scope": "invalid"})
    if channel not in CONSENT_CHANNELS:
        raise Invalid(_("未知的登记渠道。"), fields={"channel": "invalid"})
    if member.anonymised_at is not None:
        raise Conflict(_("这位会员已经注销。"), code="member_anonymised")
    consent = Consent.objects.create(
        member=member,
        scope=scope,
        granted=granted,
        channel=channel,
        text_version=text_version[:20],
        recorded_by=actor if actor is not None and actor.pk else None,
    )
    record(
        actor,
        "member.consent",
        member,
        bank_id=member.bank_id,
        data={"scope": scope, "granted": granted, "channel": channel, "text_version": consent.text_version},
    )
    return consent


@transaction.atomic
def do_record_consents(actor: User | None, member: Member, choices: dict[str, bool], *, channel: str) -> list[Consent]:
    """The consents of a registration form: every scope recorded, ticked or not (an unticked box is a refusal)."""
    return [do_record_consent(actor, member, scope=s, granted=g, channel=channel) for s, g in choices.items()]


def current_consents(member: Member) -> dict[str, Consent | None]:
    """The latest consent row per scope (None: never asked)."""
    latest: dict[str, Consent | None] = dict.fromkeys(ConsentScope.values)
    for consent in Consent.objects.filter(member=member).order_by("created_at", "pk"):
        latest[consent.scope] = consent
    return latest


ANONYMOUS_NAME = "已注销会员 #%(id)s"


@transaction.atomic
def do_anonymise_member(actor: User | None, member: Member) -> Member:
    """A member who leaves is anonymised: the person is removed, the row stays so the ledger still balances and the
    audit chain still verifies (legs and audit entries are not touched). Idempotent refusal: 409 the second time."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.anonymised_at is not None:
        raise Conflict(_("这位会员已经注销过了。"), code="member_anonymised")
    member.name = ANONYMOUS_NAME % {"id": member.pk}
    member.phone = ""
    member.birth_date = None
    member.gender = ""
    member.id_number_encrypted = ""
    member.id_number_hash = ""
    member.id_number_masked = ""
    member.address_encrypted = ""
    member.latitude = None
    member.longitude = None
    member.recipient_categories = []
    member.skills = []
    member.occupation = ""
    member.willing_services = []
    member.availability = {}
    member.referred_by = None
    member.status = MemberStatus.LEFT
    member.anonymised_at = clock.now()
    member.save()
    unlinked = RelativeLink.objects.filter(Q(member=member) | Q(relative=member)).delete()[0]
    if member.user_id is not None:
        user = User.objects.select_for_update().get(pk=member.user_id)
        user.username = f"left-{member.pk}-{secrets.token_hex(4)}"
        user.display_name = ""
        user.first_name = user.last_name = user.email = ""
        user.is_active = False
        user.set_unusable_password()
        user.save()
        user.api_tokens.filter(revoked_at__isnull=True).update(revoked_at=clock.now())
    # Other places that copied the person's data forget it (the hotline's call log, the exports' certificates).
    publish(MemberAnonymised(actor, member))
    record(actor, "member.anonymise", member, bank_id=member.bank_id, data={"relative_links_removed": unlinked})
    return member


@transaction.atomic
def do_rebuild_member_counts(
    actor: User | None, bank: Org, *, dry_run: bool = False, lock_timeout: float = LOCK_TIMEOUT_SECONDS
) -> Rebuilt:
    """Make the bank's head counts (`DailyMemberCount`) equal to its active members counted again (`manage.py
    rebuild_summaries`): only the rows that differ are written, under a lock that holds off the table's writers until
    commit (see `timebank.lib.summaries`). Audited in the global chain, not the bank's: the bank's writers may hold its
    chain head while they wait for the table, and the rebuild must not wait for them in turn."""
    if bank.kind != OrgKind.HEAD_OFFICE:
        raise Invalid(_("汇总按总行保存：%(name)s 不是总行。") % {"name": bank.name}, code="not_head_office")
    done = rebuild(
        counts.SUMMARY,
        bank.pk,
        counts.recount_sql("AND m.bank_id = %s"),
        [MemberStatus.ACTIVE, bank.pk],
        dry_run=dry_run,
        lock_timeout=lock_timeout,
    )
    if done.rows and not dry_run:
        record(actor, "summary.rebuild", bank, bank_id=None, data=done.as_data())
    return done
