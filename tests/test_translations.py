"""Every user-facing string has an English translation (zh-hans is the source language)."""

from __future__ import annotations

import re
from pathlib import Path

import polib  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent / "timebank"
PY_STRING = re.compile(r"""\b_\(\s*"((?:[^"\\]|\\.)+)"\s*\)""")
TEMPLATE_STRING = re.compile(r"""{%\s*(?:translate|trans)\s+"([^"]+)"\s*%}""")


def source_strings() -> set[str]:
    found: set[str] = set()
    for path in ROOT.rglob("*.py"):
        if "migrations" not in path.parts:
            found |= set(PY_STRING.findall(path.read_text(encoding="utf-8")))
    for path in ROOT.rglob("*.html"):
        found |= set(TEMPLATE_STRING.findall(path.read_text(encoding="utf-8")))
    return found


def test_every_string_is_translated_to_english() -> None:
    po = polib.pofile(str(ROOT / "locale" / "en" / "LC_MESSAGES" / "django.po"))
    translated = {e.msgid for e in po if e.msgstr and "fuzzy" not in e.flags and not e.obsolete}
    missing = sorted(s for s in source_strings() if s not in translated)
    assert missing == [], "run `make messages` and translate: " + ", ".join(missing)


def test_compiled_catalogue_is_current() -> None:
    po_path = ROOT / "locale" / "en" / "LC_MESSAGES" / "django.po"
    mo = polib.mofile(str(po_path.with_suffix(".mo")))
    compiled = {e.msgid: e.msgstr for e in mo}
    for entry in polib.pofile(str(po_path)):
        if entry.msgstr and not entry.obsolete:
            assert compiled.get(entry.msgid) == entry.msgstr, f"stale .mo: run `make messages` ({entry.msgid})"
