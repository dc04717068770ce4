"""The SQLSTATEs the database raises and the ones ledger/errors.py translates are the same set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from ledger import errors

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
# ledger.raise_error('LD...', ...) or a plain `raise ... using errcode = 'LD...'`.
_RAISED = re.compile(r"(?:raise_error\s*\(\s*|errcode\s*=\s*)'(LD[0-9A-Z]{3})'")


def _raised_in_sql() -> set[str]:
    return {code for path in sorted(SQL_DIR.rglob("*.sql"))
            for code in _RAISED.findall(path.read_text(encoding="utf-8"))}


def test_every_translated_sqlstate_is_raised_in_sql_and_every_raised_one_is_translated() -> None:
    raised = _raised_in_sql()
    assert raised, "no SQLSTATE found in sql/: the pattern no longer matches how the SQL raises errors"
    translated = errors.translated_sqlstates()
    assert sorted(translated - raised) == [], "translated but never raised by the database"
    assert sorted(raised - translated) == [], "raised by the database but not translated"


@pytest.mark.parametrize("sqlstate", sorted(_raised_in_sql()))
def test_each_raised_sqlstate_becomes_its_error_class(conn: psycopg.Connection[Any], sqlstate: str) -> None:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("select ledger.raise_error(%s, %s)", (sqlstate, "refused on purpose"))
    translated = errors.translate(caught.value)
    assert translated is not None and translated.sqlstate == sqlstate
    assert translated.message == "refused on purpose"


def test_errors_python_raises_itself_carry_a_code_and_no_sqlstate() -> None:
    from ledger.products import credit, factoring, payments
    from ledger.products.onboarding import NotOnboarded

    product_errors = [NotOnboarded, payments.PaymentNotFound, payments.BankNotFound, factoring.InvoiceNotFound,
                      factoring.AmountExceedsOutstanding, credit.LoanNotFound, credit.ConversionRefused]
    assert all(cls.sqlstate is None and cls.code != errors.LedgerError.code for cls in product_errors)


def test_a_refused_update_of_an_append_only_table_translates(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("update ledger.transactions set description = 'x'")
    translated = errors.translate(caught.value)
    assert isinstance(translated, errors.AppendOnly)
    assert "append-only" in translated.message
