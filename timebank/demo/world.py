"""The demo world's size and the rules it is built with (the banks' defaults the simulation counts on)."""

from __future__ import annotations

OPENING_REASON = "纸质台账迁移"
MIN_MEMBERS = 12
# The head office's default multipliers and settlement share (the generator creates the banks with default rules).
MULTIPLIERS = {"ordinary": 1, "technical": 2, "professional": 3}
TIER_NAMES = {"ordinary": "普通服务", "technical": "技术服务", "professional": "专业服务"}
GOODS_SHARE_PERCENT = 50


class DemoDataExists(Exception):
    """The demo logins are already in this database."""
