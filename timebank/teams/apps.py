from django.apps import AppConfig


class TeamsConfig(AppConfig):
    name = "timebank.teams"
    label = "teams"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.teams import subscribers  # noqa: F401  (registers its event subscribers)
