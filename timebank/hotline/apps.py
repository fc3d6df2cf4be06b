from django.apps import AppConfig


class HotlineConfig(AppConfig):
    name = "timebank.hotline"
    label = "hotline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.hotline import subscribers  # noqa: F401  (registers its event subscribers)
