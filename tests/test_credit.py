"""Consumer credit through the library: schedules, limits, late fees, allocation, payoff,
provisioning, write-off and recovery; the books balance after every mix."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import psycopg
import pytest

from ledger import calendar
from ledger.accounts import Side
from ledger.audit import verify
from ledger.balances import rollup
from ledger.errors import IdempotencyConflict, InsufficientFunds, ValidationError
from ledger.journal import trial_balance
from ledger.posting import Leg, Transfer, post
from ledger.products import chart, credit, credit_day, credit_repay, credit_view
from ledger.products.onboarding import onboard_customer, onboard_merchant

UTC = UTC


def _fund_wallet(conn, customer: str, amount: int) -> None:
    """A top-up straight from own funds: enough for the tests' repayments."""
    chart.ensure_platform_accounts(conn)
    onboard_customer(conn, customer)
    post(conn, [Transfer(f"topup:{customer}:{amount}:{datetime.now(UTC).timestamp()}", "wallet.top_up", [
        Leg(chart.OWN_FUNDS, Side.DEBIT, amount), Leg(chart.wallet(customer), Side.CREDIT, amount)])])


def _setup(conn, *, limit: int = 1_000_000, wallet: int = 0) -> None:
    onboard_customer(conn, "U1")
    onboard_merchant(conn, "M1", "0.006")
    credit.open_credit_line(conn, "U1", limit)
    if wallet:
        _fund_wallet(conn, "U1", wallet)


def _days_ago(days: int) -> datetime:
    """10:00 in Shanghai `days` ago (or a minute ago, if that is earlier today than 10:00)."""
    moment = calendar.day_start(calendar.today() - timedelta(days=days)) + timedelta(hours=10)
    return min(moment, datetime.now(UTC) - timedelta(minutes=1))


def _run(conn, first: date, last: date) -> list[credit_day.DayReport]:
    return credit_day.run_credit_days(conn, first, last, progress=None)


def _assert_books(conn) -> None:
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    report = verify(conn, progress=None)
    assert report.ok, report.problems


# Schedules --------------------------------------------------------------------------------------

def test_annuity_loan_matches_worked_numbers(conn):
    onboard_customer(conn, "U1")
    loan = credit.originate_loan(conn, "o1", "U1", 10000, "0.01", 6, credit.Method.ANNUITY, calendar.today())
    assert [i.total_fen for i in loan.schedule] == [1725] * 5 + [1728]
    assert [i.interest_fen for i in loan.schedule] == [100, 84, 67, 51, 34, 17]
    assert sum(i.interest_fen for i in loan.schedule) == 353
    assert sum(i.principal_fen for i in loan.schedule) == 10000
    assert rollup(conn, chart.wallet("U1"))[0].amount_minor == 10000  # disbursed to the wallet


def _oracle_annuity(principal: int, rate: Fraction, months: int) -> list[tuple[int, int]]:
    """Independent exact computation with fractions: (principal, interest) per period."""
    def half_up(x: Fraction) -> int:
        return int((x + Fraction(1, 2)).__floor__())
    growth = (1 + rate) ** months
    instalment = half_up(principal * rate * growth / (growth - 1))
    balance, out = principal, []
    for k in range(1, months + 1):
        interest = half_up(balance * rate)
        part = balance if k == months else min(instalment - interest, balance)
        out.append((part, interest))
        balance -= part
    return out


@pytest.mark.parametrize("principal,rate,months", [
    (10000, "0.01", 6), (1234567, "0.0125", 24), (500000, "0.00875", 36), (99, "0.05", 12)])
def test_annuity_schedule_against_exact_oracle(conn, principal, rate, months):
    onboard_customer(conn, "U1")
    loan = credit.originate_loan(conn, f"o-{principal}", "U1", principal, rate, months, credit.Method.ANNUITY,
                                 calendar.today())
    assert [(i.principal_fen, i.interest_fen) for i in loan.schedule] == _oracle_annuity(
        principal, Fraction(rate), months)


