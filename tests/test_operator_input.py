"""What reaches the ledger other than through GraphQL, given wrong: bank files, the command line's
arguments and files, settings, an unreachable database. Each is refused with one line naming
what is wrong and a non-zero exit (never a traceback), and writes nothing."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from graphql_api.context import Limits
from ledger.accounts import AccountType, NewAccount, create_account
from ledger.bank_file import BankFileInvalid, read_bank_file
from ledger.errors import ValidationError
from ledger.settings import CONFIG_FILE_ENV
from ledger.tokens import parse_duration
from ledger_cli.main import main

BANK = "assets:reserves:icbc"
VARIABLES = ["DATABASE_URL", "LEDGER_BUSINESS_TIME_ZONE", "LEDGER_CURSOR_KEY", CONFIG_FILE_ENV,
             *(f"LEDGER_{f.name.upper()}" for f in dataclasses.fields(Limits)),
             "LEDGER_SERVE_HOST", "LEDGER_SERVE_PORT", "LEDGER_SERVE_WORKERS"]


def refused(capsys: pytest.CaptureFixture[str], argv: list[str], words: str) -> str:
    """Run the command; it must exit 2 with one line on stderr holding `words`."""
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and words in error, error
    assert error.count("\n") == 1 and "Traceback" not in error, error
    return error


def count(conn, table: str) -> int:
    return conn.execute(f"select count(*) from ledger.{table}").fetchone()[0]


@pytest.mark.parametrize("command", [["verify"], ["journal"], ["migrate"], ["token", "list"]])
def test_an_unreachable_database_is_one_line(monkeypatch, capsys, command):
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1:1/postgres")  # nothing listens on port 1
    refused(capsys, command, "DATABASE_UNAVAILABLE: cannot reach the database")


@pytest.mark.parametrize("data, line", [
    (b"date,reference,amount\n2026-10-01,r\x001,1.00\n", 2),
    # ASCII in UTF-16 without a byte-order mark is valid UTF-8, NULs and all
    ("date,reference,amount\n2026-10-01,r1,1.00\n".encode("utf-16-le"), 1),
])
def test_a_nul_byte_refuses_the_bank_file(data, line):
    with pytest.raises(BankFileInvalid) as bad:
        read_bank_file(data, "CNY")
    assert bad.value.line == line and "NUL byte" in bad.value.message


def test_a_bank_file_with_lone_cr_line_ends_says_so():
    with pytest.raises(BankFileInvalid) as bad:
        read_bank_file(b"date,reference,amount\r2026-10-01,r1,1.00\r", "CNY")
    assert "a line ends in a lone carriage return (CR)" in bad.value.message
    assert "universal-newline" not in bad.value.message


def test_reconcile_refuses_bad_files_and_stores_no_run(conn, db_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db_url)
    create_account(conn, NewAccount(BANK, "ICBC reserve", AccountType.ASSET, "CNY"))
    nul = tmp_path / "nul.csv"
    nul.write_bytes(b"date,reference,amount\n2026-10-01,r\x001,1.00\n")
    refused(capsys, ["reconcile", "--account", BANK, "--file", str(nul)], "line 2: holds a NUL byte")
    # A device never ends: the read stops past the bound instead of filling the memory.
    refused(capsys, ["reconcile", "--account", BANK, "--file", "/dev/zero"],
            "/dev/zero holds more than 10,485,760 bytes")
    refused(capsys, ["reconcile", "--account", BANK, "--file", str(tmp_path)], "Is a directory")
    assert count(conn, "reconciliation_runs") == 0


def test_checkpoint_files_in_and_out(conn, db_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db_url)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    refused(capsys, ["verify", "--checkpoint-file", str(deep)], "malformed: nested too deep")
    refused(capsys, ["verify", "--checkpoint-file", "/dev/zero"], "/dev/zero holds more than")
    # An export that cannot be written stores no checkpoint.
    refused(capsys, ["checkpoint", "--export", str(tmp_path)], f"cannot write {tmp_path}: Is a directory")
    assert count(conn, "audit_checkpoints") == 0


def test_statement_output_that_cannot_be_written(conn, db_url, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("DATABASE_URL", db_url)
    create_account(conn, NewAccount(BANK, "ICBC reserve", AccountType.ASSET, "CNY"))
    for output in (tmp_path, tmp_path / "missing" / "s.csv"):
        refused(capsys, ["statement", "--account", BANK, "--from", "2026-10-01", "--to", "2026-11-01",
                         "--output", str(output)], f"VALIDATION: cannot write {output}")


def test_an_output_file_is_whole_or_left_as_it_was(conn, db_url, monkeypatch, capsys, tmp_path):
    """The output is staged beside the target and moved into place only when the command has
    succeeded: a command that fails part-way leaves the old file, not an empty one."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    create_account(conn, NewAccount(BANK, "ICBC reserve", AccountType.ASSET, "CNY"))
    target = tmp_path / "s.csv"
    target.write_bytes(b"the statement of yesterday\n")
    period = ["--from", "2026-10-01", "--to", "2026-11-01", "--output", str(target)]
    refused(capsys, ["statement", "--account", "assets:no_such_account", *period], "ACCOUNT_NOT_FOUND")
    assert target.read_bytes() == b"the statement of yesterday\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"], "no staging file is left behind"
    assert main(["statement", "--account", BANK, *period]) == 0
    assert f"{BANK},CNY,opening,2026-10-01".encode() in target.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["s.csv"]
    assert main(["statement", "--account", BANK, "--from", "2026-10-01", "--to", "2026-11-01",
                 "--output", "/dev/null"]) == 0  # a device is written to, never replaced


