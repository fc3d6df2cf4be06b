"""Stored Idempotency-Key answers: declared in the OpenAPI document, and forgotten after N days."""

from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from timebank.audit.models import AuditEntry
from timebank.ops.models import IdempotentRequest
from timebank.ops.tasks import purge_idempotency


def test_every_write_declares_the_optional_header() -> None:
    document = Client().get("/api/v1/openapi.json").json()
    writes = 0
    for path, item in document["paths"].items():
        for method, op in item.items():
            headers = [p for p in op.get("parameters", []) if p["in"] == "header" and p["name"] == "Idempotency-Key"]
            if method in ("post", "put", "patch", "delete"):
                writes += 1
                assert len(headers) == 1, (method, path)
                assert headers[0]["required"] is False and headers[0]["description"]
                assert headers[0]["schema"]["maxLength"] == 64
            else:
                assert not headers, (method, path)
    assert writes > 20


def stored(key: str, age_days: float) -> IdempotentRequest:
    row = IdempotentRequest.objects.create(scope="user:1", key=key, fingerprint="f", method="POST", path="/api/v1/x")
    IdempotentRequest.objects.filter(pk=row.pk).update(created_at=timezone.now() - dt.timedelta(days=age_days))
    return row


@pytest.mark.django_db
def test_purge_removes_old_answers_and_keeps_new_ones() -> None:
    stored("old", 31)
    stored("older", 400)
    stored("new", 29)
    stored("today", 0)
    out = StringIO()
    call_command("purge_idempotency", stdout=out)
    assert "deleted 2" in out.getvalue()
    assert set(IdempotentRequest.objects.values_list("key", flat=True)) == {"new", "today"}
    assert AuditEntry.objects.filter(action="idempotency.purge", data__deleted=2).exists()
    call_command("purge_idempotency", "--days", "7", stdout=out)
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["today"]


@pytest.mark.django_db
def test_purge_as_a_task_and_refusing_nonsense_days() -> None:
    stored("old", 10)
    stored("new", 1)
    assert purge_idempotency.call(5) == 1
    assert list(IdempotentRequest.objects.values_list("key", flat=True)) == ["new"]
    with pytest.raises(CommandError):
        call_command("purge_idempotency", "--days", "0")
    assert IdempotentRequest.objects.count() == 1


@pytest.mark.django_db
def test_nothing_to_purge_writes_no_audit_row() -> None:
    stored("new", 1)
    call_command("purge_idempotency", stdout=StringIO())
    assert not AuditEntry.objects.filter(action="idempotency.purge").exists()
