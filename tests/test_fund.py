"""The idle-funds yield product through its library: subscriptions, redemptions, the daily
income pass, the 7-day yield, and the books staying whole after a mix."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from published import YUEBAO_CSV, yuebao_days, yuebao_incomes

from ledger import calendar
from ledger.accounts import AccountType, Side, get_account
from ledger.audit import verify
from ledger.balances import balance, rollup
from ledger.errors import IdempotencyConflict, InsufficientFunds, ValidationError
from ledger.journal import trial_balance
from ledger.posting import Leg, Transfer, post_one
from ledger.products import chart, fund, fund_income
from ledger.products.fund_math import daily_income_fen

Conn = psycopg.Connection[Any]
_BANK = "B1"
_BEFORE_2014 = datetime(2013, 12, 31, 12, tzinfo=calendar.business_time_zone())


def _csv_figures() -> dict[date, Decimal]:
    return yuebao_incomes()

def _customer(conn: Conn, customer_id: str, top_up_fen: int, *, at: datetime | None = None) -> str:
    """A wallet with money in it, as onboarding and a bank top-up would leave it."""
    code = chart.wallet(customer_id)
    chart.ensure(conn, code, f"Wallet of {customer_id}", AccountType.LIABILITY, holder_id=customer_id, min_balance=0)
    clearing = chart.bank_clearing(_BANK)
    chart.ensure(conn, clearing, "Clearing B1", AccountType.ASSET)
    post_one(conn, Transfer(f"topup:{customer_id}:{top_up_fen}", "payment.topup",
                            [Leg(clearing, Side.DEBIT, top_up_fen), Leg(code, Side.CREDIT, top_up_fen)],
                            effective_at=at))
    return code


def _posted(conn: Conn, code: str) -> int:
    return balance(conn, get_account(conn, code).id).posted


def _transactions(conn: Conn) -> int:
    row = conn.execute("select count(*) from ledger.transactions").fetchone()
    assert row is not None
    return int(row[0])


def _holder(conn: Conn, customer_id: str, amount_fen: int, fund_id: str = "YEB") -> None:
    _customer(conn, customer_id, amount_fen, at=_BEFORE_2014)
    fund.subscribe(conn, idempotency_key=f"sub:{customer_id}", customer_id=customer_id, fund_id=fund_id,
                   amount_fen=amount_fen, effective_at=_BEFORE_2014)


def test_create_fund_is_idempotent_and_refuses_another_name(conn: Conn) -> None:
    created, is_new = fund.create_fund(conn, "YEB", "Yu'ebao")
    again, is_new_again = fund.create_fund(conn, "YEB", "Yu'ebao")
    assert (is_new, is_new_again, again) == (True, False, created)
    with pytest.raises(fund.FundExists):
        fund.create_fund(conn, "YEB", "Another")
    with pytest.raises(fund.FundNotFound):
        fund.get_fund(conn, "NOPE")
    with pytest.raises(ValidationError):
        fund.create_fund(conn, "bad id", "x")
    assert get_account(conn, fund.units_account("YEB")).min_balance == 0


def test_subscribe_and_redeem_move_wallet_holding_and_fund_accounts(conn: Conn) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    wallet = _customer(conn, "U1", 100_000)
    first = fund.subscribe(conn, idempotency_key="s1", customer_id="U1", fund_id="YEB", amount_fen=60_000)
    replay = fund.subscribe(conn, idempotency_key="s1", customer_id="U1", fund_id="YEB", amount_fen=60_000)
    assert (first.replayed, replay.replayed, replay.transaction_id) == (False, True, first.transaction_id)
    with pytest.raises(IdempotencyConflict):
        fund.subscribe(conn, idempotency_key="s1", customer_id="U1", fund_id="YEB", amount_fen=1)
    fund.redeem(conn, idempotency_key="r1", customer_id="U1", fund_id="YEB", amount_fen=10_000)

    assert _posted(conn, wallet) == 50_000
    assert fund.holding(conn, "U1", "YEB").balance_fen == 50_000
    assert get_account(conn, fund.holding_account("YEB", "U1")).holder_id == "U1"
    assert _posted(conn, fund.units_account("YEB")) == 50_000
    assert fund.holders_total(conn, "YEB") == 50_000
    assert _posted(conn, fund.subscriptions_owed_account("YEB")) == 60_000
    assert _posted(conn, fund.receivable_account("YEB")) == 10_000


def test_a_wallet_never_goes_below_zero_and_redemptions_never_exceed_the_holding(conn: Conn) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    wallet = _customer(conn, "U1", 1_000)
    with pytest.raises(InsufficientFunds):
        fund.subscribe(conn, idempotency_key="s1", customer_id="U1", fund_id="YEB", amount_fen=1_001)
    with pytest.raises(fund.HoldingNotFound):
        fund.redeem(conn, idempotency_key="r0", customer_id="U1", fund_id="YEB", amount_fen=1)
    fund.subscribe(conn, idempotency_key="s2", customer_id="U1", fund_id="YEB", amount_fen=1_000)
    with pytest.raises(InsufficientFunds) as short:
        fund.redeem(conn, idempotency_key="r1", customer_id="U1", fund_id="YEB", amount_fen=1_001)
    assert short.value.details["account"] == fund.holding_account("YEB", "U1")
    with pytest.raises(ValidationError):
        fund.subscribe(conn, idempotency_key="s3", customer_id="U1", fund_id="YEB", amount_fen=0)
    with pytest.raises(fund.FundNotFound):
        fund.subscribe(conn, idempotency_key="s4", customer_id="U1", fund_id="NOPE", amount_fen=1)
    fund.redeem(conn, idempotency_key="r2", customer_id="U1", fund_id="YEB", amount_fen=1_000)
    again = fund.redeem(conn, idempotency_key="r2", customer_id="U1", fund_id="YEB", amount_fen=1_000)
    assert again.replayed  # a retry after the holding is spent still answers as a replay
    assert (_posted(conn, wallet), fund.holding(conn, "U1", "YEB").balance_fen) == (1_000, 0)


def test_income_is_the_floor_of_balance_times_figure_per_holder(conn: Conn) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    # 5617 x 1.7807 / 10000 = 1.0002 -> 1; 5615 -> 0.9999 -> nothing; 1,000,000 -> 178.07 -> 178;
    # 123,456,789 -> 21,983.95 -> 21,983.
    balances = {"A": 5_617, "B": 5_615, "C": 1_000_000, "D": 123_456_789}
    for customer_id, amount in balances.items():
        _holder(conn, customer_id, amount)
    run = fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.7807", progress=None)
    expected = {c: daily_income_fen(b, Decimal("1.7807")) for c, b in balances.items()}
    assert expected == {"A": 1, "B": 0, "C": 178, "D": 21_983}
    for customer_id, amount in balances.items():
        assert fund.holding(conn, customer_id, "YEB").balance_fen == amount + expected[customer_id]
    assert (run.holders, run.income_fen, run.transactions, run.replayed) == (3, sum(expected.values()), 1, False)
    assert fund.holders_total(conn, "YEB") == sum(balances.values()) + run.income_fen
    history = fund.income_history(conn, "C", "YEB")
    assert [(h.income_date, h.income_fen) for h in history] == [(date(2014, 1, 1), 178)]
    assert fund.income_history(conn, "B", "YEB") == []


def test_sql_income_matches_the_python_rule_for_large_and_awkward_balances(conn: Conn) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    rng = random.Random(7)
    amounts = [rng.randrange(1, 10**15) for _ in range(20)] + [10**16 - 1, 99_999_999, 5_616, 1]
    for number, amount in enumerate(amounts):
        _holder(conn, f"H{number}", amount)
    for figure in (Decimal("1.7807"), Decimal("0.0001"), Decimal("9.9999"), Decimal("2.5")):
        computed = fund_income.holder_incomes(conn, "YEB", date(2014, 1, 1), figure)
        assert [h.income_fen for h in computed] == [daily_income_fen(a, figure) for a in amounts]


def test_publishing_twice_replays_and_a_different_figure_is_refused(conn: Conn) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    _holder(conn, "U1", 1_000_000)
    conn.execute("set statement_timeout = '4s'")  # as on an API pool connection
    first = fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.7807", progress=None)
    timeout = conn.execute("show statement_timeout").fetchone()
    assert timeout is not None and timeout[0] == "4s"  # the pass's longer timeout is not left behind
    written = _transactions(conn)
    again = fund_income.publish_income(conn, "YEB", date(2014, 1, 1), Decimal("1.78070"), progress=None)
    assert again.replayed and (again.holders, again.income_fen) == (first.holders, first.income_fen)
    assert _transactions(conn) == written
    with pytest.raises(fund.IncomeAlreadyPublished) as refused:
        fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.8000", progress=None)
    assert refused.value.code == "INCOME_ALREADY_PUBLISHED"
    assert fund.holding(conn, "U1", "YEB").balance_fen == 1_000_178


def test_income_counts_the_balance_at_the_days_end_and_compounds(conn: Conn) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    _holder(conn, "EARLY", 1_000_000)
    # Subscribed after 2014-01-01 ended in Beijing (16:00 UTC): no income for that day.
    _customer(conn, "LATE", 1_000_000)
    fund.subscribe(conn, idempotency_key="late", customer_id="LATE", fund_id="YEB", amount_fen=1_000_000,
                   effective_at=datetime(2014, 1, 1, 16, 0, tzinfo=UTC))
    fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.7807", progress=None)
    fund_income.publish_income(conn, "YEB", date(2014, 1, 2), "1.8092", progress=None)
    # Day 2 pays on day 1's income too: floor(1,000,178 x 1.8092 / 10000) = 180.
    assert fund.holding(conn, "EARLY", "YEB").balance_fen == 1_000_000 + 178 + 180
    assert fund.holding(conn, "LATE", "YEB").balance_fen == 1_000_000 + 180
    assert [h.income_date for h in fund.income_history(conn, "EARLY", "YEB")] == [date(2014, 1, 2), date(2014, 1, 1)]
    income_entry_time = conn.execute(
        "select distinct effective_at from ledger.transactions where kind = 'fund.income' order by 1").fetchall()
    assert [row[0] for row in income_entry_time] == [calendar.day_end(date(2014, 1, 1)),
                                                     calendar.day_end(date(2014, 1, 2))]


def test_days_are_published_in_order_and_only_once_ended(conn: Conn) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    fund_income.publish_income(conn, "YEB", date(2014, 1, 2), "1.8092", progress=None)
    with pytest.raises(fund.IncomeOutOfOrder):
        fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.7807", progress=None)
    today = calendar.today()
    with pytest.raises(ValidationError):
        fund_income.publish_income(conn, "YEB", today, "1.0", progress=None)
    for bad in ("1.78071", "-1", "abc", "10000.0001"):
        with pytest.raises(ValidationError):
            fund_income.publish_income(conn, "YEB", date(2014, 1, 3), bad, progress=None)
    with pytest.raises(fund.FundNotFound):
        fund_income.publish_income(conn, "NOPE", date(2014, 1, 3), "1.0", progress=None)


def test_a_pass_cut_short_resumes_without_paying_twice(conn: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    fund.create_fund(conn, "YEB", "Yu'ebao")
    holders = fund_income.holders_per_transaction_max * 2 + 5
    for number in range(holders):
        _holder(conn, f"H{number}", 1_000_000 + number)
    monkeypatch.setattr(fund_income, "transactions_per_call", 1)
    real_post, calls = fund_income.post, []

    def crash_on_second_call(c: Conn, requests: Any) -> Any:
        calls.append(len(requests))
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real_post(c, requests)

    monkeypatch.setattr(fund_income, "post", crash_on_second_call)
    with pytest.raises(RuntimeError):
        fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.7807", progress=None)
    with pytest.raises(fund.IncomeOutOfOrder):
        fund_income.publish_income(conn, "YEB", date(2014, 1, 2), "1.8092", progress=None)
    monkeypatch.setattr(fund_income, "post", real_post)
    run = fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.7807", progress=None)
    assert (run.holders, run.transactions, run.replayed) == (holders, 3, False)
    expected = sum(daily_income_fen(1_000_000 + n, Decimal("1.7807")) for n in range(holders))
    assert run.income_fen == expected
    assert fund.holders_total(conn, "YEB") == sum(1_000_000 + n for n in range(holders)) + expected
    assert rollup(conn, fund.holdings_prefix("YEB"))[0].amount_minor == fund.holders_total(conn, "YEB")


def test_seven_day_yield_from_the_published_figures(conn: Conn) -> None:
    figures = _csv_figures()
    fund.create_fund(conn, "YEB", "Yu'ebao")
    days = [date(2014, 1, 1) + timedelta(days=n) for n in range(7)]
    for day in days:
        fund_income.publish_income(conn, "YEB", day, str(figures[day]), progress=None)
    assert fund.seven_day_yield(conn, "YEB", date(2014, 1, 7)) == Decimal("6.738")
    with pytest.raises(fund.IncomeFiguresMissing) as missing:
        fund.seven_day_yield(conn, "YEB", date(2014, 1, 6))
    assert missing.value.details["missing"] == ["2013-12-31"]
    listed = fund.income_figures(conn, "YEB", date(2014, 1, 1), date(2014, 1, 31))
    assert [(f.income_date, f.income_per_10k) for f in listed] == [(d, figures[d]) for d in days]
    assert [f.seven_day_yield_percent for f in listed] == [None] * 6 + [Decimal("6.738")]
    with pytest.raises(ValidationError):
        fund.income_figures(conn, "YEB", date(2014, 1, 1), date(2015, 1, 2))


def test_every_published_seven_day_yield_from_the_recorded_figures(conn: Conn) -> None:
    published = {day.day: day.seven_day_yield_percent for day in yuebao_days()}
    fund.create_fund(conn, "YEB", "Yu'ebao")
    figures = _csv_figures()
    for day in sorted(figures):
        fund_income.publish_income(conn, "YEB", day, str(figures[day]), progress=None)
    first, last = min(figures), max(figures)
    computed: dict[date, Decimal] = {}
    start = first
    while start <= last:
        end = min(start + timedelta(days=fund.figures_days_max - 1), last)
        for figure in fund.income_figures(conn, "YEB", start, end):
            if figure.seven_day_yield_percent is not None:
                computed[figure.income_date] = figure.seven_day_yield_percent
        start = end + timedelta(days=1)
    assert len(computed) >= 420
    assert {day: published[day] for day in computed} == computed


def test_after_a_mix_the_books_balance_and_verify(conn: Conn) -> None:
    figures = _csv_figures()
    fund.create_fund(conn, "YEB", "Yu'ebao")
    fund.create_fund(conn, "OTHER", "Another fund")
    reserve = chart.bank_reserve(_BANK)
    chart.ensure(conn, reserve, "Reserve B1", AccountType.ASSET)
    chart.ensure_platform_accounts(conn)
    for number in range(5):
        _holder(conn, f"U{number}", 100_000 * (number + 1))
    _holder(conn, "X", 50_000, fund_id="OTHER")
    for day in (date(2014, 1, 1), date(2014, 1, 2), date(2014, 1, 3)):
        fund_income.publish_income(conn, "YEB", day, str(figures[day]), progress=None)
        fund_income.publish_income(conn, "OTHER", day, "2.0", progress=None)
    fund.redeem(conn, idempotency_key="r", customer_id="U2", fund_id="YEB", amount_fen=100_000)
    _customer(conn, "U9", 30_000)
    fund.subscribe(conn, idempotency_key="s9", customer_id="U9", fund_id="YEB", amount_fen=30_000)
    settled = fund.settle(conn, idempotency_key="settle-1", fund_id="YEB", bank=_BANK)
    assert (settled.subscriptions_fen, settled.redemptions_fen) == (1_530_000, 100_000)
    assert _posted(conn, fund.subscriptions_owed_account("YEB")) == 0
    assert _posted(conn, fund.receivable_account("YEB")) == 0
    assert _posted(conn, reserve) == -1_430_000  # remitted to the fund manager; the sweep refills it
    nothing = fund.settle(conn, idempotency_key="settle-2", fund_id="YEB", bank=_BANK)
    assert nothing.transaction_id is None

    holdings = rollup(conn, fund.holdings_prefix("YEB"))[0].amount_minor
    assert holdings == fund.holders_total(conn, "YEB")
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    report = verify(conn, progress=None)
    assert report.ok, report.problems


def test_the_demo_fund_has_three_months_of_income_and_loads_twice(conn: Conn) -> None:
    from ledger.demo import anchor, loader
    from ledger.demo import fund as fund_demo

    steps = loader.DEMO_STEPS[:loader.DEMO_STEPS.index(fund_demo.load_fund_demo) + 1]
    for _ in range(2):  # the second load replays and writes nothing
        for step in steps:
            step(conn)
    start = anchor.demo_anchor(conn)
    last_day = start.date() + timedelta(days=anchor.history_days - 1)
    figures = fund.income_figures(conn, fund_demo.DEMO_FUND, last_day - timedelta(days=89), last_day)
    assert len(figures) == 90 and figures[6].seven_day_yield_percent == Decimal("6.738")
    history = fund.income_history(conn, "U1002", fund_demo.DEMO_FUND, limit=100)
    assert len(history) == 90 and all(item.income_fen > 0 for item in history)
    holdings = sum(fund.holding(conn, c, fund_demo.DEMO_FUND).balance_fen for c in ("U1001", "U1002", "U1003"))
    assert holdings == fund.holders_total(conn, fund_demo.DEMO_FUND) > 2_280_000
    assert _posted(conn, fund.subscriptions_owed_account(fund_demo.DEMO_FUND)) == 0  # settled
    report = verify(conn, progress=None)
    assert report.ok, report.problems


def test_the_cli_creates_a_fund_and_publishes_csv_figures(
    db_url: str, conn: Conn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from ledger_cli.main import main

    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["fund", "create", "--fund", "YEB", "--name", "Yu'ebao"]) == 0
    _holder(conn, "U1", 1_000_000)
    assert main(["fund", "publish-csv", "--fund", "YEB", "--csv", str(YUEBAO_CSV),
                 "--from", "2014-01-01", "--to", "2014-01-07"]) == 0
    assert "YEB 2014-01-01 at 1.7807: 178 fen to 1 holders" in capsys.readouterr().out
    assert fund.seven_day_yield(conn, "YEB", date(2014, 1, 7)) == Decimal("6.738")
    assert main(["fund", "publish-income", "--fund", "YEB", "--date", "2014-01-07", "--income", "1.8086"]) == 0
    assert "already distributed" in capsys.readouterr().out
    assert main(["fund", "publish-income", "--fund", "YEB", "--date", "2014-01-07", "--income", "1.9"]) == 2
    assert "INCOME_ALREADY_PUBLISHED" in capsys.readouterr().err


def test_income_day_ends_at_the_next_business_days_start(conn: Conn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    fund.create_fund(conn, "YEB", "Yu'ebao")
    end = calendar.day_end(date(2014, 1, 1))  # 2014-01-02 00:00 in Beijing, 2014-01-01T16:00Z
    for customer, at in (("LAST", end - timedelta(microseconds=1)), ("NEXT", end)):
        _customer(conn, customer, 1_000_000, at=_BEFORE_2014)
        fund.subscribe(conn, idempotency_key=f"sub:{customer}", customer_id=customer, fund_id="YEB",
                       amount_fen=1_000_000, effective_at=at)
    fund_income.publish_income(conn, "YEB", date(2014, 1, 1), "1.7807", progress=None)
    assert fund.holding(conn, "LAST", "YEB").balance_fen == 1_000_000 + 178  # in at 23:59:59.999999
    assert fund.holding(conn, "NEXT", "YEB").balance_fen == 1_000_000        # in at 00:00 the next day
