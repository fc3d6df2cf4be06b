"""What the time bank is, joining, and a member's password reset by staff (in the `web` URL namespace, mounted
by timebank/urls.py)."""

from django.urls import path

from timebank.members import views
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("about/", views.about, name="about"),
    path("join/", views.join, name="join"),
    path(
        "staff/members/<id:member_id>/password-reset/",
        views.member_password_reset,
        name="staff_member_password_reset",
    ),
]
