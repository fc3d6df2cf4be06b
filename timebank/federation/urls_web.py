"""Federation pages (issue 16), mounted by timebank/urls.py in the `web` URL namespace."""

from django.urls import path

from timebank.federation import views
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("me/federation/send/", views.send, name="federation_send"),
    path("me/federation/<uuid:transfer_id>/", views.transfer_page, name="federation_transfer"),
    path("manage/federation/", views.peers_page, name="federation_peers"),
    path("manage/federation/<id:peer_id>/", views.peer_page, name="federation_peer"),
]
