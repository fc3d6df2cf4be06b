"""The notify app's pages (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.notify import views
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("login/sms/", views.sms_login, name="sms_login"),
    path("staff/members/<id:member_id>/messages/", views.staff_member_messages, name="staff_member_messages"),
]