def test_equal_principal_and_conversion_schedules(conn):
    _setup(conn)
    loan = credit.originate_loan(conn, "o1", "U1", 10000, "0.01", 3, credit.Method.EQUAL_PRINCIPAL, calendar.today())
    assert [(i.principal_fen, i.interest_fen) for i in loan.schedule] == [(3333, 100), (3333, 67), (3334, 33)]
    purchase = credit.purchase_on_credit(conn, "p1", "U1", "M1", 100000, _days_ago(1))
    converted = credit.convert_to_instalments(conn, "c1", purchase.id, 3, "0.005")
    assert [i.total_fen for i in converted.schedule] == [33833, 33833, 33834]
    assert [i.fee_fen for i in converted.schedule] == [500, 500, 500]
    assert converted.schedule[0].due_date == purchase.schedule[0].due_date
    assert credit.convert_to_instalments(conn, "c1", purchase.id, 3, "0.005").replayed
    with pytest.raises(IdempotencyConflict):
        credit.convert_to_instalments(conn, "c1", purchase.id, 6, "0.005")
    with pytest.raises(credit.ConversionRefused):
        credit.convert_to_instalments(conn, "c2", purchase.id, 6, "0.005")


def test_credit_bounds_are_refused_one_past_them(conn):
    """2 to 36 instalments; monthly rate and fee rate at most 5%; a purchase at most 5 minutes
    ahead; a catch-up run of at most 3,660 days."""
    _setup(conn)
    purchase = credit.purchase_on_credit(conn, "p1", "U1", "M1", 100000, _days_ago(1))
    for count in (1, 37):
        with pytest.raises(ValidationError, match=f"instalments must be a whole number from 2 to 36, got {count}"):
            credit.convert_to_instalments(conn, f"c{count}", purchase.id, count, "0.005")
    with pytest.raises(ValidationError, match="monthlyFeeRate must be a decimal from 0 to 0.05") as fee:
        credit.convert_to_instalments(conn, "c-fee", purchase.id, 3, "0.0501")
    assert fee.value.field == "monthlyFeeRate"
    assert len(credit.convert_to_instalments(conn, "c36", purchase.id, 36, "0.05").schedule) == 36
    with pytest.raises(ValidationError, match="monthlyRate must be a decimal from 0 to 0.05") as rate:
        credit.originate_loan(conn, "o1", "U1", 10000, "0.0501", 3, credit.Method.EQUAL_PRINCIPAL, calendar.today())
    assert rate.value.field == "monthlyRate"
    credit.originate_loan(conn, "o2", "U1", 10000, "0.05", 3, credit.Method.EQUAL_PRINCIPAL, calendar.today())
    with pytest.raises(ValidationError, match="is in the future") as ahead:
        credit.purchase_on_credit(conn, "p2", "U1", "M1", 1, datetime.now(UTC) + timedelta(minutes=6))
    assert ahead.value.field == "purchasedAt"
    credit.purchase_on_credit(conn, "p3", "U1", "M1", 1, datetime.now(UTC) + timedelta(minutes=4))
    first = date(2000, 1, 1)
    with pytest.raises(ValidationError, match="a run covers 1 to 3660 days"):
        credit_day.run_credit_days(conn, first, first + timedelta(days=3660), progress=None)


# Purchases and the credit line -------------------------------------------------------------------

def test_purchase_pays_merchant_and_respects_limit(conn):
    _setup(conn, limit=100000)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 60000, _days_ago(0))
    assert loan.schedule[0].due_date == calendar.business_date(loan.opened_at) + timedelta(days=30)
    assert rollup(conn, chart.merchant_payable("M1"))[0].amount_minor == 60000
    assert credit.purchase_on_credit(conn, "p1", "U1", "M1", 60000, loan.opened_at).replayed
    with pytest.raises(IdempotencyConflict):
        credit.purchase_on_credit(conn, "p1", "U1", "M1", 60001, loan.opened_at)
    with pytest.raises(credit.CreditLimitExceeded):
        credit.purchase_on_credit(conn, "p2", "U1", "M1", 40001, _days_ago(0))
    credit.purchase_on_credit(conn, "p3", "U1", "M1", 40000, _days_ago(0))
    assert credit.credit_line(conn, "U1").available_fen == 0
    with pytest.raises(credit.NoCreditLine):
        credit.purchase_on_credit(conn, "p4", "U2", "M1", 1, _days_ago(0))


