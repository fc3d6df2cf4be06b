"""Settlement runs, their progress and their report (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.ledger import views
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("bank/<id:bank_id>/settlements/", views.settlements, name="settlements"),
    path("bank/<id:bank_id>/settlements/<id:settlement_id>/", views.settlement_detail, name="settlement"),
    path(
        "bank/<id:bank_id>/settlements/<id:settlement_id>/progress/",
        views.settlement_progress,
        name="settlement_progress",
    ),
    path("bank/<id:bank_id>/settlements/<id:settlement_id>/resume/", views.settlement_resume, name="settlement_resume"),
    path(
        "bank/<id:bank_id>/settlements/<id:settlement_id>/report.xlsx",
        views.settlement_report,
        name="settlement_report",
    ),
]
