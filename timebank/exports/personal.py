"""A member's own data, as one document (PIPL: the right to a copy). The JSON and the PDF show the same."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from timebank.exports.models import IssuedCertificate
from timebank.ledger.models import Leg
from timebank.ledger.statement_words import balance_of, describe
from timebank.lib import clock
from timebank.members.actions import current_consents
from timebank.members.models import Consent, Member, RelativeLink
from timebank.orders.models import Order

LIMIT = 5000  # per list; more than any member has in years


def _iso(value: Any) -> str | None:
    return timezone.localtime(value).isoformat() if value is not None else None


def member_data(member: Member) -> dict[str, Any]:
    consents = current_consents(member)
    balance = balance_of(member.pk)
    return {
        "generated_at": _iso(clock.now()),
        "member": {
            "id": member.pk,
            "name": member.name,
            "phone": member.phone,
            "birth_date": member.birth_date.isoformat() if member.birth_date else None,
            "gender": member.gender,
            "id_number": member.id_number(),
            "address": member.address,
            "bank": member.bank.name,
            "home_org": member.home_org.name,
            "roles": member.roles,
            "recipient_categories": member.recipient_categories,
            "skills": member.skills,
            "occupation": member.occupation,
            "willing_services": member.willing_services,
            "availability": member.availability,
            "status": member.status,
            "created_at": _iso(member.created_at),
        },
        "balances": {p.kind: p.minutes for p in balance.parts},
        # The one total and its parts, in words (statement_words): what the PDF shows.
        "balance": {
            "total_minutes": balance.total,
            "total_words": f"{balance.total_label}: {balance.total_words}",
            "parts": [
                {"kind": p.kind, "label": p.label, "minutes": p.minutes, "words": p.words} for p in balance.parts
            ],
            "spendable_minutes": balance.spendable,
            "spendable_words": f"{balance.spendable_label}: {balance.spendable_words} {balance.why_two_numbers}",
        },
        "relatives": [
            {"member_id": link.relative_id, "name": link.relative.name, "relation": link.relation}
            for link in RelativeLink.objects.filter(member=member).select_related("relative")[:LIMIT]
        ],
        "consents": [
            {
                "scope": c.scope,
                "granted": c.granted,
                "channel": c.channel,
                "text_version": c.text_version,
                "at": _iso(c.created_at),
            }
            for c in Consent.objects.filter(member=member).order_by("created_at", "pk")[:LIMIT]
        ],
        "consents_now": {scope: (c.granted if c else None) for scope, c in consents.items()},
        # Each line says what happened to the member (服务他人, 转赠给…), as 我的时间 does; `kind` is the bank's name.
        "statement": [
            {
                "at": _iso(line.leg.transaction.created_at),
                "words": line.words,
                "kind": line.leg.transaction.kind,
                "memo": line.leg.transaction.memo,
                "account": line.leg.account.kind,
                "minutes": line.leg.minutes,
                "balance_after_minutes": line.leg.balance_after_minutes,
            }
            for line in describe(
                Leg.objects.filter(account__member=member)
                .select_related("transaction", "account")
                .order_by("-pk")[:LIMIT],
                member.pk,
            )
        ],
        "orders": [
            {
                "id": o.pk,
                "as": "recipient" if o.recipient_id == member.pk else "volunteer",
                "service_item": o.service_item.name,
                "state": o.state,
                "scheduled_start": _iso(o.scheduled_start),
                "credited_minutes": o.credited_minutes,
            }
            for o in (Order.objects.filter(recipient=member) | Order.objects.filter(volunteer=member))
            .select_related("service_item")
            .order_by("-pk")[:LIMIT]
        ],
        "certificates": [
            {
                "serial": c.serial,
                "period": f"{c.period_start.isoformat()} ~ {c.period_end.isoformat()}",
                "issued_at": _iso(c.created_at),
            }
            for c in IssuedCertificate.objects.filter(member=member).order_by("-pk")[:LIMIT]
        ],
    }
