from django.apps import AppConfig


class GoodsConfig(AppConfig):
    name = "timebank.goods"
    label = "goods"
    default_auto_field = "django.db.models.BigAutoField"
