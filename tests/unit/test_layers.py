"""The one-way flow config -> data -> models -> training -> evaluation -> inference, checked on the source.

A module may import fmkit modules of its own layer or of layers to its left. Above inference the top is
ordered too: workflows (runs) < apps (built on runs and models) < ui (the dashboard shows runs and apps)
< cli; the package root and __main__ may import anything. Imports inside functions count too: a lazy
import is still a dependency. (Strings in the task registry, config/tasks.py, name parts without importing
them, as spaCy's registry does.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fmkit"

# Rank of each top-level part of the package; lower ranks never import higher ones.
LAYERS = {
    "errors": 0, "utils": 0, "resources": 0,
    "config": 1,
    "data": 2,
    "models": 3,
    "training": 4, "tracking": 4,
    "evaluation": 5,
    "inference": 6,
    "workflows": 7,
    "apps": 8,
    "ui": 9,
    "cli": 10,
}
TOP = 99  # __init__, __main__


ROOT_API = 7  # `import fmkit`: the public API (fmkit.train, fmkit.load, __version__) is a thin layer over workflows


def layer_of(module: str, importer: bool = False) -> int:
    parts = module.split(".")
    if len(parts) < 2:
        return TOP if importer else ROOT_API
    return LAYERS.get(parts[1], TOP)


def fmkit_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("fmkit"):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names if alias.name.startswith("fmkit"))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_leftward(path: Path) -> None:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    own = layer_of(".".join(relative.parts), importer=True)
    if own == TOP:
        return
    wrong = [f"line {line}: {module}" for line, module in fmkit_imports(path) if layer_of(module) > own]
    assert not wrong, f"{relative} (layer {own}) imports a layer to its right: " + "; ".join(wrong)


def test_layer_table_knows_every_package() -> None:
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    unknown = parts - set(LAYERS) - {"workflows", "apps", "ui", "cli"}
    assert not unknown, f"add these packages to LAYERS or the top: {sorted(unknown)}"
