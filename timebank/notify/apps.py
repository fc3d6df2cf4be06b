from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "timebank.notify"
    label = "notify"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register its event subscribers (OrderTransitioned, PasswordReset, SmsCodeLogin): the publishers do not import us.
        from timebank.notify import hooks, login_codes  # noqa: F401
