"""Personal data (PIPL): key rotation, separate consents, a member's copy of their data, anonymising a leaver."""

from __future__ import annotations

import io
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from tests.conftest import World, error_code, web_client
from timebank.audit.models import AuditEntry
from timebank.ledger.actions import do_adjustment, do_transfer
from timebank.ledger.verify import verify
from timebank.lib import crypto
from timebank.members.actions import do_anonymise_member
from timebank.members.models import Consent, Member, RelativeLink
from timebank.safety.models import IncidentReport


@pytest.fixture
def fresh_crypto() -> Any:
    crypto.reset_cache()
    yield
    crypto.reset_cache()


def test_rotate_keys_reencrypts_everything_and_is_idempotent(world: World, settings: Any, fresh_crypto: None) -> None:
    old = list(settings.FIELD_ENCRYPTION_KEYS)
    member = Member.objects.get(pk=world.members["volunteer"].pk)
    before = (member.id_number(), member.address)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old]
    crypto.reset_cache()
    out = io.StringIO()
    call_command("rotate_keys", "--batch", "2", stdout=out)
    assert "members.Member: 5 rows re-encrypted" in out.getvalue()
    assert AuditEntry.objects.filter(action="keys.rotate").count() == 1
    # Readable with the new key alone: the old one can now be dropped.
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    crypto.reset_cache()
    member = Member.objects.get(pk=member.pk)
    assert (member.id_number(), member.address) == before
    # A second run finds nothing to do and writes nothing.
    out = io.StringIO()
    call_command("rotate_keys", stdout=out)
    assert "members.Member: 0 rows re-encrypted" in out.getvalue()
    assert AuditEntry.objects.filter(action="keys.rotate").count() == 1
    assert verify().ok


def test_rotate_keys_covers_every_encrypted_model() -> None:
    from timebank.members.management.commands.rotate_keys import encrypted_fields

    found = dict(encrypted_fields())
    assert found[Member] == ["id_number_encrypted", "address_encrypted"]
    assert found[IncidentReport] == ["injury_description_encrypted"]


def test_consents_recorded_with_date_and_scope(world: World) -> None:
    api = world.api("volunteer")
    response = api.post("/api/v1/me/consents", {"scope": "health_info", "granted": True})
    assert response.status_code == 201, response.content
    assert response.json()["scope"] == "health_info" and response.json()["at"]
    api.post("/api/v1/me/consents", {"scope": "health_info", "granted": False})
    now = {c["scope"]: c["granted"] for c in api.get("/api/v1/me/consents").json()}
    assert now == {"sensitive_personal_info": None, "health_info": False, "share_with_insurer": None}
    assert Consent.objects.filter(member=world.members["volunteer"]).count() == 2  # the history stays
    assert (
        error_code(api.post("/api/v1/me/consents", {"scope": "everything", "granted": True})) == "invalid_consent_scope"
    )
    # Staff record a consent given on paper; other communities' staff may not.
    member_id = world.members["volunteer"].pk
    url = f"/api/v1/members/{member_id}/consents"
    assert world.api("staff").post(url, {"scope": "share_with_insurer", "granted": True}).status_code == 201
    assert world.api("staff_next").post(url, {"scope": "share_with_insurer", "granted": True}).status_code == 403
    assert AuditEntry.objects.filter(action="member.consent").count() == 3


