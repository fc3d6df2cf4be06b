"""The notify app's pages (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.notify import views, views_inbox
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("login/sms/", views.sms_login, name="sms_login"),
    # One's own messages, and going on or off duty (notify/views_inbox.py)
    path("me/messages/", views_inbox.inbox, name="inbox"),
    path("me/messages/<id:notification_id>/read/", views_inbox.read, name="inbox_read"),
    path("me/messages/read-all/", views_inbox.read_all, name="inbox_read_all"),
    path("staff/duty/", views_inbox.duty, name="duty"),
    path("staff/members/<id:member_id>/messages/", views.staff_member_messages, name="staff_member_messages"),
]
