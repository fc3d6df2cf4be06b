"""The outlet counter and the member's goods and vouchers (in the `web` URL namespace, mounted by
timebank/urls.py)."""

from django.urls import path, register_converter

from timebank.goods import views as outlet
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter


class VoucherCodeConverter:
    """A voucher code as printed (hex); anything else is a 404 before any view runs."""

    regex = "[0-9a-fA-F]{4,40}"

    def to_python(self, value: str) -> str:
        return value.lower()

    def to_url(self, value: str) -> str:
        return value


register_converter(VoucherCodeConverter, "voucher")

urlpatterns = [
    # The member's goods (换物品) and vouchers
    path("me/goods/", outlet.my_goods, name="my_goods"),
    path("me/vouchers/", outlet.my_vouchers, name="my_vouchers"),
    path("me/vouchers/<id:redemption_id>/", outlet.my_voucher, name="my_voucher"),
    path("me/card/", outlet.my_card, name="my_card"),
    path("me/card/<id:member_id>/reissue/", outlet.reissue_card, name="card_reissue"),
    path("outlet/card/<id:member_id>/", outlet.staff_member_card, name="staff_member_card"),
    # The outlet counter
    path("outlet/", outlet.counters, name="outlet_counters"),
    path("outlet/voucher/", outlet.voucher_check, name="voucher_check"),
    path("outlet/voucher/<voucher:code>/hand-over/", outlet.hand_over, name="voucher_hand_over"),
    path("outlet/goods/<id:goods_id>/restock/", outlet.stock_action, {"action": "restock"}, name="goods_restock"),
    path("outlet/goods/<id:goods_id>/count/", outlet.stock_action, {"action": "count"}, name="goods_count"),
    path("outlet/<id:org_id>/", outlet.counter, name="outlet_counter"),
    path("outlet/<id:org_id>/goods/", outlet.add_goods, name="outlet_add_goods"),
    path("outlet/<id:org_id>/redeem/", outlet.counter_redeem, name="outlet_redeem"),
]
