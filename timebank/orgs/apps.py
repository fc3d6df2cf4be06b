from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "timebank.orgs"
    label = "orgs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.orgs import lockout

        lockout.connect()
