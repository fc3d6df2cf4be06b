from django.apps import AppConfig


class FederationConfig(AppConfig):
    name = "timebank.federation"
    label = "federation"
    default_auto_field = "django.db.models.BigAutoField"
