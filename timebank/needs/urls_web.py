"""The needs register's and the census import's pages (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.needs import views, views_handover
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("staff/needs/", views.needs_list, name="staff_needs"),
    path("staff/needs/<id:need_id>/", views.need_detail, name="staff_need"),
    path("staff/needs/<id:need_id>/edit/", views.need_edit, name="staff_need_edit"),
    path("staff/needs/<id:need_id>/follow-ups/", views.need_follow_up, name="staff_need_follow_up"),
    path("staff/needs/<id:need_id>/close/", views.need_close, name="staff_need_close"),
    path("staff/census-imports/", views.census_imports, name="census_imports"),
    path("staff/census-imports/<id:import_id>/", views.census_import, name="census_import"),
    path("manage/staff/<id:staff_id>/handover/", views_handover.staff_handover, name="staff_handover"),
]
