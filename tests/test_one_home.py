"""Issue 15: each order-state group, "overdue", "insurance in force" and "valid certificate" is written in one
place. These scans fail when one is written again by hand somewhere else (the rules themselves, and that
the query and one-row forms agree, are tested in tests/test_order_rules.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "timebank"
STATES = "requested|dispatched|accepted|in_service|completed|confirmed|reviewed|cancelled|disputed"

# (what, pattern, the one file allowed to hold it)
HOMES = (
    ("a group of order states", re.compile(r"OrderState\.\w+\s*,\s*(?:\n\s*)?OrderState\.\w+"), "orders/rules.py"),
    ("a group of order states as text", re.compile(rf"[\"'](?:{STATES})[\"']\s*,\s*[\"'](?:{STATES})[\"']"), ""),
    ("a slice of a state group", re.compile(r"_STATES\[\d*:\d*\]"), ""),
    ("overdue", re.compile(r"def (?:is_)?overdue|def overdue_q"), "orders/models.py"),
    ("insurance in force", re.compile(r"starts_on__lte=\w+,\s*ends_on__gte"), "members/models.py"),
    ("a valid certificate", re.compile(r"valid_from__lte"), "members/models.py"),
    ("the bank's day boundaries", re.compile(r"def day_bounds\b"), "lib/clock.py"),
)


def test_each_rule_has_one_home() -> None:
    found: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        rel = str(path.relative_to(ROOT))
        text = path.read_text(encoding="utf-8")
        for what, pattern, home in HOMES:
            if rel != home and (m := pattern.search(text)):
                line = text.count("\n", 0, m.start()) + 1
                found.append(f"{what} written again in timebank/{rel}:{line}: {m.group(0)!r}")
    assert not found, "\n".join(found)
