"""The payments library on a real PostgreSQL: worked numbers, edge cases, races, invariants."""

import threading
import time
from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest

from ledger import calendar
from ledger.accounts import Side, get_account
from ledger.audit import verify
from ledger.balances import balance
from ledger.errors import HoldExpired, HoldNotPending, IdempotencyConflict, InsufficientFunds, ValidationError
from ledger.journal import trial_balance
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products import payments as pay
from ledger.products.onboarding import NotOnboarded, chargeback_receivable, onboard_customer, onboard_merchant


def _posted(conn, code):
    return balance(conn, get_account(conn, code).id).posted


def _available(conn, code):
    return balance(conn, get_account(conn, code).id).available


def _transactions(conn):
    return conn.execute("select count(*) from ledger.transactions").fetchone()[0]


def _db_now(conn):
    return conn.execute("select clock_timestamp()").fetchone()[0]


@pytest.fixture
def shop(conn):
    """U1 with 100000 fen topped up via icbc and settled; M1 at 0.6% with pro-rata fee refunds."""
    onboard_customer(conn, "U1")
    onboard_merchant(conn, "M1", "0.006")
    pay.top_up(conn, idempotency_key="top-1", customer_id="U1", bank="icbc", amount_fen=100000)
    pay.settle_top_ups(conn, bank="icbc")
    return conn


def _authorize(conn, key="auth-1", amount=29900, **kw):
    return pay.authorize_payment(conn, idempotency_key=key, customer_id="U1", merchant_id="M1",
                                 amount_fen=amount, **kw).payment


def _check_books(conn):
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    assert verify(conn).ok


def test_top_up_and_settlement_through_clearing(conn):
    onboard_customer(conn, "U1")
    first = pay.top_up(conn, idempotency_key="t1", customer_id="U1", bank="icbc", amount_fen="100000")
    again = pay.top_up(conn, idempotency_key="t1", customer_id="U1", bank="icbc", amount_fen=100000)
    assert (first.replayed, again.replayed, again.transaction_id) == (False, True, first.transaction_id)
    assert _posted(conn, chart.wallet("U1")) == 100000
    assert _posted(conn, chart.bank_clearing("icbc")) == 100000
    settled = pay.settle_top_ups(conn, bank="icbc")
    assert settled.amount_fen == 100000
    assert _posted(conn, chart.bank_clearing("icbc")) == 0
    assert _posted(conn, chart.bank_reserve("icbc")) == 100000
    # Nothing left: no transaction, and an explicit key replays what it posted.
    assert pay.settle_top_ups(conn, bank="icbc").transaction_id is None
    keyed = pay.settle_top_ups(conn, bank="icbc", idempotency_key="s2")
    assert keyed.amount_fen == 0
    with pytest.raises(NotOnboarded):
        pay.top_up(conn, idempotency_key="t2", customer_id="U9", bank="icbc", amount_fen=1)
    with pytest.raises(pay.BankNotFound):
        pay.settle_top_ups(conn, bank="boc")
    with pytest.raises(IdempotencyConflict):
        pay.top_up(conn, idempotency_key="t1", customer_id="U1", bank="icbc", amount_fen=5)


