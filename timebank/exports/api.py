"""Personal data (PIPL) in the API: a member's copy of their data, separate consents, anonymising a leaver."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from timebank.api.types import PathId
from timebank.exports.access import access_own_member
from timebank.exports.actions import do_record_export
from timebank.exports.pdf import render_personal_data
from timebank.exports.personal import member_data
from timebank.exports.schemas import AnonymisedOut, ConsentIn, ConsentOut
from timebank.ledger.statement_words import balance_of
from timebank.members.access import access_member, access_member_to_manage
from timebank.members.actions import current_consents, do_anonymise_member, do_record_consent
from timebank.members.models import Consent, Member
from timebank.orgs.models import User

router = Router(tags=["personal data"])


def _me(request: HttpRequest) -> tuple[User, Member]:
    user = request.user
    assert isinstance(user, User)
    return user, access_own_member(user)


def _consents(member: Member) -> list[dict[str, Any]]:
    out = []
    for scope, c in current_consents(member).items():
        out.append(
            {
                "scope": scope,
                "granted": c.granted if c else None,
                "channel": c.channel if c else None,
                "text_version": c.text_version if c else None,
                "at": c.created_at if c else None,
            }
        )
    return out


def my_data(user: User, member: Member, *, fmt: str) -> tuple[dict[str, Any], bytes | None]:
    data = member_data(member)
    do_record_export(
        user, f"personal_data_{fmt}", bank_id=member.bank_id, rows=1, unmasked_rows=1, filters={"member": member.pk}
    )
    return data, render_personal_data(data, balance_of(member.pk)) if fmt == "pdf" else None


@router.get("/me/data", response=dict[str, Any], summary="A copy of all my personal data (JSON)")
def get_my_data(request: HttpRequest) -> dict[str, Any]:
    user, member = _me(request)
    return my_data(user, member, fmt="json")[0]


@router.get("/me/data.pdf", summary="A copy of all my personal data (PDF)")
def get_my_data_pdf(request: HttpRequest) -> HttpResponse:
    user, member = _me(request)
    pdf = my_data(user, member, fmt="pdf")[1]
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="my-data-{member.pk}.pdf"'
    return response


@router.get("/me/consents", response=list[ConsentOut], summary="My separate consents, the latest per scope")
def get_my_consents(request: HttpRequest) -> list[dict[str, Any]]:
    return _consents(_me(request)[1])


@router.post("/me/consents", response={201: ConsentOut}, summary="Give or withdraw one separate consent")
def post_my_consent(request: HttpRequest, body: ConsentIn) -> Status:
    user, member = _me(request)
    c = do_record_consent(user, member, scope=body.scope, granted=body.granted, channel="api")
    return Status(201, _one(c))


@router.get("/members/{member_id}/consents", response=list[ConsentOut], summary="A member's separate consents")
def get_member_consents(request: HttpRequest, member_id: PathId) -> list[dict[str, Any]]:
    user = request.user
    assert isinstance(user, User)
    return _consents(access_member(user, member_id))


@router.post(
    "/members/{member_id}/consents", response={201: ConsentOut}, summary="Record a consent given on paper (staff)"
)
def post_member_consent(request: HttpRequest, member_id: PathId, body: ConsentIn) -> Status:
    user = request.user
    assert isinstance(user, User)
    member = access_member_to_manage(user, member_id)
    c = do_record_consent(user, member, scope=body.scope, granted=body.granted, channel="staff")
    return Status(201, _one(c))


@router.post("/members/{member_id}/anonymise", response=AnonymisedOut, summary="Anonymise a member who left")
def post_anonymise(request: HttpRequest, member_id: PathId) -> dict[str, Any]:
    user = request.user
    assert isinstance(user, User)
    member = do_anonymise_member(user, access_member_to_manage(user, member_id))
    assert member.anonymised_at is not None
    return {
        "id": member.pk,
        "name": member.name,
        "status": member.status,
        "anonymised_at": member.anonymised_at,
    }


def _one(c: Consent) -> dict[str, Any]:
    return {
        "scope": c.scope,
        "granted": c.granted,
        "channel": c.channel,
        "text_version": c.text_version,
        "at": c.created_at,
    }
