"""The fund book (in the `web` URL namespace, mounted by timebank/urls.py; the public disclosure is funds/urls.py)."""

from django.urls import path

from timebank.funds import views_fundbook as fundbook
from timebank.funds import views_in_kind as in_kind
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("funds/", fundbook.funds_home, name="funds_home"),
    path("funds/<id:org_id>/", fundbook.funds, name="funds"),
    path("funds/entries/<id:entry_id>/reverse/", fundbook.reverse_entry, name="fund_reverse"),
    path("funds/<id:org_id>/in-kind/", in_kind.in_kind, name="fund_in_kind"),
    # Not under staff/orders/<id>/: that is the order page's own steps (orders/urls_web.py, mounted first).
    path("funds/orders/<id:order_id>/buy-service/", in_kind.buy_service, name="order_buy_service"),
]
