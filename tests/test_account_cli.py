"""`ledger-core account status|limits|history` and `ledger-core transactions`: the same rules as
the API, typed refusals that write nothing, exit codes a script can test."""

from __future__ import annotations

import json

import pytest
from book import BANK, CAPPED, WALLET_U1, open_book, top_up

from ledger.account_lifecycle import limit_history, status_history
from ledger.accounts import Side, get_account
from ledger.posting import Leg, Transfer, post_one
from ledger_cli.main import main


@pytest.fixture
def cli(db_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", db_url)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err
    return run


def test_status_round_trip(cli, conn):
    open_book(conn)
    assert cli("account", "status", WALLET_U1, "frozen", "--reason", "review") == (
        0, f"{WALLET_U1}: frozen\n", "")
    assert cli("account", "status", WALLET_U1, "frozen", "--reason", "again")[1] == f"{WALLET_U1}: frozen (unchanged)\n"
    assert cli("account", "status", WALLET_U1, "closed", "--reason", "gone")[0] == 0
    code, _, err = cli("account", "status", WALLET_U1, "frozen", "--reason", "x")
    assert code == 2 and err.startswith("error: STATUS_TRANSITION_REFUSED")
    assert cli("account", "status", WALLET_U1, "active", "--reason", "back")[0] == 0
    code, out, _ = cli("account", "history", WALLET_U1)
    assert code == 0 and out.splitlines()[0] == f"{WALLET_U1}: active"
    assert [line.split("status ")[1] for line in out.splitlines() if " status " in line] == [
        "active: back", "closed: gone", "frozen: review", "active: created"]


def test_closing_a_funded_account_fails_and_writes_nothing(cli, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 7, "t1")
    before = status_history(conn, get_account(conn, WALLET_U1).id)
    code, _, err = cli("account", "status", WALLET_U1, "closed", "--reason", "gone")
    assert code == 2 and err.startswith("error: ACCOUNT_NOT_EMPTY")
    assert status_history(conn, get_account(conn, WALLET_U1).id) == before


@pytest.mark.parametrize("argv", [
    ("account", "status", WALLET_U1, "frozen", "--reason", ""),
    ("account", "status", "liabilities:wallets:nobody", "frozen", "--reason", "x"),
    ("account", "limits", CAPPED, "--min", "10", "--max", "5"),
    ("account", "limits", CAPPED, "--min", "99999999999999999999"),
    ("account", "limits", CAPPED, "--max", "ten"),
])
def test_refusals_exit_2_and_write_nothing(cli, conn, argv):
    open_book(conn)
    before = [status_history(conn, get_account(conn, code).id) + limit_history(conn, get_account(conn, code).id)
              for code in (WALLET_U1, CAPPED)]
    code, _, err = cli(*argv)
    assert code == 2 and err.startswith("error: ")
    assert [status_history(conn, get_account(conn, c).id) + limit_history(conn, get_account(conn, c).id)
            for c in (WALLET_U1, CAPPED)] == before


def test_limits_keep_what_is_left_out_and_clear_none(cli, conn):
    open_book(conn)
    assert cli("account", "limits", CAPPED, "--max", "2000")[1] == f"{CAPPED}: min 0, max 2000\n"
    assert cli("account", "limits", CAPPED, "--min", "none")[1] == f"{CAPPED}: min none, max 2000\n"
    assert cli("account", "limits", CAPPED, "--min", "none")[1].endswith("(unchanged)\n")
    out = cli("account", "history", CAPPED)[1]
    assert [line.split("limits ")[1] for line in out.splitlines() if " limits " in line] == [
        "min none, max 2000", "min 0, max 2000", "min 0, max 1000"]


def test_transactions_by_filter_and_page(cli, conn):
    open_book(conn)
    for n in range(5):
        post_one(conn, Transfer(f"k{n}", "wallet.top_up" if n % 2 else "payment.direct",
                                [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)], metadata={"n": n}))
    code, out, _ = cli("transactions", "--kind", "wallet.top_up")
    assert code == 0 and [line.split("\t")[3] for line in out.splitlines()] == ["k3", "k1"]
    code, out, _ = cli("transactions", "--metadata", json.dumps({"n": 4}))
    assert [line.split("\t")[3] for line in out.splitlines()] == ["k4"]
    code, out, _ = cli("transactions", "--account", WALLET_U1, "--first", "2")
    lines = out.splitlines()
    assert [line.split("\t")[3] for line in lines[:2]] == ["k4", "k3"] and lines[2].startswith("more: --after ")
    code, out, _ = cli("transactions", "--account", WALLET_U1, "--after", lines[2].split()[-1])
    assert [line.split("\t")[3] for line in out.splitlines()] == ["k2", "k1", "k0"]


@pytest.mark.parametrize("argv", [
    ("transactions", "--metadata", "[1]"),
    ("transactions", "--metadata", "{not json"),
    ("transactions", "--effective-from", "2026-03-04", "--effective-to", "2026-03-01"),
    ("transactions", "--recorded-to", "0001-01-01T00:00:00+00:00"),
    ("transactions", "--kind", "Bad Kind"),
    ("transactions", "--after", "forged"),
    ("transactions", "--first", "0"),
    ("transactions", "--account", "liabilities:wallets:nobody"),
])
def test_bad_filters_exit_2(cli, conn, argv):
    open_book(conn)
    code, _, err = cli(*argv)
    assert code == 2 and err.startswith("error: ")
