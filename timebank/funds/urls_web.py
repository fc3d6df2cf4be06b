"""The fund book (in the `web` URL namespace, mounted by timebank/urls.py; the public disclosure is funds/urls.py)."""

from django.urls import path

from timebank.funds import views_fundbook as fundbook
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("funds/", fundbook.funds_home, name="funds_home"),
    path("funds/<id:org_id>/", fundbook.funds, name="funds"),
    path("funds/entries/<id:entry_id>/reverse/", fundbook.reverse_entry, name="fund_reverse"),
]
