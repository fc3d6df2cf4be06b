"""The outlet counter, the member's goods and vouchers, and the management pages (included by web/urls.py, so
the names live in the `web` namespace)."""

from django.urls import path, register_converter

from timebank.reports import views as report_views
from timebank.web.views import account, admin, fundbook, outlet, safety_lists


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
    # Management
    path("manage/", admin.manage_home, name="manage"),
    path("bank/<id:bank_id>/rules/", admin.rules_page, name="rules"),
    path("bank/<id:bank_id>/catalogue/", admin.catalogue, name="catalogue"),
    path("manage/staff/", account.staff_logins, name="staff_logins"),
    path("manage/staff/<id:staff_id>/", account.staff_login, name="staff_login"),
    path("manage/staff/<id:staff_id>/password-reset/", account.staff_login_reset, name="staff_login_reset"),
    path("bank/<id:bank_id>/settlements/", admin.settlements, name="settlements"),
    path("bank/<id:bank_id>/settlements/<id:settlement_id>/", admin.settlement_detail, name="settlement"),
    path(
        "bank/<id:bank_id>/settlements/<id:settlement_id>/progress/",
        admin.settlement_progress,
        name="settlement_progress",
    ),
    path("bank/<id:bank_id>/settlements/<id:settlement_id>/resume/", admin.settlement_resume, name="settlement_resume"),
    path(
        "bank/<id:bank_id>/settlements/<id:settlement_id>/report.xlsx",
        admin.settlement_report,
        name="settlement_report",
    ),
    path("menu/", admin.menus, name="menus"),
    path("menu/<id:org_id>/", admin.menu, name="menu"),
    path("menu/<id:org_id>/<id:item_id>/", admin.menu_entry, name="menu_entry"),
    path("funds/", fundbook.funds_home, name="funds_home"),
    path("funds/<id:org_id>/", fundbook.funds, name="funds"),
    path("funds/entries/<id:entry_id>/reverse/", fundbook.reverse_entry, name="fund_reverse"),
    path("safety/", safety_lists.insurance, name="safety_insurance"),
    path("safety/certificates/", safety_lists.certificates, name="safety_certificates"),
    path("safety/trainings/", safety_lists.trainings, name="trainings"),
    path("safety/trainings/<id:training_id>/", safety_lists.training, name="training"),
    # Dashboards and the 供不应求 risk (timebank/reports)
    path("manage/dashboard/", report_views.dashboard_home, name="dashboard_home"),
    path("manage/dashboard/<id:org_id>/", report_views.overview, name="dashboard"),
    path("manage/today/<id:org_id>/", report_views.today, name="dashboard_today"),
    path("manage/risk/<id:org_id>/", report_views.risk_page, name="risk"),
]
