"""通知公告 pages, mounted at /notices/."""

from django.urls import path, register_converter

from timebank.notices import views
from timebank.web.converters import IdConverter

register_converter(IdConverter, "nid")

app_name = "notices"

urlpatterns = [
    path("", views.notice_list, name="list"),
    path("new/", views.notice_new, name="new"),
    path("<nid:notice_id>/", views.notice_detail, name="detail"),
    path("<nid:notice_id>/withdraw/", views.notice_withdraw, name="withdraw"),
]