def test_join_page_captures_consents(world: World) -> None:
    client = web_client(None)
    page = client.get("/join/").content.decode()
    assert "sensitive_personal_info" in page
    response = client.post(
        "/join/",
        {
            "name": "新会员",
            "phone": "13900001111",
            "home_org": world.community.pk,
            "roles": ["volunteer"],
            "username": "newbie",
            "password1": "a-long-pass-word-9",
            "password2": "a-long-pass-word-9",
            "consent_sensitive_personal_info": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    member = Member.objects.get(name="新会员")
    given = {c.scope: c.granted for c in Consent.objects.filter(member=member)}
    assert given == {"sensitive_personal_info": True, "health_info": False, "share_with_insurer": False}


def test_my_data_json_and_pdf(world: World) -> None:
    api = world.api("volunteer")
    data = api.get("/api/v1/me/data").json()
    member = world.members["volunteer"]
    assert data["member"]["id_number"] == member.id_number()
    assert data["member"]["address"] == "运河街道 1 号"
    assert "balances" in data and "statement" in data and "consents" in data
    pdf = api.get("/api/v1/me/data.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert AuditEntry.objects.filter(action="export.personal_data_json", actor=member.user).exists()
    # Staff logins have no "me" data; anonymous callers are refused.
    assert world.api("staff").get("/api/v1/me/data").status_code == 403
    assert world.api("anonymous").get("/api/v1/me/data").status_code == 401
    # The page button (browser session).
    assert web_client(world.users["volunteer"]).get("/api/v1/me/data").status_code == 200


def test_anonymise_keeps_ledger_and_audit_chain(world: World) -> None:
    recipient = world.members["recipient"]
    relative = world.members["relative"]
    do_adjustment(None, member=recipient, minutes=120, bucket="reserve", reason="开户")
    do_transfer(
        recipient.user,
        from_member=recipient,
        to_member=relative,
        minutes=30,
        kind="relative",
        memo="",
        idempotency_key="t-1",
    )
    audit_before = AuditEntry.objects.count()
    balances_before = list(recipient.accounts.values_list("pk", "balance_minutes").order_by("pk"))
    response = world.api("staff").post(f"/api/v1/members/{recipient.pk}/anonymise")
    assert response.status_code == 200, response.content
    assert response.json()["name"] == f"已注销会员 #{recipient.pk}"
    m = Member.objects.get(pk=recipient.pk)
    assert m.name == f"已注销会员 #{recipient.pk}"
    assert m.phone == "" and m.id_number_encrypted == "" and m.id_number_hash == "" and m.address_encrypted == ""
    assert m.birth_date is None and m.status == "left" and m.anonymised_at is not None
    assert not RelativeLink.objects.filter(member=m).exists()
    assert not RelativeLink.objects.filter(relative=m).exists()
    assert m.user is not None and not m.user.is_active and not m.user.has_usable_password()
    assert m.user.username.startswith("left-")
    # The ledger and the audit chain are intact: nothing rewritten, only appended.
    report = verify()
    assert report.ok, report
    assert AuditEntry.objects.count() > audit_before
    assert list(m.accounts.values_list("pk", "balance_minutes").order_by("pk")) == balances_before
    assert AuditEntry.objects.filter(action="member.anonymise", object_id=str(m.pk)).exists()
    # The old login no longer works, and a second anonymise is a conflict.
    login = world.api("anonymous").post("/api/v1/auth/token", {"username": "recipient", "password": "pass-word-1"})
    assert login.status_code in (401, 403)
    assert error_code(world.api("staff").post(f"/api/v1/members/{recipient.pk}/anonymise")) == "member_anonymised"
    # Only staff of the home subtree may anonymise.
    other = world.members["neighbour"]
    assert world.api("staff").post(f"/api/v1/members/{other.pk}/anonymise").status_code == 403
    assert world.api("volunteer").post(f"/api/v1/members/{other.pk}/anonymise").status_code == 403


def test_anonymised_member_revokes_certificates(world: World) -> None:
    import datetime as dt

    from django.utils import timezone

    from timebank.exports.actions import do_issue_certificate

    volunteer = world.members["volunteer"]
    today = timezone.localdate()
    cert, _ = do_issue_certificate(None, volunteer, start=today - dt.timedelta(days=30), end=today)
    do_anonymise_member(world.users["staff"], volunteer)
    cert.refresh_from_db()
    assert cert.revoked_at is not None and "王" not in cert.content["name"]
    assert web_client(None).get(f"/verify/{cert.serial}/").status_code == 410
