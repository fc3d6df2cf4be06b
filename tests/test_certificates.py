"""Volunteer service certificates (志愿服务证明): issued with hours by category, sealed, checkable in public."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from tests.conftest import World, web_client
from timebank.audit.models import AuditEntry
from timebank.catalogue.actions import do_create_service_item
from timebank.exports.actions import do_issue_certificate
from timebank.exports.certificates import check_code, judge
from timebank.exports.models import IssuedCertificate
from timebank.lib.errors import Conflict, Invalid
from timebank.orders import actions as orders
from timebank.orders import records
from timebank.orders.models import Order


@pytest.fixture
def served(world: World) -> None:
    """The volunteer served 2 h of meal delivery (an order) and 1.5 h at a clean-up day (a service record)."""
    meals = do_create_service_item(
        None, head_office=world.bank, name="餐饮配送", category="mutual_care", tier="ordinary"
    )
    cleanup = do_create_service_item(
        None, head_office=world.bank, name="清洁日", category="environment", tier="ordinary"
    )
    staff = world.users["staff"]
    volunteer = world.members["volunteer"]
    order = orders.do_create_order(
        world.users["operator"],
        recipient=world.members["recipient"],
        service_item=meals,
        scheduled_start=timezone.now() + dt.timedelta(hours=1),
        planned_minutes=120,
        payer="subsidy",
        channel="hotline",
    )
    orders.do_dispatch(staff, order, volunteer)
    orders.do_accept(volunteer.user, order)
    orders.do_check_in(volunteer.user, order)
    # Served two hours: the check-in is set back rather than the test waiting (credits follow the clock).
    Order.objects.filter(pk=order.pk).update(check_in_at=timezone.now() - dt.timedelta(minutes=120))
    orders.do_check_out(volunteer.user, order)
    orders.do_confirm(staff, order, actual_minutes=120, by_staff=True)
    records.do_service_record(
        staff, volunteer=volunteer, service_item=cleanup, minutes=90, served_at=timezone.now() - dt.timedelta(hours=2)
    )


def this_year() -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    return today.replace(month=1, day=1), today


def test_issue_counts_hours_by_category_and_is_audited(world: World, served: None) -> None:
    start, end = this_year()
    cert, created = do_issue_certificate(world.users["volunteer"], world.members["volunteer"], start=start, end=end)
    assert created
    by = {row["category"]: row for row in cert.content["by_category"]}
    assert by["mutual_care"]["minutes"] == 120 and by["mutual_care"]["count"] == 1
    assert by["environment"]["minutes"] == 90
    assert cert.content["total_minutes"] == 210
    assert cert.content["name"] == "王秀英"
    assert AuditEntry.objects.filter(action="certificate.issue", object_id=str(cert.pk)).exists()
    # Asking again for the same period gives the same certificate, not a second row.
    again, created = do_issue_certificate(world.users["volunteer"], world.members["volunteer"], start=start, end=end)
    assert again.pk == cert.pk and not created


def test_genuine_certificate_checks_with_name_masked(world: World, served: None) -> None:
    start, end = this_year()
    cert, _ = do_issue_certificate(world.users["staff"], world.members["volunteer"], start=start, end=end)
    response = web_client(None).get(f"/verify/{cert.serial}/?c={check_code(cert)}")
    assert response.status_code == 200
    page = response.content.decode()
    assert "王**" in page and "王秀英" not in page
    assert "3.5" in page  # 210 minutes
    assert world.members["volunteer"].id_number() not in page


def test_altered_or_unknown_certificate_is_rejected(world: World, served: None) -> None:
    start, end = this_year()
    cert, _ = do_issue_certificate(world.users["staff"], world.members["volunteer"], start=start, end=end)
    anonymous = web_client(None)
    # Unknown serial.
    response = anonymous.get("/verify/0000000000000000/")
    assert response.status_code == 404 and "查无" in response.content.decode()
    # A check code that is not this certificate's (someone edited the printed one, or guessed).
    wrong = "0" * 16 if check_code(cert) != "0" * 16 else "1" * 16
    assert anonymous.get(f"/verify/{cert.serial}/?c={wrong}").status_code == 409
    # Content changed in the database behind the seal: more hours than were served.
    content = dict(cert.content)
    content["total_minutes"] = 6000
    IssuedCertificate.objects.filter(pk=cert.pk).update(content=content)
    response = anonymous.get(f"/verify/{cert.serial}/?c={check_code(cert)}")
    assert response.status_code == 409
    assert "100" not in response.content.decode()  # the altered hours are never shown as if genuine
    assert judge(cert.serial, None).status == "altered"
    # A forged row with a made-up seal.
    IssuedCertificate.objects.create(
        serial="FORGED0000000001",
        bank=world.bank,
        member=world.members["volunteer"],
        period_start=start,
        period_end=end,
        content=content,
        digest="f" * 64,
    )
    assert anonymous.get("/verify/FORGED0000000001/").status_code == 409


def test_pdf_download_with_qr_and_access(world: World, served: None) -> None:
    volunteer = web_client(world.users["volunteer"])
    start, end = this_year()
    response = volunteer.post(
        "/exports/me/certificate/", {"cert-start": start.isoformat(), "cert-end": end.isoformat()}
    )
    assert response.status_code == 302
    cert = IssuedCertificate.objects.get()
    assert response["Location"] == f"/exports/certificates/{cert.serial}.pdf"
    pdf = volunteer.get(response["Location"])
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    # Staff of the subtree may download it; a neighbour, another community's staff and strangers may not.
    assert web_client(world.users["staff"]).get(response["Location"]).status_code == 200
    for persona in ("neighbour", "staff_next", "other_bank_staff"):
        assert web_client(world.users[persona]).get(response["Location"]).status_code == 404
    # The my-time page offers it.
    page = volunteer.get("/me/time/").content.decode()
    assert "/exports/me/certificate/" in page and "/exports/me/statement.pdf" in page


def test_staff_issue_page_and_bad_periods(world: World, served: None) -> None:
    member = world.members["volunteer"]
    staff = web_client(world.users["staff"])
    url = f"/exports/members/{member.pk}/certificate/"
    assert staff.get(url).status_code == 200
    start, end = this_year()
    response = staff.post(url, {"start": start.isoformat(), "end": end.isoformat()})
    assert response.status_code == 302
    assert IssuedCertificate.objects.filter(member=member).count() == 1
    # End before start; a period in the future: refused, nothing written.
    assert staff.post(url, {"start": end.isoformat(), "end": start.isoformat()}).status_code == 422
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    assert staff.post(url, {"start": start.isoformat(), "end": tomorrow.isoformat()}).status_code == 422
    assert IssuedCertificate.objects.filter(member=member).count() == 1
    assert web_client(world.users["staff_next"]).get(url).status_code == 403
    assert web_client(world.users["other_bank_staff"]).get(url).status_code == 403
    with pytest.raises(Conflict):
        do_issue_certificate(None, world.members["recipient"], start=start, end=end)
    with pytest.raises(Invalid):
        do_issue_certificate(None, member, start=end, end=start)


def test_statement_pdf_and_xlsx(world: World, served: None) -> None:
    member = world.members["volunteer"]
    pdf = web_client(world.users["volunteer"]).get("/exports/me/statement.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    xlsx = web_client(world.users["staff"]).get(f"/exports/members/{member.pk}/statement.xlsx")
    assert xlsx.status_code == 200 and xlsx.streaming
    assert web_client(world.users["neighbour"]).get(f"/exports/members/{member.pk}/statement.pdf").status_code == 403
    assert AuditEntry.objects.filter(action="export.statement_pdf").exists()
    assert re.match(r"attachment", pdf["Content-Disposition"])
