from django.contrib import admin
from django.urls import include, path

from timebank.api_root import api

# Each app's pages, under the one `web` URL namespace their names have always had (the page kit, timebank/web,
# mounts none of them: it imports no app).
WEB_PAGES = [
    path("", include(f"timebank.{app}.urls_web"))
    for app in (
        "orders",
        "members",
        "orgs",
        "hotline",
        "goods",
        "catalogue",
        "ledger",
        "funds",
        "safety",
        "reports",
        "notify",
        "needs",
        "federation",
    )
]

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("disclosure/", include("timebank.funds.urls")),
    path("notices/", include("timebank.notices.urls")),
    path("evaluation/", include("timebank.evaluation.urls")),
    path("", include("timebank.exports.urls")),  # downloads and the public /verify/<serial>/ page
    path("", include("timebank.teams.urls")),  # volunteer teams and group activities
    path("staff/approvals/", include("timebank.approvals.urls")),  # 待审核: four eyes on large credits
    path("", include((WEB_PAGES, "web"))),
]