@pytest.mark.parametrize("argv", [
    ["close-period", "0001-01-01"],
    ["statement", "--account", BANK, "--from", "0001-01-01", "--to", "2026-01-01"],
    ["transactions", "--effective-from", "0001-01-01"],
])
def test_a_day_outside_the_accepted_years_is_refused_on_the_command_line(conn, db_url, monkeypatch, capsys, argv):
    # 0001-01-01 00:00 in Shanghai is in year 0 in UTC: past what a datetime can hold.
    monkeypatch.setenv("DATABASE_URL", db_url)
    refused(capsys, argv, "0001-01-01 is not accepted: it must lie from 1970-01-01 to 9998-12-31")
    assert count(conn, "period_closes") == 0


@pytest.mark.parametrize("text", ["1dx", "1d2h", "30d garbage"])
def test_a_duration_with_anything_after_it_is_refused(text):
    with pytest.raises(ValidationError):
        parse_duration(text)
    assert parse_duration(" 30d ") == timedelta(days=30)


@pytest.mark.parametrize(("where", "text", "named"), [
    ("file", 'database_url = "postgresql://u@db\\u0000.example/x"\n', "setting database_url (from the settings file"),
    ("env", "DATABASE_URL=postgres ql://u:secret word@h/d", "setting database_url (from the environment variable"),
    ("file", "statement_timeout_ms = 2147483648\n", "setting statement_timeout_ms"),
    ("env", "LEDGER_POOL_SIZE_MAX=100000000000000000000", "setting pool_size_max"),
    ("file", "pool_size_max = true\n", "not true"),
    ("file", 'serve_host = "local host"\n', "setting serve_host"),
])
def test_settings_the_ledger_cannot_run_with_stop_it_at_start_up(monkeypatch, tmp_path, capsys, where, text, named):
    for variable in VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    if where == "env":
        variable, value = text.split("=", 1)
        monkeypatch.setenv(variable, value)
    else:
        path = tmp_path / "ledger.toml"
        path.write_text(text, encoding="utf-8")
        monkeypatch.setenv(CONFIG_FILE_ENV, str(path))
    error = refused(capsys, ["config"], named)
    assert "secret" not in error  # the database URL is a secret: its text is not repeated


def test_a_holder_id_with_a_line_break_is_refused(conn, db_url, monkeypatch, capsys):
    """`token list` prints one token a line, tab-separated: a holder id may not break the line."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    refused(capsys, ["token", "create", "--role", "holder", "--holder", "a\nb"], "U+000A")
    assert count(conn, "api_tokens") == 0
