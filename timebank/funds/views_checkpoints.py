"""账本检查点: the published signed checkpoints of the hash chains, on the public disclosure pages (no login).

Only rows whose signature verifies with this deployment's key are listed or served: a database writer can
insert rows into the table but cannot sign them. A checkpoint holds bank ids, chain names, seqs, hashes and
times, and the public key: no personal data."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from timebank.ledger.checkpoint import Published, public_key_b64, published, read_published
from timebank.ledger.models import PublishedCheckpoint
from timebank.orgs.models import Org, OrgKind

LISTED = 20


def _rows(item: Published, names: dict[int, str]) -> list[dict[str, Any]]:
    rows = []
    for tip in (item.data or {}).get("chains", []):
        bank = tip.get("bank")
        rows.append(
            {
                "bank": names.get(bank, str(bank)) if bank is not None else None,
                "chain": tip.get("chain"),
                "seq": tip.get("seq"),
                "hash": str(tip.get("hash"))[:16],
            }
        )
    return rows


@require_GET
def checkpoints_page(request: HttpRequest) -> HttpResponse:
    items, skipped = published(limit=LISTED)
    names = dict(Org.objects.filter(kind=OrgKind.HEAD_OFFICE).values_list("pk", "name"))
    listed = [{"row": item.row, "chains": _rows(item, names)} for item in items]
    context = {"checkpoints": listed, "skipped": skipped, "public_key": public_key_b64()}
    return render(request, "funds/checkpoints.html", context)


@require_GET
def checkpoint_download(request: HttpRequest, checkpoint_id: str) -> HttpResponse:
    row = PublishedCheckpoint.objects.filter(pk=int(checkpoint_id)).first()
    if row is None or not read_published(row).valid:
        raise Http404
    response = HttpResponse(row.text.encode("utf-8"), content_type="application/json; charset=utf-8")
    name = f"timebank-checkpoint-{row.pk}-{row.made_at:%Y%m%dT%H%M%SZ}.json"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
