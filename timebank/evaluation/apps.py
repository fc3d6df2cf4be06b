from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "timebank.evaluation"
    label = "evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.evaluation import subscribers  # noqa: F401  (registers its event subscribers)
