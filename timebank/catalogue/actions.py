from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from timebank.audit.actions import record
from timebank.catalogue.models import Category, CertificateKind, MenuEntry, ServiceItem, Tier
from timebank.lib.errors import Conflict, Invalid
from timebank.orgs.actions import check_name
from timebank.orgs.models import Org, Rules, User


def multiplier_for(head_office_id: int, tier: str) -> Decimal:
    multipliers = Rules.objects.values_list("multipliers", flat=True).get(head_office_id=head_office_id)
    return Decimal(str(multipliers[tier]))


def weighted_minutes(minutes: int, multiplier: Decimal) -> int:
    """Credited minutes: actual × multiplier, rounded half up to a whole minute (the contract's rule)."""
    return int((Decimal(minutes) * multiplier).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@transaction.atomic
def do_create_service_item(
    actor: User | None,
    *,
    head_office: Org,
    name: str,
    category: str,
    tier: str,
    requires_certificate: str | None = None,
    description: str = "",
) -> ServiceItem:
    name = check_name(name)
    if category not in Category.values:
        raise Invalid(_("未知的服务类别。"), fields={"category": "invalid"})
    if tier not in Tier.values:
        raise Invalid(_("服务等级只能是 ordinary、technical 或 professional。"), fields={"tier": "invalid"})
    if requires_certificate and requires_certificate not in CertificateKind.values:
        raise Invalid(_("未知的资质类型。"), fields={"requires_certificate": "invalid"})
    try:
        with transaction.atomic():
            item = ServiceItem.objects.create(
                head_office=head_office,
                name=name,
                category=category,
                tier=tier,
                requires_certificate=requires_certificate or "",
                description=description.strip(),
            )
    except IntegrityError:
        raise Conflict(_("已有同名的服务项目。"), code="duplicate_name") from None
    record(actor, "catalogue.create_item", item, bank_id=head_office.pk, data={"name": name, "tier": tier})
    return item


@transaction.atomic
def do_set_menu_entry(
    actor: User | None, *, org: Org, item: ServiceItem, times: str = "", place: str = "", active: bool = True
) -> MenuEntry:
    if item.head_office_id != org.head_office_id:
        raise Invalid(_("服务项目属于另一家时间银行。"), fields={"service_item_id": "other_bank"})
    entry, _created = MenuEntry.objects.update_or_create(
        org=org, item=item, defaults={"times": times.strip(), "place": place.strip(), "active": active}
    )
    assert org.head_office_id is not None
    record(actor, "catalogue.menu", entry, bank_id=org.head_office_id, data={"item": item.pk, "active": active})
    return entry
