"""Imports run one way: command line (ledger_cli) -> graphql_api -> ledger products
(ledger/products) -> ledger core (ledger/*.py) -> SQL. The demo book (ledger/demo) sits above the
products and is loaded only by the command line; its parts never import its loader.

Every import counts, at module level or inside a function, `import x` or `from x import y`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ledger", "ledger_cli", "graphql_api")

# What a module of each layer may not import.
FORBIDDEN = {
    "core": {"products", "demo", "demo loader", "api", "cli"},
    "products": {"demo", "demo loader", "api", "cli"},
    "demo": {"demo loader", "api", "cli"},
    "demo loader": {"api", "cli"},
    "api": {"demo", "demo loader", "cli"},
    "cli": set(),
}


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def layer_of(name: str) -> str | None:
    """The layer a dotted module name belongs to; None for anything outside the project."""
    if _within(name, "ledger_cli"):
        return "cli"
    if _within(name, "graphql_api"):
        return "api"
    if _within(name, "ledger.demo.loader"):
        return "demo loader"
    if _within(name, "ledger.demo"):
        return "demo"
    if _within(name, "ledger.products"):
        return "products"
    if _within(name, "ledger"):
        return "core"
    return None


def imported_names(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` imports, anywhere in it; `from p import n` counts p and p.n (n may be a module)."""
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")):
            names.add(node.args[0].value)
    return names


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    importer = layer_of(module)
    assert importer is not None, module
    return sorted(f"{module} ({importer}) imports {name} ({layer_of(name)})"
                  for name in imported_names(source, module, is_package=is_package)
                  if layer_of(name) in FORBIDDEN[importer])


def project_modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found.append((".".join(parts), path))
    return found


def test_every_module_imports_only_downwards() -> None:
    modules = project_modules()
    names = {name for name, _ in modules}
    assert {"ledger.posting", "ledger.products.chart", "ledger.demo.loader", "graphql_api.app",
            "ledger_cli.main"} <= names
    found = [problem for name, path in modules
             for problem in violations(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py")]
    assert found == []


@pytest.mark.parametrize(("module", "source"), [
    ("ledger.accounts", "def f():\n    from graphql_api.context import can_see\n"),
    ("ledger.accounts", "import ledger_cli.main\n"),
    ("ledger.posting", "from ledger.products import chart\n"),
    ("ledger.statements", "from ledger import demo\n"),
    ("ledger.progress", "from .products.fund import Fund\n"),
    ("ledger.products.fund", "def f():\n    from ledger.demo.anchor import demo_anchor\n"),
    ("ledger.products.credit", "from ..demo import anchor\n"),
    ("ledger.demo.fund", "from ledger.demo.loader import DEMO_STEPS\n"),
    ("ledger.demo.book", "from ledger.demo import loader\n"),
    ("ledger.demo.loader", "from graphql_api.app import create_app\n"),
    ("graphql_api.core.queries", "class Q:\n    def f(self):\n        import ledger_cli.options\n"),
    ("graphql_api.app", "from ledger.demo.loader import load_demo\n"),
    ("ledger.audit", "import importlib\nimportlib.import_module('ledger_cli.core_commands')\n"),
])
def test_an_upward_import_is_caught(module: str, source: str) -> None:
    assert violations(source, module)


@pytest.mark.parametrize(("module", "source"), [
    ("ledger_cli.serve_commands",
     "def f():\n    from graphql_api.app import create_app\n    from ledger.demo.loader import load_demo\n"),
    ("graphql_api.fund.types", "from ledger.products import fund\nfrom ledger.tokens import Role\n"),
    ("ledger.products.fund_income", "from ledger.progress import Progress\n"),
    ("ledger.demo.fund", "from ledger.demo.anchor import demo_anchor\nfrom ledger.products import fund\n"),
    ("ledger.demo.loader", "from ledger.demo import book, fund\n"),
    ("ledger.statements", "from .epoch import epoch_us\nimport psycopg\n"),
])
def test_a_downward_import_is_allowed(module: str, source: str) -> None:
    assert violations(source, module) == []