def test_limit_holds_under_concurrent_purchases(db_url, conn):
    _setup(conn, limit=100000)
    outcomes: list[str] = []

    def buy(n: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as own:
            try:
                credit.purchase_on_credit(own, f"cp{n}", "U1", "M1", 30000, _days_ago(0))
                outcomes.append("ok")
            except credit.CreditLimitExceeded:
                outcomes.append("refused")

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 3
    assert credit.credit_line(conn, "U1").used_fen == 90000


# The daily job ------------------------------------------------------------------------------------

def test_late_fees_daily_rounded_at_least_one_fen(conn):
    _setup(conn)
    big = credit.purchase_on_credit(conn, "p1", "U1", "M1", 33333, _days_ago(35))
    small = credit.purchase_on_credit(conn, "p2", "U1", "M1", 100, _days_ago(35))
    due = big.schedule[0].due_date
    _run(conn, due, calendar.today())
    days_late = (calendar.today() - due).days
    assert days_late == 5
    # 33333 x 0.05% = 16.6665 -> 17 a day; 100 x 0.05% = 0.05 -> at least 1 fen.
    assert credit_repay.outstanding(conn, big.id).late_fees_fen == 17 * days_late
    assert credit_repay.outstanding(conn, small.id).late_fees_fen == 1 * days_late
    view = credit_view.loan_view(conn, big.id)
    assert view.days_past_due == days_late and view.bucket is credit.Bucket.DPD_1_30
    assert view.schedule[0].status == "OVERDUE"
    # Idempotent per date: a second run of every date posts nothing.
    again = _run(conn, due, calendar.today())
    assert all(r.bills == r.late_fees == r.provisions == r.write_offs == 0 for r in again)
    _assert_books(conn)


def test_repayment_allocation_order_and_overpayment(conn):
    _setup(conn, wallet=200000)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 90000, _days_ago(40))
    credit.convert_to_instalments(conn, "c1", loan.id, 3, "0.01", converted_at=_days_ago(40))
    _run(conn, loan.schedule[0].due_date, calendar.today())
    owed = credit_repay.outstanding(conn, loan.id)
    assert owed.fees_fen == 900 and owed.late_fees_fen > 0 and owed.principal_fen == 90000
    # Late fees first, then fees, then principal (no interest on a converted purchase).
    first = credit_repay.repay_loan(conn, "r1", loan.id, owed.late_fees_fen + 100)
    assert first.allocation == credit_repay.Allocation(late_fees_fen=owed.late_fees_fen, fees_fen=100)
    second = credit_repay.repay_loan(conn, "r2", loan.id, 800 + 30000)
    assert second.allocation == credit_repay.Allocation(fees_fen=800, principal_fen=30000)
    view = credit_view.loan_view(conn, loan.id)
    assert [i.status for i in view.schedule] == ["PAID", "UPCOMING", "UPCOMING"]
    assert view.days_past_due == 0 and view.bucket is credit.Bucket.CURRENT
    assert credit_repay.repay_loan(conn, "r2", loan.id, 30800).replayed
    with pytest.raises(credit.Overpayment):
        credit_repay.repay_loan(conn, "r3", loan.id, 60001)
    _assert_books(conn)


def test_repayment_needs_wallet_money(conn):
    _setup(conn, wallet=10)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 1000, _days_ago(0))
    with pytest.raises(InsufficientFunds):
        credit_repay.repay_loan(conn, "r1", loan.id, 500)


def test_payoff_charges_remaining_fees_and_stops_billing(conn):
    _setup(conn, wallet=200000)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 100000, _days_ago(31))
    credit.convert_to_instalments(conn, "c1", loan.id, 3, "0.005", converted_at=_days_ago(31))
    _run(conn, calendar.today() - timedelta(days=2), calendar.today())
    quote = credit_repay.payoff_quote(conn, loan.id)
    # Instalment 1 billed (fee 500), two more fees to come; principal all outstanding.
    assert (quote.owed.fees_fen, quote.remaining_fees_fen, quote.owed.principal_fen) == (500, 1000, 100000)
    with pytest.raises(credit_repay.QuoteChanged):
        credit_repay.pay_off_loan(conn, "off", loan.id, expected_total_fen=quote.total_fen - 1)
    paid = credit_repay.pay_off_loan(conn, "off", loan.id, expected_total_fen=quote.total_fen)
    assert paid.amount_fen == 101500 + quote.owed.late_fees_fen
    assert credit_repay.outstanding(conn, loan.id).total_fen == 0
    view = credit_view.loan_view(conn, loan.id)
    assert view.status == "PAID_OFF" and all(i.status == "PAID" for i in view.schedule)
    with pytest.raises(credit.LoanClosed):
        credit_repay.repay_loan(conn, "r9", loan.id, 1)
    _assert_books(conn)


