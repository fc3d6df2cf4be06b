"""Compile every .po under timebank/locale to .mo with polib (no GNU gettext needed)."""

from __future__ import annotations

from pathlib import Path

import polib  # type: ignore[import-untyped]

LOCALE = Path(__file__).resolve().parent.parent / "locale"


def main() -> None:
    for po_path in sorted(LOCALE.glob("*/LC_MESSAGES/*.po")):
        po = polib.pofile(str(po_path))
        po.save_as_mofile(str(po_path.with_suffix(".mo")))
        print(f"{po_path.relative_to(LOCALE.parent)}: {po.percent_translated()}% translated")


if __name__ == "__main__":
    main()
