"""The member's, the recipient's, the volunteer's and the staff workbench's order pages. Mounted by
timebank/urls.py in the `web` URL namespace with every app's pages (the names are those of timebank/web)."""

from django.urls import path

from timebank.orders import views_care as care
from timebank.orders import views_member as member
from timebank.orders import views_records as records
from timebank.orders import views_sheets as sheets
from timebank.orders import views_staff as staff
from timebank.orders import views_volunteer as volunteer
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("", member.home, name="home"),
    # A member's own time
    path("me/time/", member.my_time, name="my_time"),
    path("me/give/", member.give, name="give"),
    # Ordering a service (recipients and relatives): item → time → confirm
    path("order/", care.pick_item, name="order"),
    path("order/<id:item_id>/", care.pick_time, name="order_time"),
    path("order/<id:item_id>/confirm/", care.confirm_order, name="order_confirm"),
    path("order/<id:item_id>/emergency/", care.emergency_order, name="order_emergency"),
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
    path("staff/orders/", staff.staff_orders, name="staff_orders"),
    path("staff/orders/<id:order_id>/", staff.staff_order, name="staff_order"),
    path("staff/orders/<id:order_id>/<slug:action>/", staff.staff_order_action, name="staff_order_action"),
    # A day's paper sign-in sheet, entered back on one page (issue 13, paper mode)
    path("staff/sheets/orders/<isodate:day>/", sheets.staff_order_sheet, name="staff_order_sheet"),
    path("staff/service-records/new/", records.staff_service_record, name="staff_service_record"),
]
