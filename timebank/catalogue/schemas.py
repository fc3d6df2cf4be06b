"""The schemas of the catalogue API: what its requests carry and what its answers hold (handlers: api.py)."""

from __future__ import annotations

from ninja import Schema

from timebank.api.types import Address, Id, Memo, OrgName
from timebank.catalogue.models import Category, CertificateKind, MenuEntry, ServiceItem, Tier

CategoryCode = Category


TierCode = Tier


CertificateCode = CertificateKind


class ItemIn(Schema):
    name: OrgName
    category: CategoryCode
    tier: TierCode
    requires_certificate: CertificateCode | None = None
    description: Memo = ""
    head_office_id: Id | None = None


class ItemOut(Schema):
    id: int
    name: str
    category: str
    tier: str
    multiplier: float
    requires_certificate: str | None
    description: str
    head_office_id: int
    active: bool

    # Read from the ServiceItem row; its tier's multiplier from its bank's rules (a list selects them with the rows).
    @staticmethod
    def resolve_multiplier(item: ServiceItem) -> float:
        return float(item.head_office.rules.multipliers[item.tier])

    @staticmethod
    def resolve_requires_certificate(item: ServiceItem) -> str | None:
        return item.requires_certificate or None


class MenuIn(Schema):
    service_item_id: Id
    times: Address = ""
    place: Address = ""
    active: bool = True


class MenuOut(Schema):
    org_id: int
    service_item_id: int
    name: str
    tier: str
    times: str
    place: str
    active: bool

    # Read from the MenuEntry row; the item's id, name and tier come from its service item.
    @staticmethod
    def resolve_service_item_id(entry: MenuEntry) -> int:
        return entry.item_id

    @staticmethod
    def resolve_name(entry: MenuEntry) -> str:
        return entry.item.name

    @staticmethod
    def resolve_tier(entry: MenuEntry) -> str:
        return entry.item.tier
