"""The demo world's size and the rules it is built with (the banks' defaults the simulation counts on)."""

from __future__ import annotations

MIN_MEMBERS = 12
# The head office's default settlement share (the generator creates the banks with default rules; the tiers'
# multipliers are the catalogue's part: `timebank.catalogue.demo_timeline.MULTIPLIERS`).
GOODS_SHARE_PERCENT = 50


class DemoDataExists(Exception):
    """The demo logins are already in this database."""
