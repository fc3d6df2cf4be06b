"""What a volunteer service certificate says, its seal, and how the public check page judges one.

The content is computed once, at issue, from the ledger-backed service history (confirmed orders and service
records in the period) and frozen on the `IssuedCertificate` row. Its digest is an HMAC of the canonical JSON
under the server's hash key: nobody without the key can alter a row (or invent one) and keep a valid seal.
The QR code carries the serial and the first characters of the digest; the check page rejects an unknown
serial, a check code that does not match, a row whose content no longer matches its seal, and a revoked one.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Sum

from timebank.catalogue.models import Category
from timebank.exports.models import IssuedCertificate
from timebank.lib import clock, crypto
from timebank.members.models import Member
from timebank.orders.models import Order, ServiceRecord

CHECK_CODE_LENGTH = 16
CONTENT_VERSION = 1


def service_hours(member: Member, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    """Service minutes by category in [start, end] (local dates): confirmed orders and service records."""
    totals: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "minutes": 0, "credited_minutes": 0})
    orders = (
        Order.objects.credited()
        .filter(
            volunteer=member,
            transaction__isnull=False,
            confirmed_at__date__gte=start,
            confirmed_at__date__lte=end,
        )
        .values("service_item__category")
        .annotate(n=Count("pk"), minutes=Sum("actual_minutes"), credited=Sum("credited_minutes"))
    )
    records = (
        ServiceRecord.objects.filter(volunteer=member, served_at__date__gte=start, served_at__date__lte=end)
        .values("service_item__category")
        .annotate(n=Count("pk"), minutes=Sum("minutes"), credited=Sum("credited_minutes"))
    )
    for row in [*orders, *records]:
        t = totals[row["service_item__category"]]
        t["count"] += row["n"]
        t["minutes"] += row["minutes"] or 0
        t["credited_minutes"] += row["credited"] or 0
    order = {code: i for i, code in enumerate(Category.values)}
    return [{"category": code, **totals[code]} for code in sorted(totals, key=lambda c: order.get(c, 99))]


def build_content(member: Member, start: dt.date, end: dt.date) -> dict[str, Any]:
    by_category = service_hours(member, start, end)
    return {
        "v": CONTENT_VERSION,
        "bank": member.bank.name,
        "org": member.home_org.name,
        "member_id": member.pk,
        "name": member.name,
        "id_number_masked": member.id_number_masked,
        "period": [start.isoformat(), end.isoformat()],
        "by_category": by_category,
        "total_count": sum(c["count"] for c in by_category),
        "total_minutes": sum(c["minutes"] for c in by_category),
        "total_credited_minutes": sum(c["credited_minutes"] for c in by_category),
        "issued_on": clock.localdate().isoformat(),
    }


def canonical(serial: str, content: dict[str, Any]) -> str:
    return json.dumps({"serial": serial, "content": content}, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def seal(serial: str, content: dict[str, Any]) -> str:
    return crypto.keyed_hash(canonical(serial, content), scope="service_certificate")


def check_code(cert: IssuedCertificate) -> str:
    return cert.digest[:CHECK_CODE_LENGTH]


def category_label(code: str) -> str:
    try:
        return str(Category(code).label)
    except ValueError:
        return code


@dataclass
class Verdict:
    status: str  # genuine | unknown | mismatch | altered | revoked
    cert: IssuedCertificate | None = None

    @property
    def genuine(self) -> bool:
        return self.status == "genuine"


def judge(serial: str, code: str | None) -> Verdict:
    cert = IssuedCertificate.objects.filter(serial=serial.upper()).first()
    if cert is None:
        return Verdict("unknown")
    if not hmac.compare_digest(seal(cert.serial, cert.content), cert.digest):
        return Verdict("altered", cert)
    if code is not None and not hmac.compare_digest(code.lower(), check_code(cert)):
        return Verdict("mismatch", cert)
    if cert.revoked_at is not None:
        return Verdict("revoked", cert)
    return Verdict("genuine", cert)
