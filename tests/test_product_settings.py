"""Consumer credit's settings, versioned by the business day they take effect: read by every role,
changed by an admin only and never retroactively, each refusal typed and writing nothing; a loan
keeps the terms in force on its opening day unless its origination sets its own late-fee rate.
Over GraphQL and the command line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from ledger import calendar
from ledger.accounts import Side
from ledger.errors import ValidationError
from ledger.posting import Leg, Transfer, post
from ledger.products import chart, credit, credit_repay
from ledger.products import settings as versions
from ledger.products.onboarding import onboard_customer, onboard_merchant

Conn = psycopg.Connection[Any]
ERRORS = "... on LedgerError { code message } ... on ValidationError { field }"
SETTINGS = """on interestFreeDays lateFeeRatePerDay lateFeeStopDpd writeOffDpd payoffRemainingFees
    provisionRates { bucket rate }"""
READ = f"query($on: Date) {{ creditSettings(on: $on) {{ {SETTINGS} }} }}"
HISTORY = """query($first: Int, $after: String) { creditSettingsHistory(first: $first, after: $after) {
    edges { cursor node { id effectiveFrom recordedAt recordedBy settings { name value } } }
    pageInfo { hasNextPage endCursor } } }"""
SET = f"""mutation($input: SetCreditSettingsInput!) {{ setCreditSettings(input: $input) {{ __typename
    ... on CreditSettingsSet {{ change {{ id effectiveFrom recordedBy settings {{ name value }} }}
        settings {{ {SETTINGS} }} }} {ERRORS} }} }}"""
ORIGINATE = f"""mutation($input: OriginateLoanInput!) {{ originateLoan(input: $input) {{ __typename
    ... on LoanOriginated {{ replayed loan {{ id lateFeeRatePerDay accounts {{ role code }} }} }} {ERRORS} }} }}"""


def _day(offset: int) -> str:
    return (calendar.today() + timedelta(days=offset)).isoformat()


class _Days(int):
    """A day as an offset from today, in a test's parameters: resolved when the test runs, not
    when it is collected, so a run that crosses the business day's midnight still asks for the
    day it means."""


def _resolved(values: dict[str, Any]) -> dict[str, Any]:
    return {name: _day(value) if isinstance(value, _Days) else value for name, value in values.items()}


def _changes(conn: Conn) -> int:
    row = conn.execute("select count(*) from ledger.product_setting_changes").fetchone()
    assert row is not None
    return int(row[0])


def _set(api: Any, role: str = "admin", **input: Any) -> dict[str, Any]:
    return api.data(SET, {"input": input}, role=role)["setCreditSettings"]  # type: ignore[no-any-return]


def test_every_role_reads_the_settings_in_force_today(api: Any) -> None:
    for role, holder in (("admin", None), ("operator", None), ("auditor", None), ("holder", "U1")):
        settings = api.data(READ, role=role, holder=holder)["creditSettings"]
        assert settings["on"] == _day(0)
        assert (settings["interestFreeDays"], settings["lateFeeRatePerDay"], settings["lateFeeStopDpd"],
                settings["writeOffDpd"], settings["payoffRemainingFees"]) == (30, "0.0005", 90, 180, "ALL")
        assert {p["bucket"]: p["rate"] for p in settings["provisionRates"]} == {
            "CURRENT": "0.01", "DPD_1_30": "0.1", "DPD_31_60": "0.25", "DPD_61_90": "0.5", "DPD_91_180": "0.75",
            "WRITE_OFF": "1"}
    history = api.data(HISTORY, role="auditor")["creditSettingsHistory"]["edges"]
    assert [(e["node"]["effectiveFrom"], e["node"]["recordedBy"]) for e in history] == [("1970-01-01", "migration")]
    assert {"name": "lateFeeRatePerDay", "value": "0.0005"} in history[0]["node"]["settings"]


def test_a_change_applies_from_its_day_on_and_the_history_lists_it(api: Any, conn: Conn) -> None:
    changed = _set(api, effectiveFrom=_day(1), lateFeeRatePerDay="0.00080", payoffRemainingFees="NONE")
    assert changed["__typename"] == "CreditSettingsSet"
    assert changed["change"]["effectiveFrom"] == _day(1) and changed["change"]["recordedBy"].startswith("token ")
    assert changed["change"]["settings"] == [{"name": "lateFeeRatePerDay", "value": "0.0008"},
                                             {"name": "payoffRemainingFees", "value": "none"}]
    assert changed["settings"]["lateFeeRatePerDay"] == "0.0008" and changed["settings"]["interestFreeDays"] == 30
    # Today and before: as they were. From the day on: the new values, the others unchanged.
    assert api.data(READ)["creditSettings"]["lateFeeRatePerDay"] == "0.0005"
    assert api.data(READ, {"on": _day(1)}, role="holder", holder="U9")["creditSettings"]["payoffRemainingFees"] == "NONE"
    assert api.data(READ, {"on": _day(300)})["creditSettings"]["lateFeeRatePerDay"] == "0.0008"
    # A later change for the same day supersedes it; one for a later day applies from there.
    _set(api, effectiveFrom=_day(1), lateFeeRatePerDay="0.0009")
    _set(api, effectiveFrom=_day(5), interestFreeDays=45)
    assert api.data(READ, {"on": _day(1)})["creditSettings"]["lateFeeRatePerDay"] == "0.0009"
    assert api.data(READ, {"on": _day(4)})["creditSettings"]["interestFreeDays"] == 30
    on_five = api.data(READ, {"on": _day(5)})["creditSettings"]
    assert (on_five["interestFreeDays"], on_five["lateFeeRatePerDay"], on_five["payoffRemainingFees"]) == (
        45, "0.0009", "NONE")
    first = api.data(HISTORY, {"first": 2})["creditSettingsHistory"]
    assert [e["node"]["effectiveFrom"] for e in first["edges"]] == [_day(5), _day(1)]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = api.data(HISTORY, {"first": 5, "after": first["pageInfo"]["endCursor"]})["creditSettingsHistory"]
    assert [e["node"]["effectiveFrom"] for e in rest["edges"]] == [_day(1), "1970-01-01"]
    assert rest["pageInfo"]["hasNextPage"] is False
    assert _changes(conn) == 4


@pytest.mark.parametrize(("input", "field"), [
    ({"effectiveFrom": _Days(0), "lateFeeRatePerDay": "0.001"}, "effectiveFrom"),       # today: already begun
    ({"effectiveFrom": _Days(-1), "lateFeeRatePerDay": "0.001"}, "effectiveFrom"),      # the past
    ({"effectiveFrom": "1970-01-01", "lateFeeRatePerDay": "0.001"}, "effectiveFrom"),
    ({"effectiveFrom": _Days(versions.schedule_days_max + 1), "lateFeeRatePerDay": "0.001"}, "effectiveFrom"),
    ({"effectiveFrom": _Days(1)}, "input"),                                             # nothing to change
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "0.0101"}, "lateFeeRatePerDay"),  # above 1% a day
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "-0.001"}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "0.0000001"}, "lateFeeRatePerDay"),  # 7 places
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "1e999999999"}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "1e-999999999"}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "9" * 5000}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "NaN"}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "Infinity"}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "0.001\n1"}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "\u0661"}, "lateFeeRatePerDay"),  # Arabic-Indic one
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": ""}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": " 0.001"}, "lateFeeRatePerDay"),    # taken as written
    ({"effectiveFrom": _Days(1), "lateFeeRatePerDay": "0.001\n"}, "lateFeeRatePerDay"),
    ({"effectiveFrom": _Days(1), "provisionRateCurrent": "0.01 "}, "provisionRateCurrent"),
    ({"effectiveFrom": _Days(1), "provisionRateCurrent": "1.0001"}, "provisionRateCurrent"),
    ({"effectiveFrom": _Days(1), "provisionRate1To30": "0.12345"}, "provisionRate1To30"),
    ({"effectiveFrom": _Days(1), "interestFreeDays": -1}, "interestFreeDays"),
    ({"effectiveFrom": _Days(1), "interestFreeDays": 366}, "interestFreeDays"),
    ({"effectiveFrom": _Days(1), "writeOffDpd": 0}, "writeOffDpd"),
    ({"effectiveFrom": _Days(1), "lateFeeStopDpd": 2_147_483_647}, "lateFeeStopDpd"),
])
def test_refusals_are_typed_and_write_nothing(api: Any, conn: Conn, input: dict[str, Any], field: str) -> None:
    before = _changes(conn)
    refused = _set(api, **_resolved(input))
    assert (refused["__typename"], refused["code"], refused["field"]) == ("ValidationError", "VALIDATION", field)
    assert _changes(conn) == before
    assert api.data(READ, {"on": _day(1)})["creditSettings"]["lateFeeRatePerDay"] == "0.0005"


@pytest.mark.parametrize("variables", [
    {"effectiveFrom": _Days(1), "interestFreeDays": 2**31},          # past GraphQL's 32-bit Int
    {"effectiveFrom": _Days(1), "interestFreeDays": 1.5},
    {"effectiveFrom": "10000-01-01", "interestFreeDays": 1},       # no such calendar date
    {"effectiveFrom": "0001-01-01", "interestFreeDays": 1},        # the calendar's ends: outside the Date scalar
    {"effectiveFrom": "9999-12-31", "interestFreeDays": 1},
    {"effectiveFrom": "2026-02-30", "interestFreeDays": 1},
    {"effectiveFrom": _Days(1), "lateFeeRatePerDay": 0.001},         # a number, not a decimal string
    {"effectiveFrom": _Days(1), "payoffRemainingFees": "SOME"},
    {"effectiveFrom": _Days(1), "lateFeeRatePerDay": "0.001\u0000"},  # NUL: refused with the request
])
def test_malformed_input_is_refused_before_anything_runs(api: Any, conn: Conn, variables: dict[str, Any]) -> None:
    before = _changes(conn)
    response = api.http(SET, {"input": _resolved(variables)})
    assert response.status_code in (200, 400), response.text
    body = response.json()
    assert body["errors"] and body.get("data") is None
    assert all(error.get("extensions", {}).get("code") != "INTERNAL" for error in body["errors"])
    assert _changes(conn) == before


def test_only_an_admin_changes_settings(api: Any, conn: Conn) -> None:
    for role, holder in (("operator", None), ("auditor", None), ("holder", "U1")):
        refused = _set(api, role=role, effectiveFrom=_day(1), lateFeeRatePerDay="0.001") \
            if role != "holder" else api.data(SET, {"input": {"effectiveFrom": _day(1), "lateFeeRatePerDay": "0.001"}},
                                              role=role, holder=holder)["setCreditSettings"]
        assert (refused["__typename"], refused["code"]) == ("Forbidden", "FORBIDDEN")
    assert _changes(conn) == 1


def test_a_query_for_a_day_before_the_calendar_starts_is_refused(api: Any) -> None:
    body = api.query(READ, {"on": "1969-12-31"})  # before the days the Date scalar takes
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "$on" in body["errors"][0]["message"] and "1970-01-01" in body["errors"][0]["message"]


# The rules of the product module, which the API and the command line share ------------------------

def _books(conn: Conn) -> None:
    onboard_customer(conn, "U1")
    onboard_merchant(conn, "M1", "0.006")
    credit.open_credit_line(conn, "U1", 10_000_000)
    chart.ensure_platform_accounts(conn)
    post(conn, [Transfer("fund-U1", "test.fund", [Leg(chart.OWN_FUNDS, Side.DEBIT, 1_000_000),
                                                   Leg(chart.wallet("U1"), Side.CREDIT, 1_000_000)])])


def _scheduled_days_ago(conn: Conn, days_ago: int, changes: dict[str, str]) -> None:
    """A change made `days_ago + 1` days ago for `days_ago` days ago: the only way a test can
    have a change in force on a past day, since none can be made for a day already begun."""
    effective = calendar.today() - timedelta(days=days_ago)
    credit.set_settings(conn, changes, effective, recorded_by="test",
                        today=lambda: effective - timedelta(days=1))


def test_a_loan_keeps_the_terms_of_its_opening_day_at_the_day_boundary(conn: Conn) -> None:
    _books(conn)
    _scheduled_days_ago(conn, 5, {"late_fee_rate_per_day": "0.001", "interest_free_days": "20"})
    change_day = calendar.today() - timedelta(days=5)
    last_instant_before = calendar.day_start(change_day) - timedelta(microseconds=1)
    before = credit.purchase_on_credit(conn, "p-before", "U1", "M1", 10_000, last_instant_before)
    after = credit.purchase_on_credit(conn, "p-after", "U1", "M1", 10_000, calendar.day_start(change_day))
    assert (before.late_fee_rate_per_day, before.schedule[0].due_date) == (
        Decimal("0.0005"), change_day - timedelta(days=1) + timedelta(days=30))
    assert (after.late_fee_rate_per_day, after.schedule[0].due_date) == (
        Decimal("0.001"), change_day + timedelta(days=20))
    # Bank-style loans alike, by their start date; and a change scheduled now alters neither.
    old = credit.originate_loan(conn, "o-before", "U1", 100_000, "0.01", 3, credit.Method.ANNUITY,
                                change_day - timedelta(days=1))
    new = credit.originate_loan(conn, "o-after", "U1", 100_000, "0.01", 3, credit.Method.ANNUITY, change_day)
    assert (old.late_fee_rate_per_day, new.late_fee_rate_per_day) == (Decimal("0.0005"), Decimal("0.001"))
    credit.set_settings(conn, {"late_fee_rate_per_day": "0.002"}, calendar.today() + timedelta(days=1),
                        recorded_by="test")
    assert [credit.get_loan(conn, loan.id).late_fee_rate_per_day for loan in (before, after, old, new)] == [
        Decimal("0.0005"), Decimal("0.001"), Decimal("0.0005"), Decimal("0.001")]


def test_the_payoff_policy_applies_by_the_day_of_the_payoff(conn: Conn) -> None:
    _books(conn)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 100_000, datetime.now(UTC) - timedelta(days=3))
    credit.convert_to_instalments(conn, "c1", loan.id, 3, "0.005")
    _scheduled_days_ago(conn, 0, {"payoff_remaining_fees": "none"})
    yesterday = credit_repay.payoff_quote(conn, loan.id, calendar.today() - timedelta(days=1))
    today = credit_repay.payoff_quote(conn, loan.id)
    assert yesterday.remaining_fees_fen > 0 and today.remaining_fees_fen == 0


def test_the_product_module_refuses_what_the_api_would(conn: Conn) -> None:
    before = _changes(conn)
    for changes, effective in (({"no_such_setting": "1"}, 1), ({"payoff_remaining_fees": "some"}, 1),
                               ({"interest_free_days": "\u0663"}, 1), ({"late_fee_rate_per_day": "0.001"}, 0)):
        with pytest.raises(ValidationError):
            credit.set_settings(conn, changes, calendar.today() + timedelta(days=effective), recorded_by="test")
    with pytest.raises(ValidationError):
        credit.load_settings(conn, calendar.today().replace(year=1969))
    assert _changes(conn) == before


def test_settings_changes_are_append_only(conn: Conn) -> None:
    with pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("update ledger.product_setting_changes set effective_from = '2000-01-01'")
    with pytest.raises(psycopg.Error, match="append-only"):
        conn.execute("delete from ledger.product_setting_changes")


def test_origination_may_set_the_loans_own_late_fee_rate(api: Any, conn: Conn) -> None:
    onboard_customer(conn, "U1")
    base = {"idempotencyKey": "o1", "customerId": "U1", "principal": "100000", "monthlyRate": "0.01", "months": 3,
            "method": "ANNUITY", "startDate": _day(0)}
    own = api.data(ORIGINATE, {"input": base | {"lateFeeRatePerDay": "0.0003"}}, role="operator")["originateLoan"]
    assert own["__typename"] == "LoanOriginated" and own["loan"]["lateFeeRatePerDay"] == "0.0003"
    conflict = api.data(ORIGINATE, {"input": base | {"lateFeeRatePerDay": "0.0004"}}, role="operator")["originateLoan"]
    assert conflict["code"] == "IDEMPOTENCY_CONFLICT"
    default = api.data(ORIGINATE, {"input": base | {"idempotencyKey": "o2"}}, role="operator")["originateLoan"]
    assert default["loan"]["lateFeeRatePerDay"] == "0.0005"
    loans = conn.execute("select count(*) from ledger.loans").fetchone()
    for rate in ("0.02", "-0.0001", "0.00000001", "1e400", "abc"):
        refused = api.data(ORIGINATE, {"input": base | {"idempotencyKey": f"bad-{rate}", "lateFeeRatePerDay": rate}},
                           role="operator")["originateLoan"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "lateFeeRatePerDay")
    assert conn.execute("select count(*) from ledger.loans").fetchone() == loans
    # The loan lists its own accounts, each an account the ledger has.
    accounts = own["loan"]["accounts"]
    assert [a["role"] for a in accounts] == ["PRINCIPAL", "FEES", "INTEREST", "LATE_FEES", "ALLOWANCE"]
    loan_id = own["loan"]["id"]
    assert accounts[0]["code"] == f"assets:loans:principal:{loan_id}"
    for account in accounts:
        found = api.data("query($c: String!) { account(code: $c) { code } }", {"c": account["code"]})["account"]
        assert found == {"code": account["code"]}


# The command line -------------------------------------------------------------------------------

def test_cli_shows_sets_and_lists_settings(db_url: str, conn: Conn, monkeypatch: Any, capsys: Any) -> None:
    from ledger_cli.main import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["credit", "settings", "show"]) == 0
    shown = capsys.readouterr().out
    assert f"in force on {_day(0)}" in shown and "late_fee_rate_per_day 0.0005" in shown
    assert main(["credit", "settings", "set", "--effective-from", _day(2), "late_fee_rate_per_day=0.0007",
                 "write_off_dpd=200"]) == 0
    said = capsys.readouterr().out
    assert f"from {_day(2)}" in said and "by cli" in said and "write_off_dpd 200" in said
    assert main(["credit", "settings", "show", "--on", _day(2)]) == 0
    assert "late_fee_rate_per_day 0.0007" in capsys.readouterr().out
    for refused in (["--effective-from", _day(0), "write_off_dpd=10"], ["--effective-from", _day(1), "write_off_dpd"],
                    ["--effective-from", _day(1), "write_off_dpd=1", "write_off_dpd=2"],
                    ["--effective-from", _day(1), "late_fee_rate_per_day=0.5"],
                    ["--effective-from", "9999-12-31", "write_off_dpd=10"], ["--effective-from", "x", "write_off_dpd=1"],
                    ["--effective-from", _day(1), "surrogate\udcff=1"]):
        assert main(["credit", "settings", "set", *refused]) == 2
        assert "error: VALIDATION" in capsys.readouterr().err
    assert _changes(conn) == 2
    assert main(["credit", "settings", "history", "--first", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "late_fee_rate_per_day=0.0007" in lines[0] and "by migration" in lines[1]


def test_the_daily_run_provisions_at_the_rates_in_force_on_its_day(conn: Conn) -> None:
    from ledger.products import credit_day, credit_view

    _books(conn)
    one = credit.purchase_on_credit(conn, "p1", "U1", "M1", 100_000, datetime.now(UTC) - timedelta(days=3))
    _scheduled_days_ago(conn, 0, {"provision_rate_current": "0.03"})
    yesterday, today = calendar.today() - timedelta(days=1), calendar.today()
    credit_day.run_credit_day(conn, yesterday, progress=None)
    assert credit_view.loan_view(conn, one.id).allowance_fen == 1_000   # 1% of 100000
    credit_day.run_credit_day(conn, today, progress=None)
    assert credit_view.loan_view(conn, one.id).allowance_fen == 3_000   # 3% from today on
    # Catching up over both days takes each day's rates too.
    two = credit.purchase_on_credit(conn, "p2", "U1", "M1", 200_000, datetime.now(UTC) - timedelta(days=3))
    credit_day.run_credit_days(conn, yesterday, today, progress=None)
    provisions = conn.execute(
        """select t.idempotency_key, e.amount from ledger.transactions t join ledger.entries e on e.transaction_id = t.id
            where t.idempotency_key like %s and e.side = 'credit' order by t.id""",
        (f"credit:provision:{two.id}:%",)).fetchall()
    assert provisions == [(f"credit:provision:{two.id}:{yesterday}", 2_000), (f"credit:provision:{two.id}:{today}", 4_000)]
