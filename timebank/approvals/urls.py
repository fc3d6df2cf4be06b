"""待审核 pages, mounted at /staff/approvals/."""

from django.urls import path

from timebank.approvals import views
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

app_name = "approvals"

urlpatterns = [
    path("", views.approval_list, name="list"),
    path("<id:approval_id>/approve/", views.approval_approve, name="approve"),
    path("<id:approval_id>/reject/", views.approval_reject, name="reject"),
]