def test_payoff_waives_remaining_fees_per_setting(conn):
    _setup(conn, wallet=200000)
    # Scheduled yesterday for today: a change takes effect from the day after it is made.
    credit.set_settings(conn, {"payoff_remaining_fees": "none"}, calendar.today(), recorded_by="test",
                        today=lambda: calendar.today() - timedelta(days=1))
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 100000, _days_ago(1))
    credit.convert_to_instalments(conn, "c1", loan.id, 3, "0.005")
    assert credit_repay.payoff_quote(conn, loan.id).total_fen == 100000
    credit_repay.pay_off_loan(conn, "off", loan.id)
    assert credit_view.loan_view(conn, loan.id).schedule[0].status == "WAIVED"
    with pytest.raises(ValidationError):
        credit.set_settings(conn, {"payoff_remaining_fees": "some"}, calendar.today() + timedelta(days=1),
                            recorded_by="test")


def test_buckets_fee_stop_write_off_and_recovery(conn):
    _setup(conn, wallet=200000)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 10000, _days_ago(30 + 182))
    due = loan.schedule[0].due_date
    buckets = {}
    for report in credit_day.run_credit_days(conn, due, calendar.today(), progress=None):
        view = credit_view.loan_view(conn, loan.id, as_of=calendar.day_start(report.date) + timedelta(hours=12))
        buckets.setdefault(view.bucket, report.date)
    assert list(buckets) == [credit.Bucket.CURRENT, credit.Bucket.DPD_1_30, credit.Bucket.DPD_31_60,
                             credit.Bucket.DPD_61_90, credit.Bucket.DPD_91_180, credit.Bucket.WRITE_OFF]
    # Late fees of 5 fen a day (10000 x 0.05%) for days past due 1..90, then none.
    late = conn.execute(
        """select count(*), sum(e.amount) from ledger.loan_steps s join ledger.entries e
             on e.transaction_id = s.transaction_id and e.side = 'debit'
            where s.loan_id = %s and s.step = 'late_fee'""", (loan.id,)).fetchone()
    assert (late[0], late[1]) == (90, 450)
    view = credit_view.loan_view(conn, loan.id)
    assert view.status == "WRITTEN_OFF" and view.outstanding.total_fen == 0 and view.allowance_fen == 0
    assert rollup(conn, "assets:loans")[0].amount_minor == 0
    expense = rollup(conn, credit.PROVISION_EXPENSE)[0].amount_minor
    assert expense == 10450  # the whole carrying amount was lost
    with pytest.raises(credit.LoanClosed):
        credit_repay.repay_loan(conn, "r1", loan.id, 100)
    with pytest.raises(credit.Overpayment):
        credit_repay.recover_loan(conn, "rec1", loan.id, 10451)
    credit_repay.recover_loan(conn, "rec1", loan.id, 4000)
    credit_day.run_credit_day(conn, calendar.today(), progress=None)  # same date: skipped, key exists
    assert credit_view.loan_view(conn, loan.id).allowance_fen == 4000
    _assert_books(conn)


def test_recovery_refused_on_open_loan(conn):
    _setup(conn, wallet=1000)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 1000, _days_ago(0))
    with pytest.raises(credit.LoanNotWrittenOff):
        credit_repay.recover_loan(conn, "rec", loan.id, 10)


