"""Settlement runs, their progress and their report; the staff's statement, transaction, reversal and adjustment
pages (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.ledger import views, views_interbank, views_staff
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
    # The staff's ledger pages (ledger/views_staff.py)
    path("staff/members/<id:member_id>/statement/", views_staff.staff_statement, name="staff_statement"),
    path("staff/transactions/<id:transaction_id>/", views_staff.staff_transaction, name="staff_transaction"),
    path(
        "staff/transactions/<id:transaction_id>/reverse/",
        views_staff.staff_transaction_reverse,
        name="staff_transaction_reverse",
    ),
    path("staff/adjustments/new/", views_staff.staff_adjustment, name="staff_adjustment"),
    path("staff/withdrawals/new/", views_staff.staff_withdrawal, name="staff_withdrawal"),
    # Inter-bank moves (ledger/views_interbank.py)
    path("staff/interbank-moves/", views_interbank.interbank_moves, name="interbank_moves"),
    path("staff/interbank-moves/<id:move_id>/", views_interbank.interbank_move, name="interbank_move"),
    path(
        "staff/interbank-moves/<id:move_id>/approve/",
        views_interbank.interbank_move_approve,
        name="interbank_move_approve",
    ),
    path(
        "staff/interbank-moves/<id:move_id>/reject/",
        views_interbank.interbank_move_reject,
        name="interbank_move_reject",
    ),
    path("staff/members/<id:member_id>/interbank/", views_interbank.interbank_member, name="interbank_member"),
]
