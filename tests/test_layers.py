"""The layers point one way: the core (`truffle/`) knows nothing of the outer layers, and no
product module imports the tools or the stand-ins for Ashby and the mail server."""

import ast
from pathlib import Path

import pytest

from tests.utils.processes import REPO_ROOT

# Each top-level part of the product, with the parts it may import (besides itself and
# third-party packages). `tools` sits above everything and may import anything.
MAY_IMPORT: dict[str, set[str]] = {
    "truffle": set(),
    "migrations": {"truffle"},
    "activities": {"truffle"},
    "workflows": {"truffle", "activities"},
    "api": {"truffle", "workflows"},
    "worker": {"truffle", "activities", "workflows"},
}
OURS = {*MAY_IMPORT, "tools", "tests"}


def imported_parts(source: str, module: str) -> set[str]:
    """The top-level parts of this repository that `source` (the module `module`) imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = module.split(".")[: -node.level]
                found.add((package or [module])[0])
            elif node.module:
                found.add(node.module.split(".")[0])
    return found & OURS


def product_modules() -> list[tuple[str, str, Path]]:
    """(part, dotted module name, path) of every Python file of the product."""
    modules = [("worker", "worker", REPO_ROOT / "worker.py")]
    for part in MAY_IMPORT.keys() - {"worker"}:
        for path in sorted((REPO_ROOT / part).rglob("*.py")):
            dotted = ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
            modules.append((part, dotted, path))
    return modules


def violations() -> list[str]:
    found = []
    for part, module, path in product_modules():
        for imported in imported_parts(path.read_text(), module) - {part}:
            if imported not in MAY_IMPORT[part]:
                found.append(f"{path.relative_to(REPO_ROOT)} imports {imported}")
    return sorted(found)


def test_every_part_of_the_product_imports_only_the_layers_below_it() -> None:
    assert len(product_modules()) > 40
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from api.temporal import ScreeningGateway", "truffle.x", {"api"}),
        ("import tools.ashby_sandbox.client", "api.x", {"tools"}),
        ("def f():\n    from workflows import screening", "truffle.x", {"workflows"}),
        ("from . import contracts", "truffle.x", {"truffle"}),
        ("import httpx\nfrom sqlmodel import Session", "truffle.x", set()),
    ],
)
def test_the_import_walk_sees_every_kind_of_import(
    source: str, module: str, expected: set[str]
) -> None:
    assert imported_parts(source, module) == expected