def test_worked_numbers_capture_fee_refund(shop):
    conn = shop
    payment = _authorize(conn)
    assert (payment.status, payment.authorized_fen) == (pay.PaymentStatus.AUTHORIZED, 29900)
    assert _available(conn, chart.wallet("U1")) == 100000 - 29900
    before = _transactions(conn)
    step = pay.capture_payment(conn, idempotency_key="cap-1", payment_id=payment.id)
    captured = step.payment
    assert (captured.status, captured.captured_fen, captured.fee_fen) == (pay.PaymentStatus.CAPTURED, 29900, 179)
    assert _transactions(conn) == before + 2  # the capture and its fee, one batch
    assert _posted(conn, chart.merchant_payable("M1")) == 29900 - 179
    assert _posted(conn, pay.MERCHANT_FEE_INCOME) == 179
    assert _posted(conn, chart.wallet("U1")) == 100000 - 29900
    # A replay writes nothing and answers the same.
    replay = pay.capture_payment(conn, idempotency_key="cap-1", payment_id=str(payment.id))
    assert replay.replayed and replay.transaction_id == step.transaction_id
    assert _transactions(conn) == before + 2

    refund = pay.refund_payment(conn, idempotency_key="ref-1", payment_id=payment.id, amount_fen=9900).payment
    # Fee back pro rata: round(179 x 9900 / 29900) = round(59.27) = 59.
    assert (refund.status, refund.refunded_fen, refund.fee_refunded_fen) == (
        pay.PaymentStatus.PARTIALLY_REFUNDED, 9900, 59)
    assert _posted(conn, chart.wallet("U1")) == 100000 - 29900 + 9900
    assert _posted(conn, chart.merchant_payable("M1")) == 29900 - 179 - 9900 + 59
    rest = pay.refund_payment(conn, idempotency_key="ref-2", payment_id=payment.id, amount_fen=20000).payment
    # Refunding everything gives back exactly the fee charged.
    assert (rest.status, rest.refunded_fen, rest.fee_refunded_fen) == (pay.PaymentStatus.REFUNDED, 29900, 179)
    assert _posted(conn, chart.merchant_payable("M1")) == 0
    assert _posted(conn, pay.MERCHANT_FEE_INCOME) == 0
    with pytest.raises(pay.RefundExceedsCaptured):
        pay.refund_payment(conn, idempotency_key="ref-3", payment_id=payment.id, amount_fen=1)
    with pytest.raises(IdempotencyConflict):
        pay.refund_payment(conn, idempotency_key="ref-1", payment_id=payment.id, amount_fen=9901)
    _check_books(conn)


def test_merchant_without_fee_refund_keeps_the_fee(shop):
    conn = shop
    onboard_merchant(conn, "M1", "0.006", refund_fee_pro_rata=False)
    payment = _authorize(conn)
    pay.capture_payment(conn, idempotency_key="cap", payment_id=payment.id)
    refunded = pay.refund_payment(conn, idempotency_key="ref", payment_id=payment.id, amount_fen=20000).payment
    assert (refunded.fee_fen, refunded.fee_refunded_fen, refunded.refund_fee_pro_rata) == (179, 0, False)
    assert _posted(conn, pay.MERCHANT_FEE_INCOME) == 179
    assert _posted(conn, chart.merchant_payable("M1")) == 29900 - 179 - 20000
    # The merchant pays the whole refund, and its payable may not go below zero.
    with pytest.raises(InsufficientFunds):
        pay.refund_payment(conn, idempotency_key="ref-2", payment_id=payment.id, amount_fen=9900)
    assert pay.get_payment(conn, payment.id).refunded_fen == 20000


@pytest.mark.parametrize("captured_fen, fee_fen", [(750, 5), (250, 2), (749, 4)])
def test_the_merchant_fee_rounds_half_up(shop, captured_fen, fee_fen):
    """At 0.6%: 4.5 fen -> 5 (half-even would give 4, truncation 4), 1.5 -> 2, 4.494 -> 4."""
    payment = _authorize(shop, amount=1000)
    captured = pay.capture_payment(shop, idempotency_key="cap", payment_id=payment.id, amount_fen=captured_fen).payment
    assert (captured.captured_fen, captured.fee_fen) == (captured_fen, fee_fen)
    assert _posted(shop, pay.MERCHANT_FEE_INCOME) == fee_fen


def test_partial_capture_releases_the_rest(shop):
    conn = shop
    payment = _authorize(conn, amount=10000)
    captured = pay.capture_payment(conn, idempotency_key="cap", payment_id=payment.id, amount_fen=6000).payment
    assert (captured.authorized_fen, captured.captured_fen, captured.fee_fen) == (10000, 6000, 36)
    assert _available(conn, chart.wallet("U1")) == 100000 - 6000
    with pytest.raises(HoldNotPending):
        pay.capture_payment(conn, idempotency_key="cap-again", payment_id=payment.id, amount_fen=4000)
    with pytest.raises(pay.RefundExceedsCaptured):
        pay.refund_payment(conn, idempotency_key="ref", payment_id=payment.id, amount_fen=6001)
    other = _authorize(conn, key="auth-2", amount=500)
    with pytest.raises(pay.CaptureExceedsAuthorized):
        pay.capture_payment(conn, idempotency_key="cap-2", payment_id=other.id, amount_fen=501)
    _check_books(conn)


