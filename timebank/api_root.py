"""The one API under /api/v1/: the kit (timebank.api) with the logins' auth (timebank.orgs.auth) and every
app's router. A project module: it sits above every layer, so the kit and the apps need not know each other."""

from __future__ import annotations

from timebank.api.core import TimebankApi
from timebank.approvals.api import router as approvals_router
from timebank.catalogue.api import router as catalogue_router
from timebank.evaluation.api import router as evaluation_router
from timebank.exports.api import router as exports_router
from timebank.federation.api import router as federation_router
from timebank.funds.api import router as funds_router
from timebank.goods.api import router as goods_router
from timebank.hotline.api import router as hotline_router
from timebank.ledger.api import router as ledger_router
from timebank.members.api import router as members_router
from timebank.needs.api import router as needs_router
from timebank.notices.api import router as notices_router
from timebank.notify.api import router as notify_router
from timebank.orders.api import router as orders_router
from timebank.orgs.api import router as orgs_router
from timebank.orgs.auth import BearerToken, SessionAuth
from timebank.reports.api import router as reports_router
from timebank.safety.api import router as safety_router
from timebank.teams.api import router as teams_router

api = TimebankApi(auth=[BearerToken(), SessionAuth()])

# The order of mounting is the order of the document's paths.
for router in (
    orgs_router,
    members_router,
    ledger_router,
    catalogue_router,
    orders_router,
    needs_router,
    hotline_router,
    notify_router,
    notices_router,
    goods_router,
    funds_router,
    safety_router,
    teams_router,
    reports_router,
    evaluation_router,
    exports_router,
    approvals_router,
    federation_router,
):
    api.add_router("/", router)
