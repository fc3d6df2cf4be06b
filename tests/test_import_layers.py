"""The import check of issue 15: no app imports an app of its own or a higher layer, so no two apps import
each other. Layers are declared once, in `timebank/layers.py`. Imports inside functions count: an import
that runs up the layers at call time is still an upward dependency."""

from __future__ import annotations

import ast
import pathlib
from collections import defaultdict

from timebank.layers import LAYERS, layer_of

ROOT = pathlib.Path(__file__).resolve().parent.parent / "timebank"

# Upward imports that are still being taken apart, as (importing app, imported app). Each entry is a debt
# with a name: the test fails when a new one appears and when a listed one is gone (so the list only
# shrinks). The goal of issue 15 is an empty set.
KNOWN_UPWARD: set[tuple[str, str]] = set()


def app_imports() -> dict[tuple[str, str], list[str]]:
    """(importer app, imported app) → where, for every import of one app by another outside migrations."""
    found: dict[tuple[str, str], list[str]] = defaultdict(list)
    apps = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if len(parts) < 2 or "migrations" in parts:
            continue  # project modules (settings, urls) mount everything; migrations name models by label
        app = parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            else:
                continue
            for module in modules:
                bits = module.split(".")
                if bits[0] == "timebank" and len(bits) > 1 and bits[1] in apps and bits[1] != app:
                    where = f"{path.relative_to(ROOT.parent)}:{node.lineno}"
                    if where not in found[(app, bits[1])]:
                        found[(app, bits[1])].append(where)
    return found


def upward(found: dict[tuple[str, str], list[str]]) -> dict[tuple[str, str], list[str]]:
    return {pair: where for pair, where in found.items() if layer_of(pair[1]) >= layer_of(pair[0])}


def test_every_app_is_placed_in_one_layer() -> None:
    apps = sorted(p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists())
    placed = [app for layer in LAYERS for app in layer]
    assert len(placed) == len(set(placed)), "an app is placed twice"
    assert sorted(set(placed)) == apps, "timebank/layers.py must place every app, and only apps"


def test_no_import_runs_up_or_sideways() -> None:
    bad = upward(app_imports())
    new = {pair: where for pair, where in bad.items() if pair not in KNOWN_UPWARD}
    assert not new, "imports against timebank/layers.py:\n" + "\n".join(
        f"{a} → {b}: {', '.join(w)}" for (a, b), w in sorted(new.items())
    )
    gone = KNOWN_UPWARD - set(bad)
    assert not gone, f"fixed, so remove from KNOWN_UPWARD: {sorted(gone)}"


def test_no_two_apps_import_each_other() -> None:
    found = app_imports()
    cycles = sorted((a, b) for (a, b) in found if a < b and (b, a) in found)
    allowed = {tuple(sorted(pair)) for pair in KNOWN_UPWARD}
    assert not [c for c in cycles if c not in allowed], f"apps that import each other: {cycles}"


MAX_LINES = 800  # issue 15: a file a newcomer can read; past this, split by what the parts are about


def test_no_python_file_is_longer_than_800_lines() -> None:
    long = {
        str(path.relative_to(ROOT.parent)): n
        for path in ROOT.rglob("*.py")
        if "migrations" not in path.parts and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"split these: {long}"
