from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "timebank.approvals"
    label = "approvals"
    default_auto_field = "django.db.models.BigAutoField"
