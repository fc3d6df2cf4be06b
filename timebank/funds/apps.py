from django.apps import AppConfig


class FundsConfig(AppConfig):
    name = "timebank.funds"
    label = "funds"
    default_auto_field = "django.db.models.BigAutoField"
