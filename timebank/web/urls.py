from django.urls import path

from timebank.web import views

urlpatterns = [
    path("", views.home, name="home"),
]
