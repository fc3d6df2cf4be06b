"""The OpenAPI document is public and lists the contract's operations with their schemas."""

from __future__ import annotations

import pytest
from django.test import Client

CONTRACT = [
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/staff"),
    ("post", "/api/v1/register"),
    ("get", "/api/v1/orgs"),
    ("post", "/api/v1/orgs"),
    ("get", "/api/v1/orgs/{org_id}"),
    ("get", "/api/v1/orgs/{org_id}/rules"),
    ("patch", "/api/v1/orgs/{org_id}/rules"),
    ("get", "/api/v1/members"),
    ("post", "/api/v1/members"),
    ("get", "/api/v1/members/{member_id}"),
    ("patch", "/api/v1/members/{member_id}"),
    ("post", "/api/v1/members/{member_id}/approve"),
    ("post", "/api/v1/members/{member_id}/relatives"),
    ("get", "/api/v1/members/{member_id}/balance"),
    ("get", "/api/v1/members/{member_id}/statement"),
    ("get", "/api/v1/catalogue/items"),
    ("post", "/api/v1/catalogue/items"),
    ("post", "/api/v1/orders"),
    ("get", "/api/v1/orders"),
    ("get", "/api/v1/orders/{order_id}"),
    ("get", "/api/v1/orders/{order_id}/candidates"),
    *(
        ("post", f"/api/v1/orders/{{order_id}}/{a}")
        for a in ("dispatch", "accept", "decline", "check-in", "check-out", "confirm", "review", "cancel")
    ),
    ("post", "/api/v1/transfers"),
    ("post", "/api/v1/ledger/adjustments"),
    ("post", "/api/v1/service-records"),
    ("post", "/api/v1/settlements"),
    ("get", "/api/v1/goods"),
    ("post", "/api/v1/goods"),
    ("post", "/api/v1/goods/redemptions"),
    ("get", "/api/v1/stats"),
    ("get", "/api/v1/ledger/verify"),
]


@pytest.fixture(scope="module")
def document() -> dict:
    resp = Client().get("/api/v1/openapi.json")
    assert resp.status_code == 200
    return resp.json()


@pytest.mark.parametrize(("method", "path"), CONTRACT)
def test_contract_operation_is_documented(document: dict, method: str, path: str) -> None:
    operation = document["paths"][path][method]
    assert operation.get("responses"), (method, path)
    if method in ("post", "patch") and not path.endswith(("accept", "check-in", "check-out", "approve")):
        assert "requestBody" in operation or path.endswith(("decline", "confirm")), (method, path)


def test_docs_are_public() -> None:
    assert Client().get("/api/v1/docs").status_code == 200
