"""Every time a caller supplies lies in [1970-01-01T00:00:00Z, 9999-01-01T00:00:00Z), enforced by
the engine (a typed LD001 naming the field) and by the tables' CHECK constraints: a time the core
cannot read is never written, so no committed posting can fail when it is read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import psycopg
import psycopg.types.datetime
import pytest
from book import BANK, WALLET_U1, open_book

from ledger.accounts import Side
from ledger.errors import ValidationError, translate
from ledger.journal import get_transactions
from ledger.periods import close_period
from ledger.posting import Leg, Transfer, post_one

UTC = UTC


def _transfer(key: str, **extra: object) -> dict[str, object]:
    return {"op": "transfer", "key": key, "kind": "wallet.top_up", "metadata": {},
            "legs": [{"account": BANK, "side": "debit", "amount": 5},
                     {"account": WALLET_U1, "side": "credit", "amount": 5}], **extra}


def _refusal(conn: psycopg.Connection, request: dict[str, object]) -> ValidationError:
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("select ledger.post_batch(%s::jsonb)", (json.dumps([request]),))
    error = translate(caught.value)
    assert isinstance(error, ValidationError), caught.value
    return error


def _transactions(conn: psycopg.Connection) -> int:
    return conn.execute("select count(*) from ledger.transactions").fetchone()[0]


def test_a_time_before_year_one_is_refused_and_nothing_is_written(conn):
    open_book(conn)
    before = _transactions(conn)
    error = _refusal(conn, _transfer("y0", effective_at="0001-01-01T00:00:00+14:00"))
    assert error.field == "effectiveAt" and error.details["request"] == 1
    assert _transactions(conn) == before


@pytest.mark.parametrize("text", ["infinity", "-infinity", "not a time", "294277-01-01T00:00:00Z",
                                  "1969-12-31T23:59:59.999999Z", "9999-01-01T00:00:00Z"])
def test_unreadable_or_out_of_range_effective_times_are_refused_by_name(conn, text):
    open_book(conn)
    assert _refusal(conn, _transfer("bad", effective_at=text)).field == "effectiveAt"


def test_the_first_instant_is_accepted_and_reads_back(conn):
    open_book(conn)
    first = datetime(1970, 1, 1, tzinfo=UTC)
    posted = post_one(conn, Transfer("epoch", "wallet.top_up", [Leg(BANK, Side.DEBIT, 5), Leg(WALLET_U1, Side.CREDIT, 5)],
                                     effective_at=first))
    assert get_transactions(conn, [posted.transaction_id])[posted.transaction_id].effective_at == first
    error = _refusal(conn, _transfer("before-epoch", effective_at=(first - timedelta(microseconds=1)).isoformat()))
    assert error.field == "effectiveAt"


def test_expiry_outside_the_range_is_refused_by_name_before_the_hold_rules(conn):
    open_book(conn)
    hold = {**_transfer("h"), "op": "hold"}
    assert _refusal(conn, {**hold, "expires_at": "9999-01-01T00:00:00Z"}).field == "expiresAt"
    # The last instant is in range: what refuses it is the hold lifetime rule, not the range.
    inside = _refusal(conn, {**hold, "expires_at": "9998-12-31T23:59:59.999999Z"})
    assert inside.field == "expiresAt" and "must expire after now and within" in inside.message


@pytest.mark.parametrize("table, column, last, past", [
    ("period_closes", "closed_until", "9998-12-31T23:59:59.999999Z", "9999-01-01T00:00:00Z"),
    ("period_closes", "closed_until", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999Z"),
])
def test_the_tables_refuse_what_the_engine_refuses(conn, table, column, last, past):
    query = psycopg.sql.SQL("insert into ledger.{} ({}) values (%s)").format(
        psycopg.sql.Identifier(table), psycopg.sql.Identifier(column))
    with conn.transaction(force_rollback=True):
        conn.execute(query, (last,))
    with pytest.raises(psycopg.errors.CheckViolation) as caught, conn.transaction():
        conn.execute(query, (past,))
    error = translate(caught.value)
    assert isinstance(error, ValidationError) and error.field == column


def test_every_caller_time_column_has_its_range_constraint(conn):
    rows = conn.execute("""
        select c.conrelid::regclass::text from pg_constraint c
         where c.connamespace = 'ledger'::regnamespace and c.contype = 'c' and c.conname like '%\\_range'""").fetchall()
    constrained = {row[0] for row in rows}
    assert {"ledger.transactions", "ledger.entries", "ledger.open_holds", "ledger.period_closes", "ledger.loans",
            "ledger.loan_plans", "ledger.purchase_invoices", "ledger.factoring_advances",
            "ledger.fund_incomes"} <= constrained


def test_a_period_cannot_be_closed_before_the_range(conn):
    with pytest.raises(ValidationError) as caught:
        close_period(conn, datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))))
    assert caught.value.field == "until"


class _UnreadableTimes(psycopg.types.datetime.TimestamptzLoader):
    """Reads every time as psycopg reads one before year 1: with a DataError."""

    def load(self, data):
        raise psycopg.DataError("timestamp too small (before year 1)")


def test_a_committed_posting_is_not_answered_as_failed_when_its_read_back_fails(conn):
    from graphql_api.core.gather import _post_gathered

    open_book(conn)
    conn.adapters.register_loader("timestamptz", _UnreadableTimes)
    outcomes = _post_gathered(conn, [Transfer("k", "wallet.top_up", [Leg(BANK, Side.DEBIT, 5),
                                                                     Leg(WALLET_U1, Side.CREDIT, 5)])])
    assert not isinstance(outcomes[0], Exception) and outcomes[0].transaction is None
    assert conn.execute("select count(*) from ledger.transactions where id = %s",
                        (outcomes[0].transaction_id,)).fetchone()[0] == 1


def test_a_product_date_past_the_range_reaches_the_client_typed(api, conn):
    """A day past the accepted years is refused where the variable is read (the API's Date scalar),
    before any resolver: BAD_USER_INPUT naming the field, with nothing written."""
    from test_factoring_graphql import RECORD

    variables = {"input": {"idempotencyKey": "inv-far", "supplierId": "S1", "invoiceNo": "INV-FAR", "amount": "100",
                           "dueDate": "9999-06-01"}}
    [error] = api.errors(RECORD, variables, role="operator")
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and ".dueDate" in error["message"], error
    assert "9998-12-31" in error["message"], error
    assert conn.execute("select count(*) from ledger.purchase_invoices").fetchone()[0] == 0
