"""Downloads under /exports/ (namespace `exports`); the public check page is /verify/<serial>/."""

from django.urls import path

from timebank.exports import views

app_name = "exports"

urlpatterns = [
    path("exports/members.xlsx", views.members_xlsx, name="members"),
    path("exports/orders.xlsx", views.orders_xlsx, name="orders"),
]
