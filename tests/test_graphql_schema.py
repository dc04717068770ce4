"""The SDL snapshot and the custom scalars."""

from __future__ import annotations

from pathlib import Path

import pytest
from book import BANK, WALLET_U1, open_book

from graphql_api.scalars import InvalidScalar, parse_datetime, parse_minor_units
from graphql_api.schema import sdl

SNAPSHOT = Path(__file__).resolve().parent.parent / "graphql_api" / "schema.graphql"


def test_sdl_snapshot_is_current():
    assert SNAPSHOT.read_text() == sdl(), (
        "the schema changed: regenerate the snapshot with "
        "`.venv/bin/python -m graphql_api.schema > graphql_api/schema.graphql` and review the diff")


def test_contract_names_are_in_the_schema():
    text = sdl()
    for name in ["interface LedgerError", "type Money", "type Balance", "type Account", "type Transaction",
                 "type Entry", "type Hold", "type Statement", "type StatementLine", "type TrialBalance",
                 "scalar MinorUnits", "scalar DateTime", "scalar JSON", "balanceChanged(accountCode: String!)",
                 "postTransaction(input: PostTransactionInput!)", "createAccount(input: CreateAccountInput!)",
                 "createHold(input: CreateHoldInput!)", "postHold(input: PostHoldInput!)",
                 "voidHold(input: VoidHoldInput!)", "reverseTransaction(input: ReverseTransactionInput!)",
                 "closePeriod(input: ClosePeriodInput!)"]:
        assert name in text, name
    for error in ["InsufficientFunds", "UnbalancedTransaction", "IdempotencyConflict", "AccountNotFound",
                  "CurrencyMismatch", "ValidationError", "PeriodClosed", "HoldNotPending", "AccountFrozen",
                  "Forbidden"]:
        assert f"type {error} implements LedgerError" in text, error


@pytest.mark.parametrize("good,value", [("0", 0), ("-12345", -12345), ("9223372036854775807", 2**63 - 1),
                                        ("-9223372036854775807", -(2**63 - 1)), ("10", 10)])
def test_minor_units_accepts_digit_strings(good, value):
    assert parse_minor_units(good) == value


@pytest.mark.parametrize("bad", [12345, 1.5, "1e3", " 1", "1 ", "+1", "1.0", "", "-", "0x10", "١٢",
                                 "9223372036854775808", "99999999999999999999", None, True,
                                 "0001", "00", "-0", "-00", "+0", "-01", "00000000000000000001"])
def test_minor_units_refuses_anything_else(bad):
    with pytest.raises(InvalidScalar):
        parse_minor_units(bad)


@pytest.mark.parametrize("text", ["0001", "-0", "+1", "00000000000000000001"])
def test_minor_units_takes_only_the_canonical_spelling(text):
    with pytest.raises(InvalidScalar, match="no leading zeros") as refused:
        parse_minor_units(text)
    assert "out of range" not in str(refused.value)


@pytest.mark.parametrize("text", ["9223372036854775808", "-9223372036854775808", "99999999999999999999", "9" * 5000])
def test_minor_units_past_64_bits_are_out_of_range(text):
    with pytest.raises(InvalidScalar, match="MinorUnits is out of range: it does not fit in 64 bits "
                                            r"\(from -9223372036854775807 to 9223372036854775807\)"):
        parse_minor_units(text)


def test_datetime_needs_an_offset():
    assert parse_datetime("2026-01-31T09:30:00+08:00").utcoffset().total_seconds() == 8 * 3600
    assert parse_datetime("2026-01-31T01:30:00Z").utcoffset().total_seconds() == 0
    for bad in ["2026-01-31T09:30:00", "yesterday", "", 1700000000]:
        with pytest.raises(InvalidScalar):
            parse_datetime(bad)


_POST = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { __typename } }"""


def _input(amount):
    return {"input": {"idempotencyKey": "k", "kind": "wallet.top_up", "entries": [
        {"accountCode": BANK, "side": "DEBIT", "amount": amount},
        {"accountCode": WALLET_U1, "side": "CREDIT", "amount": amount}]}}


@pytest.mark.parametrize("bad", [100, 100.0, "1e3", " 1", "18446744073709551616"])
def test_api_refuses_amounts_that_are_not_digit_strings(api, conn, bad):
    open_book(conn)
    errors = api.errors(_POST, _input(bad), role="operator")
    assert "MinorUnits" in errors[0]["message"]


def test_api_refuses_a_number_literal_for_minor_units(api, conn):
    open_book(conn)
    query = f"""mutation {{ postTransaction(input: {{idempotencyKey: "k", kind: "wallet.top_up", entries: [
        {{accountCode: "{BANK}", side: DEBIT, amount: 100}},
        {{accountCode: "{WALLET_U1}", side: CREDIT, amount: 100}}]}}) {{ __typename }} }}"""
    errors = api.errors(query, role="operator")
    assert "MinorUnits" in errors[0]["message"]


def test_api_refuses_a_naive_datetime(api, conn):
    open_book(conn)
    errors = api.errors("""query($at: DateTime) { account(code: "assets:bank:icbc") { balance(asOf: $at) {
        posted { amount } } } }""", {"at": "2026-01-01T00:00:00"})
    assert "offset" in errors[0]["message"]
