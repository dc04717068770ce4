"""A type error breaks the suite: `mypy` with the project's configuration ([tool.mypy] in
pyproject.toml: strict) over `ledger`, `graphql_api` and `ledger_cli`."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_strict_finds_no_errors() -> None:
    stdout, stderr, status = api.run([
        "--config-file", str(ROOT / "pyproject.toml"),
        "--cache-dir", str(ROOT / ".mypy_cache"),  # gitignored; a warm cache makes the run a few seconds
        str(ROOT / "ledger"), str(ROOT / "graphql_api"), str(ROOT / "ledger_cli"),
    ])
    assert status == 0, f"mypy reports type errors:\n{stdout}{stderr}"
    assert stdout.startswith("Success: no issues found"), stdout
