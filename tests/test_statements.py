"""Statements: opening, lines with running balance, closing, totals; keyset pages; cut time."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from book import BANK, MERCHANT_M1, WALLET_U1, open_book

from ledger.accounts import Side
from ledger.cursor_keys import cursor_key, key_env_var, parse_key
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post, post_one
from ledger.statements import (
    StatementCursor,
    opening_balance,
    statement_binding,
    statement_cut,
    statement_page,
    statement_totals,
)

DAY = datetime(2026, 3, 1, tzinfo=UTC)


def _movements(conn) -> None:
    """Ten top-ups of 100 on consecutive days, spends of 30 on even days; one before the period."""
    requests = [Transfer("before", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1000), Leg(WALLET_U1, Side.CREDIT, 1000)],
                         effective_at=DAY - timedelta(days=1))]
    for day in range(10):
        at = DAY + timedelta(days=day, hours=1)
        requests.append(Transfer(f"t{day}", "wallet.top_up",
                                 [Leg(BANK, Side.DEBIT, 100), Leg(WALLET_U1, Side.CREDIT, 100)], effective_at=at))
        if day % 2 == 0:
            requests.append(Transfer(f"s{day}", "payment.direct",
                                     [Leg(WALLET_U1, Side.DEBIT, 30), Leg(MERCHANT_M1, Side.CREDIT, 30)],
                                     effective_at=at + timedelta(hours=1)))
    post(conn, requests)


def test_a_statement_pages_through_the_period_with_running_balances(conn):
    ids = open_book(conn)
    _movements(conn)
    wallet = ids[WALLET_U1]
    end = DAY + timedelta(days=10)
    seen, after, pages = [], None, 0
    while True:
        page = statement_page(conn, wallet, "CNY", DAY, end, first=4, after=after)
        seen.extend(page.lines)
        pages += 1
        if not page.has_next_page:
            break
        after = page.lines[-1].cursor
    assert pages == 4 and len(seen) == 15
    assert [line.running_balance for line in seen[:4]] == [1100, 1070, 1170, 1270]
    assert seen[-1].running_balance == 1000 + 1000 - 150
    totals = statement_totals(conn, wallet, DAY, end, page.known_at)
    assert (totals.opening, totals.closing, totals.total_debits, totals.total_credits) == (1000, 1850, 150, 1000)
    effective = [line.effective_at for line in seen]
    assert effective == sorted(effective)


def test_a_statement_cut_is_stable_under_later_backdated_postings(conn):
    ids = open_book(conn)
    _movements(conn)
    wallet = ids[WALLET_U1]
    end = DAY + timedelta(days=10)
    first = statement_page(conn, wallet, "CNY", DAY, end, first=5)
    # A posting backdated into the period, after the first page was cut.
    post_one(conn, Transfer("late", "wallet.top_up", [Leg(BANK, Side.DEBIT, 7), Leg(WALLET_U1, Side.CREDIT, 7)],
                            effective_at=DAY + timedelta(minutes=1)))
    rest = statement_page(conn, wallet, "CNY", DAY, end, first=500, after=first.lines[-1].cursor)
    assert len(first.lines) + len(rest.lines) == 15
    assert rest.lines[-1].running_balance == 1850
    again = statement_page(conn, wallet, "CNY", DAY, end, first=500, known_at=first.known_at)
    assert [line.running_balance for line in again.lines] == [
        line.running_balance for line in first.lines + rest.lines]
    fresh = statement_page(conn, wallet, "CNY", DAY, end, first=500)
    assert len(fresh.lines) == 16 and fresh.lines[-1].running_balance == 1857


def test_empty_and_exact_pages(conn):
    ids = open_book(conn)
    _movements(conn)
    wallet = ids[WALLET_U1]
    empty = statement_page(conn, wallet, "CNY", DAY + timedelta(days=30), DAY + timedelta(days=31))
    assert empty.lines == [] and not empty.has_next_page
    exact = statement_page(conn, wallet, "CNY", DAY, DAY + timedelta(days=10), first=15)
    assert len(exact.lines) == 15 and not exact.has_next_page
    none = statement_page(conn, wallet, "CNY", DAY, DAY + timedelta(days=10), first=0)
    assert none.lines == [] and none.has_next_page


@pytest.mark.parametrize("kwargs, field", [
    ({"first": 501}, "first"),
    ({"first": -1}, "first"),
    ({"after": "not-a-cursor"}, "after"),
    ({"after": "eyJ4IjoxfQ"}, "after"),  # valid base64 JSON of another shape
])
def test_bad_page_arguments(conn, kwargs, field):
    ids = open_book(conn)
    with pytest.raises(ValidationError) as caught:
        statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), **kwargs)
    assert caught.value.field == field


def test_the_cursor_carries_the_position_and_the_cut(conn):
    ids = open_book(conn)
    post(conn, [Transfer(f"c{n}", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)],
                         effective_at=DAY + timedelta(hours=n)) for n in range(3)])
    known = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    page = statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2, known_at=known)
    key, binding = cursor_key(conn), statement_binding(ids[WALLET_U1], DAY, DAY + timedelta(days=1))
    position = StatementCursor.decode(page.lines[-1].cursor, key=key, binding=binding)
    last = page.lines[-1]
    assert position == StatementCursor(last.effective_at, last.entry_id, 20, known)
    assert position.encode(key=key, binding=binding) == last.cursor
    assert statement_cut(conn, ids[WALLET_U1], DAY, DAY + timedelta(days=1), last.cursor) == known
    with pytest.raises(ValidationError, match="not a cursor this API issued"):
        StatementCursor.decode("eyJ4IjoxfQ", key=key, binding=binding)


def _two_pages(conn, ids):
    post(conn, [Transfer(f"f{n}", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(WALLET_U1, Side.CREDIT, 10)],
                         effective_at=DAY + timedelta(hours=n)) for n in range(4)])
    return statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2)


def _refused(conn, account_id, after, start=DAY, end=DAY + timedelta(days=1)):
    with pytest.raises(ValidationError, match="not a cursor this API issued") as caught:
        statement_page(conn, account_id, "CNY", start, end, first=2, after=after)
    assert caught.value.field == "after"


def test_a_cursor_with_an_edited_balance_is_refused(conn):
    ids = open_book(conn)
    cursor = _two_pages(conn, ids).lines[-1].cursor
    payload, tag = cursor.split(".")
    position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert position["balance"] == 20
    position["balance"] = 100_000_000_000
    forged = base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":"), sort_keys=True).encode())
    _refused(conn, ids[WALLET_U1], forged.decode().rstrip("=") + "." + tag)
    _refused(conn, ids[WALLET_U1], forged.decode().rstrip("="))  # the old unsigned form


def test_a_cursor_pages_only_the_account_and_period_it_was_issued_for(conn):
    ids = open_book(conn)
    cursor = _two_pages(conn, ids).lines[-1].cursor
    post(conn, [Transfer("m", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10), Leg(MERCHANT_M1, Side.CREDIT, 10)],
                         effective_at=DAY + timedelta(hours=5))])
    _refused(conn, ids[MERCHANT_M1], cursor)
    _refused(conn, ids[WALLET_U1], cursor, end=DAY + timedelta(days=2))
    _refused(conn, ids[WALLET_U1], cursor, start=DAY - timedelta(microseconds=1))
    rest = statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2, after=cursor)
    assert [line.running_balance for line in rest.lines] == [30, 40]


def test_a_cursor_signed_with_another_key_is_refused(conn, monkeypatch):
    ids = open_book(conn)
    cursor = _two_pages(conn, ids).lines[-1].cursor
    monkeypatch.setenv(key_env_var, "00" * 32)
    _refused(conn, ids[WALLET_U1], cursor)
    signed_with_env = statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2)
    rest = statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2,
                          after=signed_with_env.lines[-1].cursor)
    assert [line.running_balance for line in rest.lines] == [30, 40]


def test_every_one_byte_change_to_a_cursor_is_refused_or_harmless(conn):
    """Each position replaced by each of a few other characters: a typed error on `after`, or
    (where base64 ignores the changed bits) exactly the page the cursor gives."""
    ids = open_book(conn)
    cursor = _two_pages(conn, ids).lines[-1].cursor
    expected = statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2, after=cursor)
    outcomes = set()
    for index, char in enumerate(cursor):
        for replacement in {chr(ord(char) ^ 1), "A", ".", "\u00e9"} - {char}:
            changed = cursor[:index] + replacement + cursor[index + 1:]
            try:
                page = statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2,
                                      after=changed)
            except ValidationError as refused:
                assert refused.field == "after"
                outcomes.add("refused")
            else:
                assert page.lines == expected.lines
                outcomes.add("same page")
    assert "refused" in outcomes


def test_the_stored_key_is_one_per_database_and_kept(conn, monkeypatch):
    monkeypatch.delenv(key_env_var, raising=False)
    key = cursor_key(conn)
    assert len(key) == 32
    assert bytes(conn.execute("select key from ledger.cursor_key").fetchone()[0]) == key
    with pytest.raises(Exception, match="append-only"):
        conn.execute("update ledger.cursor_key set key = %s", (b"x" * 32,))


@pytest.mark.parametrize("text, size", [("ab" * 16, 16), (base64.b64encode(b"k" * 20).decode(), 20),
                                        (base64.urlsafe_b64encode(b"\xff" * 24).decode().rstrip("="), 24)])
def test_the_key_is_read_as_hex_or_base64(text, size):
    assert len(parse_key(text)) == size


@pytest.mark.parametrize("text", ["ab" * 8 + "zz", "abcd", "not a key!"])
def test_a_short_or_garbled_key_is_refused(text):
    with pytest.raises(ValidationError) as caught:
        parse_key(text)
    assert caught.value.field == key_env_var


def test_the_period_must_be_ordered(conn):
    ids = open_book(conn)
    with pytest.raises(ValidationError, match="must be after"):
        statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY)


def test_the_opening_balance_is_the_same_summed_from_either_end(conn):
    """Forwards, backwards with a limit, backwards without: every path gives the sum of the posted
    entries effective before the start and known at the cut, backdated postings included."""
    ids = open_book(conn)
    wallet = ids[WALLET_U1]
    _movements(conn)
    cut = conn.execute("select clock_timestamp()").fetchone()[0]
    post(conn, [Transfer("late", "wallet.top_up", [Leg(BANK, Side.DEBIT, 7), Leg(WALLET_U1, Side.CREDIT, 7)],
                         effective_at=DAY + timedelta(days=3))])  # backdated, and after the cut
    rows = conn.execute("""select effective_at, recorded_at,
                                  case when side = 'credit' then amount else -amount end
                             from ledger.entries where account_id = %s and layer = 'posted'""", (wallet,)).fetchall()
    starts = sorted({r[0] for r in rows}) + [DAY - timedelta(days=2), DAY + timedelta(days=30)]
    for known_at in (cut, conn.execute("select clock_timestamp()").fetchone()[0]):
        for start in starts:
            expected = sum(signed for effective_at, recorded_at, signed in rows
                           if effective_at < start and recorded_at <= known_at)
            for scan_max in (0, 1, 2, 3, 100):
                assert opening_balance(conn, wallet, start, known_at, scan_max=scan_max) == expected, \
                    (start, known_at, scan_max)
