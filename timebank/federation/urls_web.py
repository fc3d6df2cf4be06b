"""Federation pages (issue 16), mounted by timebank/urls.py in the `web` URL namespace."""

from django.urls import path

from timebank.federation import views, views_moves
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("me/federation/send/", views.send, name="federation_send"),
    path("me/federation/<uuid:transfer_id>/", views.transfer_page, name="federation_transfer"),
    path("manage/federation/", views.peers_page, name="federation_peers"),
    path("manage/federation/<id:peer_id>/", views.peer_page, name="federation_peer"),
    # Moving home across nodes (跨城迁移): federation/views_moves.py
    path("staff/members/<id:member_id>/federation-moves/", views_moves.member_moves, name="federation_member_moves"),
    path("federation/moves/<uuid:move_id>/", views_moves.move_page, name="federation_move"),
    path("federation/moves/<uuid:move_id>/approve/", views_moves.move_approve, name="federation_move_approve"),
    path("federation/moves/<uuid:move_id>/reject/", views_moves.move_reject, name="federation_move_reject"),
]
