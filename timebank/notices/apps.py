from django.apps import AppConfig


class NoticesConfig(AppConfig):
    name = "timebank.notices"
    label = "notices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.notices import subscribers  # noqa: F401  (registers its event subscribers)