def test_capture_after_expiry_is_refused(shop):
    conn = shop
    payment = _authorize(conn, expires_at=_db_now(conn) + timedelta(seconds=1.5))
    time.sleep(2)
    assert pay.get_payment(conn, payment.id).status is pay.PaymentStatus.EXPIRED
    assert _available(conn, chart.wallet("U1")) == 100000  # an expired hold reserves nothing
    with pytest.raises(HoldExpired):
        pay.capture_payment(conn, idempotency_key="late", payment_id=payment.id)
    voided = pay.void_payment(conn, idempotency_key="tidy", payment_id=payment.id).payment
    assert voided.status is pay.PaymentStatus.VOIDED
    _check_books(conn)


def test_void_then_capture_is_refused(shop):
    conn = shop
    payment = _authorize(conn)
    voided = pay.void_payment(conn, idempotency_key="void", payment_id=payment.id)
    assert voided.payment.status is pay.PaymentStatus.VOIDED
    assert pay.void_payment(conn, idempotency_key="void", payment_id=payment.id).replayed
    assert _available(conn, chart.wallet("U1")) == 100000
    with pytest.raises(HoldNotPending, match="voided"):
        pay.capture_payment(conn, idempotency_key="cap", payment_id=payment.id)
    with pytest.raises(pay.RefundExceedsCaptured):
        pay.refund_payment(conn, idempotency_key="ref", payment_id=payment.id, amount_fen=1)
    with pytest.raises(pay.PaymentNotFound):
        pay.void_payment(conn, idempotency_key="v2", payment_id=999999)
    # A key of one step cannot be replayed as another.
    with pytest.raises(IdempotencyConflict):
        pay.capture_payment(conn, idempotency_key="void", payment_id=payment.id)


def test_authorize_needs_funds_and_onboarding(shop):
    conn = shop
    with pytest.raises(InsufficientFunds):
        _authorize(conn, amount=100001)
    with pytest.raises(NotOnboarded):
        pay.authorize_payment(conn, idempotency_key="a", customer_id="U1", merchant_id="M9", amount_fen=1)
    with pytest.raises(ValidationError):
        _authorize(conn, amount=0)
    first = pay.authorize_payment(conn, idempotency_key="same", customer_id="U1", merchant_id="M1", amount_fen=5)
    again = pay.authorize_payment(conn, idempotency_key="same", customer_id="U1", merchant_id="M1", amount_fen=5)
    assert again.replayed and again.payment.id == first.payment.id


