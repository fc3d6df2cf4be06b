from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "timebank.ledger"
    label = "ledger"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from timebank.ledger import sealer, subscribers  # noqa: F401  (event subscribers; the ledger chain for the sealer)
