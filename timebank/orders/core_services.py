"""Core services first (issue 14): where an old person or a relative picks a service, the few they order most
come first and the rest wait behind 更多, so the first screen holds what they came for. One home for the rule.

The order: the emergency tile (紧急救援) always first; then by how often this person ordered each service; then by
how often their community did; ties keep the catalogue's order. Cancelled orders do not count."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Count, Q

from timebank.catalogue.models import ServiceItem
from timebank.members.models import Member
from timebank.orders.models import Order, OrderState

# The emergency service (its name in the catalogue): its tile shows 120 and 12349 first, then raises an urgent
# order for now, which notifies the on-duty staff and the relatives at once (as the hotline's urgent orders do).
EMERGENCY_ITEM = "紧急救援"
# Tiles shown at once (the emergency tile among them); a 360 px phone in large text shows about this many.
CORE_TILES = 6


@dataclass(frozen=True)
class ServiceChoice:
    """The services to offer, split into the tiles shown at once and those behind 更多."""

    first: list[ServiceItem]
    more: list[ServiceItem]


def order_counts(recipient: Member) -> dict[int, tuple[int, int]]:
    """For each service item: (orders for this person, orders in their home community), in one query."""
    mine = Q(recipient=recipient)
    community = Q(org_id=recipient.home_org_id)
    rows = (
        Order.objects.filter(mine | community)
        .exclude(state=OrderState.CANCELLED)
        .values("service_item_id")
        .annotate(own=Count("pk", filter=mine), near=Count("pk", filter=community))
    )
    return {row["service_item_id"]: (row["own"], row["near"]) for row in rows}


def core_services_first(items: Sequence[ServiceItem], recipient: Member, *, shown: int = CORE_TILES) -> ServiceChoice:
    """`items` (the community's menu, in catalogue order) ranked for `recipient`: see the module's rule."""
    counts = order_counts(recipient)

    def rank(item: ServiceItem) -> tuple[bool, int, int]:
        own, near = counts.get(item.pk, (0, 0))
        return (item.name != EMERGENCY_ITEM, -own, -near)

    ranked = sorted(items, key=rank)  # stable: ties keep the catalogue's order
    shown = max(shown, 1)
    return ServiceChoice(first=ranked[:shown], more=ranked[shown:])
