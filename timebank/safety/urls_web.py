"""The safety lists: insurance, certificates, trainings (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.safety import views, views_incidents, views_member
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("safety/", views.insurance, name="safety_insurance"),
    path("safety/certificates/", views.certificates, name="safety_certificates"),
    path("safety/insurance/group/", views_member.group_policy, name="group_policy"),
    path("staff/members/<id:member_id>/safety/", views_member.member_safety, name="member_safety"),
    path(
        "staff/members/<id:member_id>/insurance-policies/",
        views_member.member_insurance_policy,
        name="member_insurance_policy",
    ),
    path("staff/members/<id:member_id>/certificates/", views_member.member_certificate, name="member_certificate"),
    path("safety/trainings/", views.trainings, name="trainings"),
    path("safety/trainings/<id:training_id>/", views.training, name="training"),
    path("safety/incidents/", views_incidents.incidents, name="incidents"),
    path("safety/incidents/<id:incident_id>/", views_incidents.incident, name="incident"),
    path("safety/incidents/<id:incident_id>/<str:step>/", views_incidents.incident_step, name="incident_step"),
]
