"""公示 pages, mounted at /disclosure/ (no login)."""

from django.urls import path, re_path

from timebank.funds import views, views_checkpoints

app_name = "funds"

# Bounded like the other pages' ids: an id too large for a bigint is a 404, not a database error.
ORG_ID = r"(?P<org_id>[1-9][0-9]{0,17})"

urlpatterns = [
    path("", views.disclosure_index, name="disclosure_index"),
    re_path(rf"^{ORG_ID}/$", views.disclosure_page, name="disclosure"),
    re_path(rf"^{ORG_ID}/pdf$", views.disclosure_pdf, name="disclosure_pdf"),
    path("checkpoints/", views_checkpoints.checkpoints_page, name="checkpoints"),
    re_path(
        r"^checkpoints/(?P<checkpoint_id>[1-9][0-9]{0,17})\.json$",
        views_checkpoints.checkpoint_download,
        name="checkpoint_download",
    ),
]