def test_concurrent_refunds_never_exceed_the_capture(shop, db_url):
    conn = shop
    payment = _authorize(conn)
    pay.capture_payment(conn, idempotency_key="cap", payment_id=payment.id)
    outcomes: list[object] = []
    barrier = threading.Barrier(3)

    def refund(key):
        with psycopg.connect(db_url, autocommit=True) as own:
            barrier.wait()
            try:
                outcomes.append(pay.refund_payment(own, idempotency_key=key, payment_id=payment.id,
                                                   amount_fen=20000).payment)
            except pay.RefundExceedsCaptured as exc:
                outcomes.append(exc)

    threads = [threading.Thread(target=refund, args=(f"race-{i}",)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    won = [o for o in outcomes if isinstance(o, pay.Payment)]
    lost = [o for o in outcomes if isinstance(o, pay.RefundExceedsCaptured)]
    assert (len(won), len(lost)) == (1, 2)
    final = pay.get_payment(conn, payment.id)
    assert (final.refunded_fen, final.status) == (20000, pay.PaymentStatus.PARTIALLY_REFUNDED)
    _check_books(conn)


def test_settlement_chargeback_recovery_and_write_off(shop):
    conn = shop
    payment = _authorize(conn)
    pay.capture_payment(conn, idempotency_key="cap", payment_id=payment.id)
    with pytest.raises(pay.ChargebackNotAllowed, match="refund"):
        pay.chargeback(conn, idempotency_key="cb-early", payment_id=payment.id, amount_fen=100)
    settled = pay.settle_merchant(conn, idempotency_key="set-1", merchant_id="M1", bank="icbc")
    assert (settled.paid_out_fen, settled.chargebacks_recovered_fen) == (29721, 0)
    assert pay.settle_merchant(conn, idempotency_key="set-1", merchant_id="M1", bank="icbc").replayed
    assert _posted(conn, chart.bank_reserve("icbc")) == 100000 - 29721
    cb = pay.chargeback(conn, idempotency_key="cb-1", payment_id=payment.id, amount_fen=10000).payment
    assert cb.charged_back_fen == 10000
    assert _posted(conn, chargeback_receivable("M1")) == 10000
    with pytest.raises(pay.ChargebackNotAllowed):
        pay.chargeback(conn, idempotency_key="cb-2", payment_id=payment.id, amount_fen=19901)
    with pytest.raises(pay.RefundExceedsCaptured):
        pay.refund_payment(conn, idempotency_key="r", payment_id=payment.id, amount_fen=19901)

    # The next payment's settlement nets the receivable first.
    second = _authorize(conn, key="auth-2", amount=6000)
    pay.capture_payment(conn, idempotency_key="cap-2", payment_id=second.id)  # fee 36
    netted = pay.settle_merchant(conn, idempotency_key="set-2", merchant_id="M1", bank="icbc")
    assert (netted.paid_out_fen, netted.chargebacks_recovered_fen) == (0, 5964)
    assert _posted(conn, chargeback_receivable("M1")) == 10000 - 5964
    written = pay.write_off_chargeback(conn, idempotency_key="wo", merchant_id="M1")
    assert written.amount_fen == 4036
    assert _posted(conn, pay.CHARGEBACK_LOSSES) == 4036
    assert _posted(conn, chargeback_receivable("M1")) == 0
    with pytest.raises(InsufficientFunds):
        pay.write_off_chargeback(conn, idempotency_key="wo-2", merchant_id="M1")
    empty = pay.settle_merchant(conn, idempotency_key="set-3", merchant_id="M1", bank="icbc")
    assert empty.transaction_id is None
    _check_books(conn)


def test_client_money_rule_holds_after_the_sweep(shop):
    conn = shop
    today = calendar.business_date(_db_now(conn))
    assert pay.client_money(conn).difference_fen == 0
    payment = _authorize(conn)
    pay.capture_payment(conn, idempotency_key="cap", payment_id=payment.id)
    pay.refund_payment(conn, idempotency_key="ref", payment_id=payment.id, amount_fen=9900)
    pay.top_up(conn, idempotency_key="top-2", customer_id="U1", bank="abc", amount_fen=5000)  # not settled
    pay.settle_merchant(conn, idempotency_key="set", merchant_id="M1", bank="icbc")
    pay.chargeback(conn, idempotency_key="cb", payment_id=payment.id, amount_fen=1000)
    before = pay.client_money(conn)
    # Fee kept 120 (reserve holds own money), top-up 5000 and chargeback 1000 not in a reserve.
    assert before.difference_fen == 120 - 5000 - 1000
    assert before.liabilities_fen == _posted(conn, chart.wallet("U1"))
    sweep = pay.sweep_client_money(conn, idempotency_key="sweep-today", bank="icbc", day=today)
    assert sweep.amount_fen == 5880
    assert pay.client_money(conn).difference_fen == 0
    assert pay.sweep_client_money(conn, idempotency_key="sweep-today", bank="icbc", day=today).replayed
    again = pay.sweep_client_money(conn, idempotency_key="sweep-today-2", bank="icbc", day=today)
    assert again.transaction_id is None
    # The bank settles the top-up: now the reserves hold too much, until the next sweep.
    pay.settle_top_ups(conn, bank="abc")
    assert pay.client_money(conn).difference_fen == 5000
    assert pay.sweep_client_money(conn, idempotency_key="sweep-2", bank="abc", day=today).amount_fen == -5000
    assert pay.client_money(conn).difference_fen == 0
    with pytest.raises(ValidationError):
        pay.sweep_client_money(conn, idempotency_key="future", bank="icbc", day=today + timedelta(days=2))
    _check_books(conn)


def test_backdated_sweep_uses_the_end_of_that_day(shop):
    conn = shop
    pay.top_up(conn, idempotency_key="top-2", customer_id="U1", bank="icbc", amount_fen=700)
    yesterday = calendar.business_date(_db_now(conn)) - timedelta(days=1)
    # Nothing existed at the end of yesterday: the rule held then.
    sweep = pay.sweep_client_money(conn, idempotency_key="y", bank="icbc", day=yesterday)
    assert sweep.transaction_id is None and sweep.amount_fen == 0
    assert pay.client_money(conn).difference_fen == -700
    assert pay.client_money(conn, as_of=sweep.effective_at).difference_fen == 0


def test_listing_payments_by_party_with_keyset_pages(shop):
    conn = shop
    onboard_merchant(conn, "M2", "0.01")
    ids = [_authorize(conn, key=f"a{i}", amount=100 + i).id for i in range(3)]
    other = pay.authorize_payment(conn, idempotency_key="m2", customer_id="U1", merchant_id="M2",
                                  amount_fen=50).payment
    page = pay.list_payments(conn, merchant_id="M1", first=2)
    assert [p.id for p in page.payments] == [ids[2], ids[1]] and page.has_next_page
    rest = pay.list_payments(conn, merchant_id="M1", first=2, after=page.end_cursor)
    assert [p.id for p in rest.payments] == [ids[0]] and not rest.has_next_page
    everyone = pay.list_payments(conn, customer_id="U1")
    assert [p.id for p in everyone.payments] == [other.id, *reversed(ids)]
    assert other.fee_rate == Decimal("0.01")
    with pytest.raises(ValidationError):
        pay.list_payments(conn, first=pay.page_size_max + 1)
    with pytest.raises(ValidationError):
        pay.list_payments(conn, after="garbage")


def test_payment_tables_are_append_only(shop):
    conn = shop
    _authorize(conn)
    for table in ("payments", "payment_steps"):
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute(f"delete from ledger.{table}")


def test_sweep_day_must_be_a_date(shop):
    with pytest.raises(ValidationError):
        pay.sweep_client_money(shop, idempotency_key="k", bank="icbc", day="2024-01-01")
    assert date.today()  # the date type is what the API hands over


def test_capture_and_fee_are_one_batch(shop):
    conn = shop
    payment = _authorize(conn)
    step = pay.capture_payment(conn, idempotency_key="cap", payment_id=payment.id)
    rows = conn.execute(
        """select t.kind, t.recorded_at, t.resolves_hold_id from ledger.transactions t
            join ledger.payment_steps s on s.transaction_id = t.id
           where s.payment_id = %s and s.step in ('capture', 'fee') order by t.id""", (payment.id,)).fetchall()
    assert [r[0] for r in rows] == ["payment.capture", "payment.fee"]
    assert rows[0][1] == rows[1][1]  # written by one post_batch call
    assert rows[0][2] == payment.hold_id
    assert pay.get_payment(conn, payment.id).capture_id == step.transaction_id


def test_same_key_authorized_twice_at_once_makes_one_payment(shop, db_url):
    conn = shop
    results = []
    barrier = threading.Barrier(2)

    def authorize():
        with psycopg.connect(db_url, autocommit=True) as own:
            barrier.wait()
            results.append(pay.authorize_payment(own, idempotency_key="same", customer_id="U1", merchant_id="M1",
                                                 amount_fen=700))

    threads = [threading.Thread(target=authorize) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({r.payment.id for r in results}) == 1
    assert sorted(r.replayed for r in results) == [False, True]
    assert conn.execute("select count(*) from ledger.payments").fetchone()[0] == 1


def test_long_keys_are_refused_before_anything_is_written(shop):
    payment = _authorize(shop)
    with pytest.raises(ValidationError) as error:
        pay.capture_payment(shop, idempotency_key="k" * (pay.idempotency_key_length_max + 1), payment_id=payment.id)
    assert error.value.field == "idempotencyKey"


def test_a_backdated_sweep_closes_its_business_day_at_the_last_microsecond(shop, monkeypatch):
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    conn = shop
    day = calendar.business_date(_db_now(conn)) - timedelta(days=3)
    midnight = calendar.day_end(day)  # 00:00 of the next business day
    chart.ensure_platform_accounts(conn)
    credit = [Leg(chart.OWN_FUNDS, Side.DEBIT, 300), Leg(chart.wallet("U1"), Side.CREDIT, 300)]
    after = [Leg(chart.OWN_FUNDS, Side.DEBIT, 40), Leg(chart.wallet("U1"), Side.CREDIT, 40)]
    post(conn, [Transfer("last", "test.wallet_credit", credit, effective_at=midnight - timedelta(microseconds=1)),
                Transfer("next", "test.wallet_credit", after, effective_at=midnight)])
    sweep = pay.sweep_client_money(conn, idempotency_key="eod", bank="icbc", day=day)
    assert sweep.effective_at == midnight - timedelta(microseconds=1)
    assert calendar.business_date(sweep.effective_at) == day
    assert sweep.amount_fen == 300  # the 23:59:59.999999 credit is the day's; the 00:00 one the next day's
    assert pay.client_money(conn, as_of=sweep.effective_at).difference_fen == 0
    _check_books(conn)
