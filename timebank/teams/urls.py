from django.urls import path

from timebank.teams import sheet, views, views_manage, views_sheet
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

app_name = "teams"

urlpatterns = [
    path("activities/", views.activity_list, name="activities"),
    path("activities/new/", views.activity_new, name="activity_new"),
    path("activities/<id:activity_id>/", views.activity_detail, name="activity"),
    path("activities/<id:activity_id>/edit/", views.activity_edit, name="activity_edit"),
    path("activities/<id:activity_id>/signup/", views.activity_signup, name="activity_signup"),
    path("activities/<id:activity_id>/withdraw/", views.activity_withdraw, name="activity_withdraw"),
    path("activities/<id:activity_id>/check/<slug:token>/", views.activity_check, name="check"),
    path("activities/<id:activity_id>/qr/", views.activity_qr, name="activity_qr"),
    path("activities/<id:activity_id>/qr/code/", views.activity_qr_code, name="activity_qr_code"),
    path(
        "activities/<id:activity_id>/attendance/<id:member_id>/",
        views.activity_attendance,
        name="activity_attendance",
    ),
    # A blank sign-in sheet to print (issue 13, paper mode), with the downloads under /exports/
    path("exports/sheets/activities/<id:activity_id>.pdf", sheet.activity_sheet, name="activity_sheet"),
    # The filled sheet entered back on one screen (the PDF's QR code opens it)
    path("activities/<id:activity_id>/sheet/", views_sheet.activity_sheet_entry, name="activity_sheet_entry"),
    path("activities/<id:activity_id>/close/", views.activity_close, name="activity_close"),
    path("activities/<id:activity_id>/cancel/", views.activity_cancel, name="activity_cancel"),
    path("teams/", views.team_list, name="teams"),
    path("teams/new/", views.team_new, name="team_new"),
    path("teams/<id:team_id>/", views.team_detail, name="team"),
    path("teams/<id:team_id>/members/", views.team_add_member, name="team_add_member"),
    path("teams/<id:team_id>/edit/", views_manage.team_edit, name="team_edit"),
    path(
        "teams/<id:team_id>/members/<id:member_id>/remove/",
        views_manage.team_remove_member,
        name="team_remove_member",
    ),
    path("teams/<id:team_id>/export/", views.team_export, name="team_export"),
]
