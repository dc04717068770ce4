"""Statements: opening, lines with running balance, closing, totals; keyset pages; cut time."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from book import BANK, MERCHANT_M1, WALLET_U1, open_book
from ledger.accounts import Side
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post, post_one
from ledger.statements import StatementCursor, opening_balance, statement_page, statement_totals

DAY = datetime(2026, 3, 1, tzinfo=timezone.utc)


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
    assert [l.running_balance for l in seen[:4]] == [1100, 1070, 1170, 1270]
    assert seen[-1].running_balance == 1000 + 1000 - 150
    totals = statement_totals(conn, wallet, DAY, end, page.known_at)
    assert (totals.opening, totals.closing, totals.total_debits, totals.total_credits) == (1000, 1850, 150, 1000)
    effective = [l.effective_at for l in seen]
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
    assert [l.running_balance for l in again.lines] == [l.running_balance for l in first.lines + rest.lines]
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
    known = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)
    page = statement_page(conn, ids[WALLET_U1], "CNY", DAY, DAY + timedelta(days=1), first=2, known_at=known)
    position = StatementCursor.decode(page.lines[-1].cursor)
    last = page.lines[-1]
    assert position == StatementCursor(last.effective_at, last.entry_id, 20, known)
    assert position.encode() == last.cursor
    with pytest.raises(ValidationError):
        StatementCursor.decode("eyJ4IjoxfQ")


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
