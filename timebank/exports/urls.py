"""Downloads under /exports/ (namespace `exports`) and the public check page /verify/<serial>/."""

from django.urls import path, register_converter

from timebank.exports import sheets, slips, views, views_consents
from timebank.web import converters as _converters  # noqa: F401 - registers the "isodate" converter


class SerialConverter:
    regex = "[0-9A-Za-z]{1,32}"

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class IdConverter:
    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(SerialConverter, "serial")
register_converter(IdConverter, "eid")

app_name = "exports"

urlpatterns = [
    path("verify/<serial:serial>/", views.verify, name="verify"),
    path("exports/members.xlsx", views.members_xlsx, name="members"),
    path("exports/orders.xlsx", views.orders_xlsx, name="orders"),
    path("exports/needs.xlsx", views.needs_xlsx, name="needs"),
    path("exports/insurance.xlsx", views.insurance_xlsx, name="insurance"),
    path("exports/trainings.xlsx", views.trainings_xlsx, name="trainings"),
    path("exports/redemptions.xlsx", views.redemptions_xlsx, name="redemptions"),
    path("exports/calls.xlsx", views.calls_xlsx, name="calls"),
    path("exports/fund-entries.xlsx", views.fund_entries_xlsx, name="fund_entries"),
    path("exports/me/certificate/", views.my_certificate, name="my_certificate"),
    path("me/consents/", views_consents.my_consents, name="my_consents"),
    path("exports/orders/<eid:order_id>/slip.pdf", slips.dispatch_slip, name="dispatch_slip"),
    path("exports/sheets/orders/<isodate:day>.pdf", sheets.day_sheet, name="day_sheet"),
    path("exports/me/statement.pdf", views.my_statement, name="my_statement"),
    path("exports/certificates/<serial:serial>.pdf", views.certificate_pdf, name="certificate_pdf"),
    path("exports/members/<eid:member_id>/certificate/", views.staff_certificate, name="staff_certificate"),
    path(
        "exports/members/<eid:member_id>/statement.pdf",
        views.member_statement,
        {"fmt": "pdf"},
        name="member_statement_pdf",
    ),
    path(
        "exports/members/<eid:member_id>/statement.xlsx",
        views.member_statement,
        {"fmt": "xlsx"},
        name="member_statement_xlsx",
    ),
]