def test_bank_loan_billing_and_early_repayment(conn):
    _setup(conn)
    start = calendar.today() - timedelta(days=70)
    loan = credit.originate_loan(conn, "o1", "U1", 10000, "0.01", 6, credit.Method.ANNUITY, start)
    _run(conn, start, calendar.today())
    billed = [i for i in loan.schedule if i.due_date <= calendar.today()]
    owed = credit_repay.outstanding(conn, loan.id)
    assert owed.interest_fen == sum(i.interest_fen for i in billed)
    rollup_interest = rollup(conn, credit.INTEREST_INCOME)[0].amount_minor
    assert rollup_interest == owed.interest_fen
    # Pay what is due and two instalments' principal early: the next instalments show paid.
    due_principal = sum(i.principal_fen for i in billed)
    ahead = loan.schedule[len(billed)].principal_fen
    credit_repay.repay_loan(conn, "r1", loan.id, owed.late_fees_fen + owed.interest_fen + due_principal + ahead)
    view = credit_view.loan_view(conn, loan.id)
    assert view.days_past_due == 0
    assert view.schedule[len(billed)].paid_fen == ahead  # its interest is billed on its due date
    _assert_books(conn)


def test_run_day_refuses_future_dates(conn):
    with pytest.raises(ValidationError):
        credit_day.run_credit_day(conn, calendar.today() + timedelta(days=1), progress=None)


def test_settings_loaded_and_validated(conn):
    settings = credit.load_settings(conn)
    assert settings.interest_free_days == 30 and settings.late_fee_rate_per_day == Decimal("0.0005")
    assert settings.provision_rates[credit.Bucket.WRITE_OFF] == 1
    with pytest.raises(ValidationError):
        credit.set_settings(conn, {"late_fee_rate_per_day": "0.5"}, calendar.today() + timedelta(days=1),
                            recorded_by="test")


def test_demo_has_a_loan_in_every_bucket(conn):
    from ledger.demo import credit as credit_demo
    from ledger.demo import loader

    steps = loader.DEMO_STEPS[:loader.DEMO_STEPS.index(credit_demo.load_credit_demo) + 1]
    for _ in range(2):  # the second load replays and writes nothing new
        for step in steps:
            step(conn)
    views = credit_view.list_loans(conn, limit=100)
    assert {v.bucket for v in views} == set(credit.Bucket)
    assert {v.status for v in views} == {"ACTIVE", "PAID_OFF", "WRITTEN_OFF"}
    assert conn.execute("select count(*) from ledger.loan_closures").fetchone()[0] == 2
    _assert_books(conn)


def test_concurrent_repayments_never_overpay(db_url, conn):
    _setup(conn, wallet=200000)
    loan = credit.purchase_on_credit(conn, "p1", "U1", "M1", 10000, _days_ago(0))
    outcomes: list[str] = []

    def repay(n: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as own:
            try:
                credit_repay.repay_loan(own, f"r{n}", loan.id, 6000)
                outcomes.append("ok")
            except credit.Overpayment:
                outcomes.append("refused")

    threads = [threading.Thread(target=repay, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused", "refused"]
    assert credit_repay.outstanding(conn, loan.id).principal_fen == 4000


def test_cli_run_day(db_url, conn, monkeypatch, capsys):
    from ledger_cli.main import main

    _setup(conn)
    credit.purchase_on_credit(conn, "p1", "U1", "M1", 20000, _days_ago(33))
    monkeypatch.setenv("DATABASE_URL", db_url)
    first = (calendar.today() - timedelta(days=4)).isoformat()
    assert main(["credit", "run-day", "--from", first, "--date", calendar.today().isoformat()]) == 0
    out = capsys.readouterr().out
    assert "late fees 1" in out
    assert main(["credit", "run-day", "--date", calendar.today().isoformat()]) == 0
    assert capsys.readouterr().out.strip().endswith("bills 0, late fees 0, provisions 0, write-offs 0")
    assert main(["credit", "run-day", "--date", (calendar.today() + timedelta(days=1)).isoformat()]) == 2


def test_a_purchase_is_dated_by_its_business_day(conn, monkeypatch):
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    _setup(conn)
    day = calendar.today() - timedelta(days=3)
    midnight = calendar.day_end(day)
    last = credit.purchase_on_credit(conn, "last", "U1", "M1", 1000, midnight - timedelta(microseconds=1))
    first = credit.purchase_on_credit(conn, "first", "U1", "M1", 1000, midnight)
    assert last.schedule[0].due_date == day + timedelta(days=30)
    assert first.schedule[0].due_date == day + timedelta(days=31)
    steps = conn.execute("select business_date from ledger.loan_steps where step = 'open' order by 1").fetchall()
    assert [row[0] for row in steps] == [day, day + timedelta(days=1)]
