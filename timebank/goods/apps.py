from django.apps import AppConfig


class GoodsConfig(AppConfig):
    name = "timebank.goods"
    label = "goods"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.goods import subscribers  # noqa: F401  (registers its event subscribers)
