"""Evaluation pages, mounted at /evaluation/."""

from django.urls import path

from timebank.evaluation import views, views_awards
from timebank.web.converters import IdConverter

# Importing web.converters registers its bounded <id:...> converter.
_ = IdConverter

app_name = "evaluation"

urlpatterns = [
    path("", views.home, name="home"),
    path("me/", views.mine, name="mine"),
    path("settings/<id:bank_id>/", views.settings_page, name="settings"),
    path("assess/<id:org_id>/", views.assess, name="assess"),
    path("assessments/", views.assessments, name="assessments"),
    path("complaints/", views.complaints, name="complaints"),
    path("complaints/<id:complaint_id>/", views.complaint, name="complaint"),
    path("penalties/", views.penalties, name="penalties"),
    path("penalties/<id:penalty_id>/lift/", views.lift, name="lift"),
    path("penalties/<id:penalty_id>/correction/", views.correction, name="correction"),
    path("awards/<id:bank_id>/", views.awards, name="awards"),
    path("awards/<id:bank_id>/kinds/", views_awards.award_kinds, name="award_kinds"),
    path("award-kinds/<id:kind_id>/", views_awards.award_kind, name="award_kind"),
]
