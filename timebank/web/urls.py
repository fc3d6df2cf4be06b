from django.urls import include, path, register_converter

from timebank.web.views import account, care, member, public, staff, volunteer


class IdConverter:
    """Like <int:…> but bounded: an id too large for a bigint is a 404, not a database error."""

    regex = "[1-9][0-9]{0,17}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


register_converter(IdConverter, "id")

app_name = "web"

urlpatterns = [
    path("", public.home, name="home"),
    path("about/", public.about, name="about"),
    path("join/", public.join, name="join"),
    path("login/", public.WebLoginView.as_view(), name="login"),
    path("logout/", public.WebLogoutView.as_view(), name="logout"),
    path("prefs/large-text/", public.large_text, name="large_text"),
    path("me/password/", account.password, name="password"),
    # A member's own time
    path("me/time/", member.my_time, name="my_time"),
    path("me/give/", member.give, name="give"),
    # Ordering a service (recipients and relatives): item → time → confirm
    path("order/", care.pick_item, name="order"),
    path("order/<id:item_id>/", care.pick_time, name="order_time"),
    path("order/<id:item_id>/confirm/", care.confirm_order, name="order_confirm"),
    path("orders/", care.care_orders, name="care_orders"),
    path("orders/<id:order_id>/", care.care_order, name="care_order"),
    path("orders/<id:order_id>/<slug:action>/", care.care_action, name="care_action"),
    # Volunteers
    path("volunteer/", volunteer.volunteer_home, name="volunteer"),
    path("volunteer/orders/<id:order_id>/<slug:action>/", volunteer.volunteer_action, name="volunteer_action"),
    # Staff workbench
    path("staff/", staff.staff_home, name="staff_home"),
    path("staff/members/", staff.staff_members, name="staff_members"),
    path("staff/members/<id:member_id>/approve/", staff.staff_member_approve, name="staff_member_approve"),
    path(
        "staff/members/<id:member_id>/password-reset/",
        account.member_password_reset,
        name="staff_member_password_reset",
    ),
    path("staff/orders/", staff.staff_orders, name="staff_orders"),
    path("staff/orders/<id:order_id>/", staff.staff_order, name="staff_order"),
    path("staff/orders/<id:order_id>/<slug:action>/", staff.staff_order_action, name="staff_order_action"),
    path("", include("timebank.web.urls_operator")),  # the 12349 hotline console
    path("", include("timebank.web.urls_admin")),  # outlet counter, goods and vouchers, management pages
]
