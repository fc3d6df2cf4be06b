from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo world and its `seed_demo` command (the top layer: it may use every app)."""

    name = "timebank.demo"
    label = "demo"
    default_auto_field = "django.db.models.BigAutoField"
