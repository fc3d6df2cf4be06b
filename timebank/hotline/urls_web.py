"""The 12349 hotline console's pages (in the `web` URL namespace, mounted by timebank/urls.py)."""

from django.urls import path

from timebank.hotline import views as operator
from timebank.hotline import views_calls as calls
from timebank.hotline import views_new as new_caller
from timebank.hotline import views_visits as visits
from timebank.web import converters as _converters  # noqa: F401 - registers the bounded "id" converter

urlpatterns = [
    path("hotline/", operator.console, name="hotline"),
    path("hotline/search/", operator.search, name="hotline_search"),
    path("hotline/calls/", operator.log_unknown_call, name="hotline_unknown_call"),
    path("hotline/call-log/", calls.calls, name="hotline_calls"),
    path("hotline/call-log/<id:call_id>/", calls.call_edit, name="hotline_call_edit"),
    path("hotline/new/", new_caller.new_caller, name="hotline_new_caller"),
    path("hotline/new/<id:member_id>/", new_caller.new_caller_steps, name="hotline_new_caller_steps"),
    path("hotline/new/<id:member_id>/need/", new_caller.new_caller_need, name="hotline_new_caller_need"),
    path("hotline/new/<id:member_id>/order/", new_caller.new_caller_order, name="hotline_new_caller_order"),
    path("hotline/callers/<id:member_id>/", operator.caller, name="hotline_caller"),
    path("hotline/callers/<id:member_id>/order/", operator.create_order, name="hotline_order"),
    path(
        "hotline/callers/<id:member_id>/orders/<id:order_id>/dispatch/",
        operator.dispatch,
        name="hotline_dispatch",
    ),
    path("hotline/callers/<id:member_id>/call/", operator.log_call, name="hotline_call"),
    path("hotline/return-visits/", visits.return_visits, name="hotline_return_visits"),
    path("hotline/return-visits/<id:order_id>/", visits.record_return_visit, name="hotline_return_visit"),
    path("hotline/welfare-checks/", visits.welfare_checks, name="hotline_welfare_checks"),
    path("hotline/welfare-checks/<id:member_id>/", visits.record_welfare_check, name="hotline_welfare_check"),
]
