from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "timebank.orders"
    label = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.orders import subscribers  # noqa: F401  (registers its event subscribers)
