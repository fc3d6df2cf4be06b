"""The demo's timeline, composed from the apps' parts.

Each app draws the steps that call its own actions, in its `demo_timeline` module (`timebank/<app>/...`), on top
of the parts of the apps it builds on (`timebank/layers.py`); this class puts them together. Where an order's
story has a step of a higher app (a hotline call, a return visit, a need it meets, a service the fund buys), the
orders' part names the point (`OrderStories.call`, ...) and the higher app's part, above it here, draws it.
`generator.build_plan` calls the strands in a fixed order; the steps are then walked in time order (`simulation`).
"""

from __future__ import annotations

from timebank.funds.demo_timeline import FundsTimeline
from timebank.hotline.demo_timeline import HotlineTimeline
from timebank.notify.demo_timeline import NotifyTimeline


class Timeline(FundsTimeline, HotlineTimeline, NotifyTimeline):
    """Draws the steps of the hundred days since launch; `Simulation` then walks them in time order.

    Members and their late registrations (`members`), the menus (`catalogue`), the ledger's operations and the
    settlement (`ledger`), the shelves and redemptions (`goods`), the history and the orders (`orders`), staff on
    duty (`notify`), needs and the census import (`needs`), calls, return visits and welfare checks (`hotline`),
    insurance, certificates, training and incidents (`safety`), the fund books (`funds`)."""
