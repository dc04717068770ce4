"""The mutation-testing catalogue (tools/mutants) still applies: every mutant's text is found
exactly once in its file and its tests exist, so a refactor cannot silently disable a mutant.
The mutants themselves run with `python -m tools.mutants` (docs/mutation-testing.md), not here."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _catalogue():
    spec = importlib.util.spec_from_file_location("mutant_catalogue", ROOT / "tools" / "mutants" / "catalogue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module.MUTANTS


MUTANTS = _catalogue()


def test_the_catalogue_covers_the_engine_and_the_core():
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))
    assert sum(m.path.startswith("sql/functions/") for m in MUTANTS) >= 40
    for path in ("ledger/audit.py", "ledger/products/rounding.py", "graphql_api/core/hold_create.py"):
        assert any(m.path == path for m in MUTANTS), path


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_each_mutant_still_applies(mutant):
    text = (ROOT / mutant.path).read_text(encoding="utf-8")
    for find, replace in mutant.edits:
        assert text.count(find) == 1, f"{mutant.name}: {find!r} is no longer found once in {mutant.path}"
        assert replace != find
        text = text.replace(find, replace)
    assert mutant.tests and mutant.what
    for node in mutant.tests:
        path, _, function = node.partition("::")
        source = (ROOT / path).read_text(encoding="utf-8")
        assert not function or re.search(rf"^(async )?def {re.escape(function)}\(", source, re.MULTILINE), node
