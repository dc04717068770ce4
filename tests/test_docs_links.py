"""The docs point at real things: every relative link resolves inside the repository, and every
symbol `docs/rules.md` names is defined in the file its link points at.

So moving a module, renaming a function or a test, or splitting a SQL file breaks this test until
the doc follows. A link whose text is one backticked symbol (`ledger.post_batch`,
`ledger.products.payments.capture_payment`, `test_fee_is_rounded`) must find the symbol's last
component defined in the target: `def name`, `class name` or `name =` in Python (a test is
`def test_name`); `create [or replace] function|procedure|view|table|aggregate|[constraint]
trigger|[unique] index [ledger.]name` in SQL. A backticked text with a `/` in it is a path, not a
symbol: only its target must exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "docs" / "rules.md"
DOCUMENTS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]

# [text](target), not an image; the target stops at whitespace or the closing parenthesis.
_LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]+)\]\((?P<target>[^)\s]+)\)")
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|#|//)", re.IGNORECASE)
_SYMBOL_TEXT = re.compile(r"^`(?P<symbol>[A-Za-z_][A-Za-z0-9_.]*)`$")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _links(document: Path) -> list[tuple[str, str]]:
    """(text, target) of every relative link, outside fenced code blocks."""
    text = _FENCE.sub("", document.read_text(encoding="utf-8"))
    return [(m["text"], m["target"]) for m in _LINK.finditer(text) if not _EXTERNAL.match(m["target"])]


def _resolve(document: Path, target: str) -> Path:
    return (document.parent / target.split("#", 1)[0]).resolve()


def _python_defines(source: str, name: str) -> bool:
    pattern = (rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{name}\b|^[ \t]*class[ \t]+{name}\b"
               rf"|^[ \t]*{name}[ \t]*(?::[^=\n]*)?=(?!=)")
    return re.search(pattern, source, re.MULTILINE) is not None


def _sql_defines(source: str, name: str) -> bool:
    pattern = (rf"\bcreate\s+(?:or\s+replace\s+)?(?:function|procedure|view|table|aggregate"
               rf"|(?:constraint\s+)?trigger|(?:unique\s+)?index)\s+(?:ledger\.)?{name}\b")
    return re.search(pattern, source, re.IGNORECASE) is not None


def _defines(path: Path, symbol: str) -> bool:
    name = re.escape(symbol.rsplit(".", 1)[-1])
    source = path.read_text(encoding="utf-8")
    if path.suffix == ".sql":
        return _sql_defines(source, name)
    if path.parent.name == "tests" and symbol.startswith("test_"):
        return re.search(rf"^(?:async[ \t]+)?def[ \t]+{name}\(", source, re.MULTILINE) is not None
    return _python_defines(source, name)


def _symbol_links() -> list[tuple[str, Path]]:
    found = []
    for text, target in _links(RULES):
        match = _SYMBOL_TEXT.match(text)
        if match is not None:
            found.append((match["symbol"], _resolve(RULES, target)))
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_inside_the_repository(document: Path) -> None:
    broken = []
    for text, target in _links(document):
        path = _resolve(document, target)
        if not path.is_relative_to(ROOT):
            broken.append(f"[{text}]({target}) points outside the repository")
        elif not path.exists():
            broken.append(f"[{text}]({target}) points at nothing")
    assert broken == []


def test_every_symbol_the_rules_name_is_defined_where_they_point() -> None:
    links = _symbol_links()
    # The rules page maps rules to code, SQL and tests: far more than a handful of links.
    assert len(links) > 200
    missing = [f"`{symbol}` is not defined in {path.relative_to(ROOT)}"
               for symbol, path in links if path.is_file() and not _defines(path, symbol)]
    assert missing == []


def test_the_rules_link_code_sql_and_tests() -> None:
    kinds = {path.suffix if path.parent.name != "tests" else "test" for _, path in _symbol_links()}
    assert {".py", ".sql", "test"} <= kinds


@pytest.mark.parametrize(("source", "path_name", "symbol", "defined"), [
    ("def capture_payment(conn):\n", "payments.py", "ledger.products.payments.capture_payment", True),
    ("    def apply(self, value):\n", "rounding.py", "RoundingMode.apply", True),
    ("page_size_max = 500\n", "payments.py", "page_size_max", True),
    ("    page_size_max: int = 500\n", "context.py", "Limits.page_size_max", True),
    ("if page_size_max == 500:\n", "payments.py", "page_size_max", False),
    ("x = capture_payment(conn)\n", "payments.py", "capture_payment", False),
    ("create or replace function ledger.post_batch(p jsonb)", "0070.sql", "ledger.post_batch", True),
    ("create constraint trigger transactions_balanced after", "0001.sql", "transactions_balanced", True),
    ("select ledger.post_batch(%s)", "0070.sql", "ledger.post_batch", False),
    ("create function ledger.post_batch_v2(p jsonb)", "0070.sql", "ledger.post_batch", False),
    ("def test_fee_is_rounded(conn):\n", "tests/test_payments.py", "test_fee_is_rounded", True),
    ("def test_fee_is_rounded_twice(conn):\n", "tests/test_payments.py", "test_fee_is_rounded", False),
])
def test_what_counts_as_a_definition(tmp_path: Path, source: str, path_name: str, symbol: str,
                                     defined: bool) -> None:
    path = tmp_path / path_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source, encoding="utf-8")
    assert _defines(path, symbol) is defined
