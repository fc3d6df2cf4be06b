"""The service catalogue and the community menus (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.catalogue import views
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("bank/<id:bank_id>/catalogue/", views.catalogue, name="catalogue"),
    path("menu/", views.menus, name="menus"),
    path("menu/<id:org_id>/", views.menu, name="menu"),
    path("menu/<id:org_id>/<id:item_id>/", views.menu_entry, name="menu_entry"),
]
