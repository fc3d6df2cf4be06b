"""The 12349 hotline console's pages (included by timebank/web/urls.py, in the `web` namespace)."""

from django.urls import path

from timebank.web.views import operator

urlpatterns = [
    path("hotline/", operator.console, name="hotline"),
    path("hotline/search/", operator.search, name="hotline_search"),
    path("hotline/calls/", operator.log_unknown_call, name="hotline_unknown_call"),
    path("hotline/callers/<id:member_id>/", operator.caller, name="hotline_caller"),
    path("hotline/callers/<id:member_id>/order/", operator.create_order, name="hotline_order"),
    path(
        "hotline/callers/<id:member_id>/orders/<id:order_id>/dispatch/",
        operator.dispatch,
        name="hotline_dispatch",
    ),
    path("hotline/callers/<id:member_id>/call/", operator.log_call, name="hotline_call"),
    path("hotline/return-visits/", operator.return_visits, name="hotline_return_visits"),
    path("hotline/return-visits/<id:order_id>/", operator.record_return_visit, name="hotline_return_visit"),
    path("hotline/welfare-checks/", operator.welfare_checks, name="hotline_welfare_checks"),
    path("hotline/welfare-checks/<id:member_id>/", operator.record_welfare_check, name="hotline_welfare_check"),
]
