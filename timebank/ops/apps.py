from django.apps import AppConfig


class OpsConfig(AppConfig):
    """Operations: replay-safe API writes (the Idempotency-Key header), backup and restore."""

    name = "timebank.ops"
    label = "ops"
    default_auto_field = "django.db.models.BigAutoField"
