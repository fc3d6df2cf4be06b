"""Writes of the exports app: the audit of every export, issuing service certificates."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.exports.models import IssuedCertificate
from timebank.lib import clock
from timebank.lib.errors import Conflict, Invalid
from timebank.members.models import Member, MemberStatus
from timebank.orgs.models import User


@transaction.atomic
def do_record_export(
    actor: User | None,
    name: str,
    *,
    bank_id: int | None,
    rows: int,
    unmasked_rows: int,
    filters: dict[str, Any],
) -> None:
    """Every export is on the audit chain: what, how many rows, and how many were shown unmasked."""
    record(
        actor,
        f"export.{name}"[:60],
        name,
        object_type="export",
        bank_id=bank_id,
        data={"rows": rows, "unmasked_rows": unmasked_rows, "filters": {k: str(v) for k, v in filters.items()}},
    )


@transaction.atomic
def do_issue_certificate(
    actor: User | None, member: Member, *, start: dt.date, end: dt.date
) -> tuple[IssuedCertificate, bool]:
    """Issue (or hand back) a service certificate for `member` and the period. The same period with the same
    content gives the same certificate again: re-downloading does not fill the register with copies.
    Returns (certificate, created)."""
    from timebank.exports.certificates import build_content, seal

    today = clock.localdate()
    if start > end:
        raise Invalid(_("开始日期不能晚于结束日期。"), code="invalid_period", fields={"from": "after_to"})
    if end > today or start < dt.date(2000, 1, 1) or (end - start).days > 366 * 10:
        raise Invalid(
            _("证明期间不合理（不能晚于今天，最长十年）。"), code="invalid_period", fields={"to": "out_of_range"}
        )
    if not member.is_volunteer:
        raise Conflict(_("只有志愿者可以开具志愿服务证明。"), code="not_a_volunteer")
    if member.status not in (MemberStatus.ACTIVE, MemberStatus.SUSPENDED):
        raise Conflict(_("会员当前状态不能开具证明。"), code="invalid_status")
    # of=("self",): the member only. A plain FOR UPDATE would also lock the joined rows, the head office among
    # them, queueing every other write that locks that org.
    member = Member.objects.select_for_update(of=("self",)).select_related("bank", "home_org").get(pk=member.pk)
    content = build_content(member, start, end)
    for cert in IssuedCertificate.objects.filter(
        member=member, period_start=start, period_end=end, revoked_at__isnull=True
    ).order_by("-pk")[:5]:
        same = {k: v for k, v in cert.content.items() if k != "issued_on"}
        if same == {k: v for k, v in content.items() if k != "issued_on"}:
            return cert, False
    serial = secrets.token_hex(8).upper()
    cert = IssuedCertificate.objects.create(
        serial=serial,
        bank_id=member.bank_id,
        member=member,
        period_start=start,
        period_end=end,
        content=content,
        digest=seal(serial, content),
        issued_by=actor if actor is not None and actor.pk else None,
    )
    record(
        actor,
        "certificate.issue",
        cert,
        bank_id=member.bank_id,
        data={
            "serial": serial,
            "member": member.pk,
            "period": content["period"],
            "total_minutes": content["total_minutes"],
        },
    )
    return cert, True


@transaction.atomic
def do_revoke_member_certificates(actor: User | None, member: Member, *, reason: str) -> int:
    """Revoke a member's certificates and reseal them without the name (a member who leaves and is anonymised)."""
    from timebank.exports.certificates import seal

    count = 0
    for cert in IssuedCertificate.objects.select_for_update().filter(member=member):
        content = {**cert.content, "name": member.name, "id_number_masked": ""}
        cert.content = content
        cert.digest = seal(cert.serial, content)
        cert.revoked_at = cert.revoked_at or clock.now()
        cert.save(update_fields=["content", "digest", "revoked_at"])
        count += 1
    if count:
        record(actor, "certificate.revoke", member, bank_id=member.bank_id, data={"count": count, "reason": reason})
    return count
