"""Factoring advances through the library layer, against the domain page's worked numbers."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from ledger import calendar
from ledger.accounts import Side, get_account
from ledger.audit import verify
from ledger.balances import balances_now
from ledger.errors import IdempotencyConflict, LedgerError, ValidationError
from ledger.journal import entries_of_transactions, trial_balance
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products import factoring as f
from ledger.products import factoring_accrual as fa

TODAY = calendar.today()
INVOICE_FEN = 100_000_000


def days_ago(n: int) -> date:
    return TODAY - timedelta(days=n)


def balance(conn: psycopg.Connection[Any], code: str) -> int:
    account = get_account(conn, code)
    return balances_now(conn, [account.id])[account.id].posted


def assert_books_clean(conn: psycopg.Connection[Any]) -> None:
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    report = verify(conn, progress=None)
    assert report.ok, report.problems


def invoice(conn: psycopg.Connection[Any], no: str = "INV-1", *, supplier: str = "S1", amount: int = INVOICE_FEN,
            issued: int = 40, due_in: int = 30) -> f.InvoiceRecorded:
    return f.record_purchase_invoice(conn, supplier, no, amount, TODAY + timedelta(days=due_in),
                                     idempotency_key=f"inv-{supplier}-{no}", issued_on=days_ago(issued))


def advance(conn: psycopg.Connection[Any], no: str = "INV-1", *, supplier: str = "S1",
            days: int = 30) -> f.Advance:
    return f.advance_on_invoice(conn, supplier, no, "0.8", "0.00025", idempotency_key=f"adv-{supplier}-{no}",
                                advanced_on=days_ago(days)).advance


def accrue_daily(conn: psycopg.Connection[Any], days: int) -> list[fa.AccrualRun]:
    return [fa.accrue_factoring_fees(conn, days_ago(n), progress=None) for n in range(days - 1, -1, -1)]


def test_invoice_posts_the_retail_payable(conn: psycopg.Connection[Any]) -> None:
    recorded = invoice(conn)
    assert not recorded.replayed and recorded.invoice.status == "OPEN"
    assert balance(conn, chart.supplier_payable("S1")) == INVOICE_FEN
    assert balance(conn, f.RETAIL_INVENTORY) == INVOICE_FEN
    again = invoice(conn)
    assert again.replayed and again.transaction_id == recorded.transaction_id
    with pytest.raises(f.InvoiceAlreadyRecorded):
        f.record_purchase_invoice(conn, "S1", "INV-1", 5, TODAY, idempotency_key="another")
    with pytest.raises(IdempotencyConflict):
        f.record_purchase_invoice(conn, "S1", "INV-2", 5, TODAY, idempotency_key="inv-S1-INV-1")


def test_an_invoice_number_with_a_trailing_newline_is_refused(conn: psycopg.Connection[Any]) -> None:
    """`$` in a Python pattern matches before a final newline; the whole text must match."""
    with pytest.raises(ValidationError, match="invoice"):
        f.record_purchase_invoice(conn, "S1", "INV-1\n", 5, TODAY, idempotency_key="inv-newline")
    assert conn.execute("select count(*) from ledger.purchase_invoices").fetchone()[0] == 0


def test_thirty_days_then_the_buyer_pays(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    made = advance(conn)
    assert made.principal_fen == 80_000_000 and made.status == "OPEN"
    assert balance(conn, chart.OWN_FUNDS) == -80_000_000
    runs = accrue_daily(conn, 30)
    assert [r.fee_fen for r in runs] == [20_000] * 30
    assert f.get_advance(conn, made.id).fee_accrued_fen == 600_000

    paid = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="pay-1")
    assert (paid.fee_fen, paid.principal_fen, paid.remainder_fen, paid.remitted_fen) == (
        600_000, 80_000_000, 19_400_000, 19_400_000)
    legs = entries_of_transactions(conn, [paid.transaction_ids[0]])[paid.transaction_ids[0]]
    codes = {a.id: a.code for a in (get_account_by_id(conn, e.account_id) for e in legs)}
    assert sorted((codes[e.account_id], e.side, e.amount) for e in legs) == sorted([
        (chart.supplier_payable("S1"), "debit", INVOICE_FEN), (chart.OWN_FUNDS, "credit", INVOICE_FEN),
        (chart.OWN_FUNDS, "debit", INVOICE_FEN), (f.advance_code(made.id), "credit", 80_000_000),
        (f.fee_code(made.id), "credit", 600_000), (chart.supplier_payable("S1"), "credit", 19_400_000)])

    after = f.get_advance(conn, made.id)
    assert (after.status, after.outstanding_fen, after.fee_paid_fen, after.days_outstanding()) == (
        "SETTLED", 0, 600_000, 30)
    assert balance(conn, chart.supplier_payable("S1")) == 0
    assert balance(conn, f.FEE_INCOME) == 600_000
    assert balance(conn, chart.OWN_FUNDS) == -INVOICE_FEN + 600_000
    assert paid.invoice.status == "PAID"
    replay = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="pay-1")
    assert replay.replayed and replay.transaction_ids == paid.transaction_ids
    with pytest.raises(f.InvoiceAlreadyPaid):
        f.settle_invoice(conn, "S1", "INV-1", idempotency_key="pay-2")
    assert fa.accrue_factoring_fees(conn, TODAY, progress=None).advances_accrued == 0
    assert_books_clean(conn)


def get_account_by_id(conn: psycopg.Connection[Any], account_id: int) -> Any:
    from ledger.accounts import get_accounts
    return get_accounts(conn, [account_id])[account_id]


def test_payment_catches_up_the_fee_the_job_missed(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    made = advance(conn)
    fa.accrue_factoring_fees(conn, days_ago(20), progress=None)  # days 1-10 in one catch-up
    assert f.get_advance(conn, made.id).fee_accrued_fen == 200_000
    paid = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="pay")
    assert (paid.fee_fen, paid.remainder_fen) == (600_000, 19_400_000)
    assert f.settle_invoice(conn, "S1", "INV-1", idempotency_key="pay").transaction_ids == paid.transaction_ids
    assert_books_clean(conn)


def test_accruing_a_date_twice_posts_nothing(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    invoice(conn, "INV-2", amount=12_345_679)
    advance(conn)
    advance(conn, "INV-2", days=3)
    first = fa.accrue_factoring_fees(conn, days_ago(1), progress=None)
    assert first.advances_accrued == 2
    count = conn.execute("select count(*) from ledger.transactions").fetchone()
    second = fa.accrue_factoring_fees(conn, days_ago(1), progress=None)
    assert (second.advances_accrued, second.fee_fen) == (0, 0)
    earlier = fa.accrue_factoring_fees(conn, days_ago(2), progress=None)
    assert earlier.advances_accrued == 0
    assert conn.execute("select count(*) from ledger.transactions").fetchone() == count
    with pytest.raises(ValidationError):
        fa.accrue_factoring_fees(conn, TODAY + timedelta(days=1), progress=None)


def test_cumulative_rounding_over_days(conn: psycopg.Connection[Any]) -> None:
    # 9876543 x 0.8 = 7901234 (rounded down); x 0.00033 = 2607.40722 a day: days post 2607 or 2608.
    invoice(conn, amount=9_876_543)
    made = f.advance_on_invoice(conn, "S1", "INV-1", "0.8", "0.00033", idempotency_key="a",
                                advanced_on=days_ago(7)).advance
    assert made.principal_fen == 7_901_234
    runs = accrue_daily(conn, 7)
    daily = Decimal(7_901_234) * Decimal("0.00033")
    expected = [f.fee_rounding.apply(daily * d) - f.fee_rounding.apply(daily * (d - 1)) for d in range(1, 8)]
    assert [r.fee_fen for r in runs] == expected
    assert sum(expected) == f.fee_rounding.apply(daily * 7)


def test_early_repayment_on_day_twelve(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    made = advance(conn, days=12)
    with pytest.raises(f.AmountExceedsOutstanding):
        f.repay_advance(conn, made.id, 80_240_001, idempotency_key="r")
    repaid = f.repay_advance(conn, made.id, 80_240_000, idempotency_key="r")
    assert (repaid.fee_fen, repaid.principal_fen) == (240_000, 80_000_000)
    assert (repaid.advance.status, repaid.advance.outstanding_fen, repaid.advance.days_outstanding()) == (
        "REPAID", 0, 12)
    assert f.repay_advance(conn, made.id, 80_240_000, idempotency_key="r").replayed
    with pytest.raises(f.AdvanceNotOpen):
        f.repay_advance(conn, made.id, 1, idempotency_key="r2")
    # The buyer then pays the whole invoice to the supplier.
    paid = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="pay")
    assert (paid.fee_fen, paid.principal_fen, paid.remitted_fen) == (0, 0, INVOICE_FEN)
    assert balance(conn, chart.OWN_FUNDS) == -INVOICE_FEN + 240_000
    assert_books_clean(conn)


def test_partial_repayment_lowers_the_fee_from_then_on(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    made = advance(conn, days=10)
    f.repay_advance(conn, made.id, 40_200_000, idempotency_key="r1")  # fee 200000, principal 40000000
    paid = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="pay")
    assert (paid.fee_fen, paid.principal_fen, paid.remainder_fen) == (0, 40_000_000, 60_000_000)
    assert f.get_advance(conn, made.id).status == "SETTLED"
    assert_books_clean(conn)


def test_advance_refusals(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(f.InvoiceNotFound) as unknown:
        f.advance_on_invoice(conn, "S1", "NOPE", "0.8", "0.00025", idempotency_key="a0")
    assert unknown.value.code == "INVOICE_NOT_FOUND" and isinstance(unknown.value, LedgerError)
    invoice(conn)
    first = advance(conn)
    with pytest.raises(f.InvoiceAlreadyAssigned):
        f.advance_on_invoice(conn, "S1", "INV-1", "0.8", "0.00025", idempotency_key="a2")
    again = f.advance_on_invoice(conn, "S1", "INV-1", "0.80", "0.00025", idempotency_key="adv-S1-INV-1",
                                 advanced_on=days_ago(30))
    assert again.replayed and again.advance.id == first.id
    with pytest.raises(IdempotencyConflict):  # the same key for other terms
        f.advance_on_invoice(conn, "S1", "INV-1", "0.7", "0.00025", idempotency_key="adv-S1-INV-1",
                             advanced_on=days_ago(30))
    invoice(conn, "INV-2")
    f.settle_invoice(conn, "S1", "INV-2", idempotency_key="p2")
    with pytest.raises(f.InvoiceAlreadyPaid):
        f.advance_on_invoice(conn, "S1", "INV-2", "0.8", "0.00025", idempotency_key="a3")
    invoice(conn, "INV-3")
    for rate, fee_rate in (("0", "0.0002"), ("1.2", "0.0002"), ("0.8", "0.5"), ("abc", "0.1"), ("0.8", "-1")):
        with pytest.raises(ValidationError):
            f.advance_on_invoice(conn, "S1", "INV-3", rate, fee_rate, idempotency_key="a4")


def test_partly_paid_invoice(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    made = advance(conn)
    first = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="p1", amount=50_000_000)
    assert (first.fee_fen, first.principal_fen, first.remainder_fen) == (600_000, 49_400_000, 0)
    assert first.invoice.status == "PARTIALLY_PAID" and first.invoice.outstanding_fen == 50_000_000
    assert first.advance is not None and first.advance.principal_outstanding_fen == 30_600_000
    with pytest.raises(f.AmountExceedsOutstanding):
        f.settle_invoice(conn, "S1", "INV-1", idempotency_key="p2", amount=50_000_001)
    rest = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="p2")
    assert (rest.paid_fen, rest.fee_fen, rest.principal_fen, rest.remainder_fen) == (
        50_000_000, 0, 30_600_000, 19_400_000)
    assert f.get_advance(conn, made.id).status == "SETTLED"
    assert balance(conn, chart.supplier_payable("S1")) == 0
    assert_books_clean(conn)


def test_advance_on_a_partly_paid_invoice_uses_what_is_unpaid(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    f.settle_invoice(conn, "S1", "INV-1", idempotency_key="p1", amount=25_000_001)
    made = advance(conn, days=0)
    assert (made.base_fen, made.principal_fen) == (74_999_999, 59_999_999)


def test_an_advance_falls_between_issue_and_due_date(conn: psycopg.Connection[Any]) -> None:
    """From the day the invoice was issued, up to the day before it falls due."""
    invoice(conn, "EARLY", issued=10, due_in=20)
    with pytest.raises(ValidationError, match="before the invoice was issued") as early:
        advance(conn, "EARLY", days=11)
    assert early.value.field == "advancedOn"
    assert advance(conn, "EARLY", days=10).principal_fen == 80_000_000
    invoice(conn, "LATE", issued=10, due_in=-2)
    with pytest.raises(ValidationError, match="too late to advance") as late:
        advance(conn, "LATE", days=2)
    assert late.value.field == "advancedOn"
    assert advance(conn, "LATE", days=3).principal_fen == 80_000_000


def test_an_advance_rounds_down_even_past_a_half(conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    f.settle_invoice(conn, "S1", "INV-1", idempotency_key="p1", amount=25_000_003)
    made = advance(conn, days=0)
    assert (made.base_fen, made.principal_fen) == (74_999_997, 59_999_997)  # 59999997.6, rounded down


def test_default_moves_the_rest_to_recourse_recovered_later(conn: psycopg.Connection[Any]) -> None:
    invoice(conn, issued=40, due_in=-5)
    made = advance(conn, days=35)
    with pytest.raises(f.AdvanceNotOverdue):
        invoice(conn, "INV-2", issued=1, due_in=10)
        f.default_advance(conn, advance(conn, "INV-2", days=1).id, idempotency_key="d0")
    # The buyer pays only 30000000 of the diluted invoice: fee (35 days) first, then principal.
    part = f.settle_invoice(conn, "S1", "INV-1", idempotency_key="p1", amount=30_000_000)
    assert (part.fee_fen, part.principal_fen) == (700_000, 29_300_000)
    defaulted = f.default_advance(conn, made.id, idempotency_key="d1")
    assert (defaulted.principal_to_recourse_fen, defaulted.fee_to_recourse_fen) == (50_700_000, 0)
    assert defaulted.advance.status == "DEFAULTED" and defaulted.advance.recourse_fen == 50_700_000
    assert balance(conn, f.recourse_code("S1")) == 50_700_000
    assert f.default_advance(conn, made.id, idempotency_key="d1").replayed
    with pytest.raises(f.AdvanceNotOpen):
        f.default_advance(conn, made.id, idempotency_key="d2")
    # The supplier's next invoice payment recovers the recourse first.
    invoice(conn, "INV-3", amount=60_000_000)
    later = f.settle_invoice(conn, "S1", "INV-3", idempotency_key="p3")
    assert (later.recovered_fen, later.remitted_fen) == (50_700_000, 9_300_000)
    assert balance(conn, f.recourse_code("S1")) == 0
    assert fa.accrue_factoring_fees(conn, TODAY, progress=None).advances_accrued == 1  # INV-2's advance
    assert_books_clean(conn)


def test_listing_advances(conn: psycopg.Connection[Any]) -> None:
    for n in range(5):
        invoice(conn, f"I{n}", supplier="S1" if n % 2 else "S2")
        advance(conn, f"I{n}", supplier="S1" if n % 2 else "S2")
    f.settle_invoice(conn, "S2", "I0", idempotency_key="p")
    s2 = f.list_advances(conn, supplier_id="S2")
    assert [a.invoice_no for a in s2] == ["I0", "I2", "I4"]
    assert [a.invoice_no for a in f.list_advances(conn, supplier_id="S2", status="OPEN")] == ["I2", "I4"]
    page = f.list_advances(conn, limit=2)
    assert [a.invoice_no for a in f.list_advances(conn, after_id=page[-1].id, limit=2)] == ["I2", "I3"]
    with pytest.raises(ValidationError):
        f.list_advances(conn, status="LOST")
    with pytest.raises(f.AdvanceNotFound):
        f.get_advance(conn, 999_999)


def test_concurrent_advances_on_one_invoice_one_wins(db_url: str, conn: psycopg.Connection[Any]) -> None:
    invoice(conn)
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def attempt(n: int) -> None:
        with psycopg.connect(db_url, autocommit=True) as own:
            barrier.wait()
            try:
                outcomes.append(f.advance_on_invoice(own, "S1", "INV-1", "0.8", "0.00025", idempotency_key=f"race-{n}"))
            except LedgerError as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=attempt, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(o).__name__ for o in outcomes) == ["AdvanceMade", "InvoiceAlreadyAssigned"]
    assert balance(conn, chart.OWN_FUNDS) == -80_000_000
    assert_books_clean(conn)


def test_accrual_in_small_batches(conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fa, "advances_per_transaction", 2)
    monkeypatch.setattr(fa, "transactions_per_post", 2)
    for n in range(7):
        invoice(conn, f"I{n}")
        advance(conn, f"I{n}", days=2)
    before = conn.execute("select count(*) from ledger.transactions").fetchone()
    run = fa.accrue_factoring_fees(conn, TODAY, batch_size=3, progress=None)
    assert (run.advances_accrued, run.fee_fen, run.batches) == (7, 7 * 40_000, 3)
    after = conn.execute("select count(*) from ledger.transactions").fetchone()
    assert before is not None and after is not None and after[0] - before[0] == 2 + 2 + 1  # 3+3+1 advances
    assert all(a.fee_accrued_fen == 40_000 for a in f.list_advances(conn))
    assert fa.accrue_factoring_fees(conn, TODAY, batch_size=3, progress=None).advances_accrued == 0
    with pytest.raises(ValidationError):
        fa.accrue_factoring_fees(conn, TODAY, batch_size=0, progress=None)
    assert_books_clean(conn)


def test_demo_step_loads_once(conn: psycopg.Connection[Any]) -> None:
    from ledger.demo.factoring import DEMO_SUPPLIER, load_factoring_demo

    load_factoring_demo(conn)
    count = conn.execute("select count(*) from ledger.transactions").fetchone()
    load_factoring_demo(conn)
    assert conn.execute("select count(*) from ledger.transactions").fetchone() == count
    statuses = sorted(a.status for a in f.list_advances(conn, supplier_id=DEMO_SUPPLIER))
    assert statuses == ["OPEN", "SETTLED"]
    assert_books_clean(conn)


def test_accrue_command(db_url: str, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str]) -> None:
    from ledger_cli.main import main

    invoice(conn)
    advance(conn, days=3)
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["factoring", "accrue", "--date", days_ago(1).isoformat()]) == 0
    assert "40,000 fen on 1 advances" in capsys.readouterr().out
    assert main(["factoring", "accrue"]) == 0
    assert "20,000 fen on 1 advances" in capsys.readouterr().out


def test_mix_then_client_money_sweep(conn: psycopg.Connection[Any]) -> None:
    from ledger.products import payments

    invoice(conn)
    invoice(conn, "INV-2", supplier="S2", amount=7_000_001)
    invoice(conn, "INV-3", amount=3_000_000)
    first = advance(conn)
    second = advance(conn, "INV-2", supplier="S2", days=5)
    accrue_daily(conn, 30)
    f.settle_invoice(conn, "S1", "INV-1", idempotency_key="p1", amount=40_000_000)
    f.repay_advance(conn, second.id, 1_000_000, idempotency_key="r1")
    f.settle_invoice(conn, "S1", "INV-3", idempotency_key="p3")
    assert f.get_advance(conn, first.id).status == "OPEN"
    payments.ensure_bank(conn, "icbc")
    payments.sweep_client_money(conn, idempotency_key="sweep", bank="icbc", day=calendar.today())
    assert payments.client_money(conn).difference_fen == 0
    assert_books_clean(conn)


def test_fee_days_are_business_days_at_the_boundary(conn: psycopg.Connection[Any], monkeypatch: Any) -> None:
    from ledger.products.factoring.fees import fees_due

    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    invoice(conn)
    made = advance(conn, days=10)  # 80,000,000 fen in place from the start of days_ago(10)
    row = conn.execute("select effective_at from ledger.transactions where kind = 'factoring.advance'").fetchone()
    assert row is not None and row[0] == calendar.day_start(days_ago(10))
    # More principal (through the core: the product only posts at a day's start) at the last
    # microsecond of one business day and at the first of the next.
    boundary = calendar.day_start(days_ago(5))
    post(conn, [Transfer(f"extra-{n}", "test.principal",
                         [Leg(f.advance_code(made.id), Side.DEBIT, amount), Leg(chart.OWN_FUNDS, Side.CREDIT, amount)],
                         effective_at=at)
                for n, (amount, at) in enumerate(((1_000_000, boundary - timedelta(microseconds=1)),
                                                   (2_000_000, boundary)))])
    rate = Decimal("0.00025")
    # Through days_ago(5): the advance 5 days, the 23:59:59.999999 one 1 day, the 00:00 one none yet.
    assert fees_due(conn, [made.id], days_ago(5)) == [
        (made.id, f.fee_rounding.apply(rate * (80_000_000 * 5 + 1_000_000)))]
    assert fees_due(conn, [made.id], days_ago(4)) == [
        (made.id, f.fee_rounding.apply(rate * (80_000_000 * 6 + 1_000_000 * 2 + 2_000_000)))]
