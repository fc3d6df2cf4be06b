"""The layers of the apps, written down once: an app may import only apps in layers below its own.

Read from the bottom up. `lib` is framework-free helpers; `web` and `api` are the kits every app builds its
pages and endpoints on, and import no app. Each domain app sits above what it builds on: the ledger knows
members but not orders; orders know the ledger; the hotline knows orders. When a lower app must tell a
higher one that something happened (a member left, a transaction was reversed), it publishes an event
(`timebank.lib.events`) that the higher app subscribes to in its `AppConfig.ready()`.

Project modules directly under `timebank/` (settings, urls) sit above every layer and mount the apps.
`tests/test_import_layers.py` reads this list and fails on any import that runs up or sideways, and on any
cycle between apps.
"""

from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    ("lib",),
    ("web", "api"),
    ("audit",),
    ("orgs",),
    ("ops",),
    ("members",),
    ("catalogue",),
    # Four eyes is a gate below every app that credits (the ledger, orders, teams, evaluation): each opens its
    # large credits here and posts them, for its own kinds, when ApprovalDecided says one was approved.
    ("approvals",),
    ("ledger",),
    ("goods",),
    ("orders",),
    ("notify",),
    ("federation",),
    ("needs",),
    ("hotline",),
    ("evaluation",),
    ("safety",),
    ("funds",),
    ("exports",),
    ("teams",),
    ("notices",),
    ("reports",),
    ("demo",),
)


def layer_of(app: str) -> int:
    for depth, apps in enumerate(LAYERS):
        if app in apps:
            return depth
    raise KeyError(f"app {app!r} is not placed in timebank/layers.py")
