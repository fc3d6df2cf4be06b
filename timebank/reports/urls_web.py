"""Dashboards and the 供不应求 risk (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.reports import views
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("manage/dashboard/", views.dashboard_home, name="dashboard_home"),
    path("manage/dashboard/<id:org_id>/", views.overview, name="dashboard"),
    path("manage/today/<id:org_id>/", views.today, name="dashboard_today"),
    path("manage/risk/<id:org_id>/", views.risk_page, name="risk"),
    path("manage/half-year/<id:org_id>/", views.half_year_page, name="half_year_report"),
    path("manage/half-year/<id:org_id>/report.xlsx", views.half_year_file, {"ext": "xlsx"}, name="half_year_xlsx"),
    path("manage/half-year/<id:org_id>/report.pdf", views.half_year_file, {"ext": "pdf"}, name="half_year_pdf"),
]
