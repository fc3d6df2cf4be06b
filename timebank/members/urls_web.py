"""What the time bank is, joining, and a member's password reset by staff (in the `web` URL namespace, mounted
by timebank/urls.py)."""

from django.urls import path

from timebank.members import views, views_anonymise, views_staff
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("about/", views.about, name="about"),
    path("join/", views.join, name="join"),
    # The staff's member pages (a walk-in member, a member's page, edit, login, relatives)
    path("staff/members/new/", views_staff.staff_member_new, name="staff_member_new"),
    path("staff/members/<id:member_id>/", views_staff.staff_member, name="staff_member"),
    path("staff/members/<id:member_id>/id-number/", views_staff.staff_member_id_number, name="staff_member_id_number"),
    path("staff/members/<id:member_id>/edit/", views_staff.staff_member_edit, name="staff_member_edit"),
    path("staff/members/<id:member_id>/login/", views_staff.staff_member_login, name="staff_member_login"),
    path("staff/members/<id:member_id>/relatives/", views_staff.staff_member_relative, name="staff_member_relative"),
    path("staff/members/<id:member_id>/consents/", views_staff.staff_member_consent, name="staff_member_consent"),
    path(
        "staff/members/<id:member_id>/status/<slug:action>/",
        views_staff.staff_member_status,
        name="staff_member_status",
    ),
    path(
        "staff/members/<id:member_id>/anonymise/",
        views_anonymise.staff_member_anonymise,
        name="staff_member_anonymise",
    ),
    path(
        "staff/members/<id:member_id>/password-reset/",
        views.member_password_reset,
        name="staff_member_password_reset",
    ),
]
