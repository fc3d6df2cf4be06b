from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "timebank.exports"
    label = "exports"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.exports import subscribers  # noqa: F401  (registers its event subscribers)
