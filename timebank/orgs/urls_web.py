"""Logging in and out, passwords, staff logins, display preferences, the management home and the head office's
rules, the org tree (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.orgs import views, views_staff
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("login/", views.WebLoginView.as_view(), name="login"),
    path("logout/", views.WebLogoutView.as_view(), name="logout"),
    path("prefs/large-text/", views.large_text, name="large_text"),
    path("me/password/", views.password, name="password"),
    path("manage/", views.manage_home, name="manage"),
    path("bank/<id:bank_id>/rules/", views.rules_page, name="rules"),
    path("manage/staff/", views_staff.staff_logins, name="staff_logins"),
    path("manage/staff/<id:staff_id>/", views_staff.staff_login, name="staff_login"),
    path("manage/staff/<id:staff_id>/password-reset/", views_staff.staff_login_reset, name="staff_login_reset"),
    path("manage/orgs/", views_staff.org_tree, name="org_tree"),
]
