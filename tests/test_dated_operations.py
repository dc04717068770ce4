"""Product operations dated by `effectiveAt` over GraphQL: the rules of a posted transaction's
effective time (an offset, [1970, 9999), outside closed periods) and, since a product step reads
what is owed, accrued or held as of its day, never ahead of now. Each is tested at a business-day
boundary (the business time zone is Asia/Shanghai): the last microsecond of a day and the first
of the next give different fees, incomes or balances. Every refusal is typed and writes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest

from ledger import calendar
from ledger.audit import verify
from ledger.journal import trial_balance
from ledger.products import chart

Conn = psycopg.Connection[Any]
TICK = timedelta(microseconds=1)
ERRORS = "... on LedgerError { code message } ... on ValidationError { field }"
ONBOARD = """mutation($id: String!) { onboardCustomer(input: {customerId: $id}) { __typename } }"""
TOP_UP = f"""mutation($input: TopUpInput!) {{ topUp(input: $input) {{ __typename
    ... on ToppedUp {{ transactionId replayed }} {ERRORS} }} }}"""
TRANSACTION = "query($id: ID!) { transaction(id: $id) { effectiveAt kind } }"
BALANCE = """query($code: String!, $at: DateTime) { account(code: $code) {
    balance(asOf: $at) { posted { amount } } } }"""
CLOSE = """mutation($until: DateTime!) { closePeriod(input: {until: $until}) { __typename } }"""
CREATE_FUND = """mutation { createFund(input: {fundId: "YEB", name: "Yu'ebao"}) { __typename } }"""
SUBSCRIBE = f"""mutation($input: SubscribeFundInput!) {{ subscribeFund(input: $input) {{ __typename
    ... on FundSubscribed {{ replayed transaction {{ effectiveAt }} holding {{ balance {{ amount }}
        accounts {{ role code }} }} }} {ERRORS} }} }}"""
REDEEM = f"""mutation($input: RedeemFundInput!) {{ redeemFund(input: $input) {{ __typename
    ... on FundRedeemed {{ replayed }} {ERRORS} }} }}"""
PUBLISH = f"""mutation($input: PublishFundIncomeInput!) {{ publishFundIncome(input: $input) {{ __typename
    ... on FundIncomePublished {{ holders income {{ amount }} }} {ERRORS} }} }}"""
RECORD = f"""mutation($input: RecordPurchaseInvoiceInput!) {{ recordPurchaseInvoice(input: $input) {{ __typename
    {ERRORS} }} }}"""
ADVANCE_ON = f"""mutation($input: AdvanceOnInvoiceInput!) {{ advanceOnInvoice(input: $input) {{ __typename
    ... on AdvanceMade {{ advance {{ id principal {{ amount }} accounts {{ role code }} }} }} {ERRORS} }} }}"""
ACCRUE = f"""mutation($input: AccrueFactoringFeesInput!) {{ accrueFactoringFees(input: $input) {{ __typename
    {ERRORS} }} }}"""
REPAY = f"""mutation($input: RepayAdvanceInput!) {{ repayAdvance(input: $input) {{ __typename
    ... on AdvanceRepaid {{ replayed fee {{ amount }} principal {{ amount }} }} {ERRORS} }} }}"""
DEFAULT = f"""mutation($input: DefaultAdvanceInput!) {{ defaultAdvance(input: $input) {{ __typename
    ... on AdvanceDefaulted {{ principalToRecourse {{ amount }} feeToRecourse {{ amount }} }} {ERRORS} }} }}"""
SETTLE = f"""mutation($input: SettleInvoiceInput!) {{ settleInvoice(input: $input) {{ __typename
    ... on InvoiceSettled {{ replayed fee {{ amount }} principal {{ amount }} transactionIds }} {ERRORS} }} }}"""


@pytest.fixture(autouse=True)
def _shanghai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)


def _call(api: Any, query: str, role: str = "operator", **input: Any) -> dict[str, Any]:
    return next(iter(api.data(query, {"input": input}, role=role).values()))  # type: ignore[no-any-return]


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _count(conn: Conn) -> int:
    row = conn.execute("select count(*) from ledger.transactions").fetchone()
    assert row is not None
    return int(row[0])


def _posted(api: Any, code: str, at: datetime | None = None) -> int:
    account = api.data(BALANCE, {"code": code, "at": None if at is None else _iso(at)})["account"]
    return int(account["balance"]["posted"]["amount"])


def _books_clean(conn: Conn) -> None:
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    report = verify(conn, progress=None)
    assert report.ok, report.problems


# Top-ups ----------------------------------------------------------------------------------------

def test_a_top_up_belongs_to_the_business_day_of_its_effective_time(api: Any, conn: Conn) -> None:
    api.data(ONBOARD, {"id": "U1"}, role="admin")
    day = calendar.today() - timedelta(days=3)
    end = calendar.day_end(day)
    late = _call(api, TOP_UP, idempotencyKey="t-late", customerId="U1", bank="B1", amount="100",
                 effectiveAt=_iso(end - TICK))
    early = _call(api, TOP_UP, idempotencyKey="t-early", customerId="U1", bank="B1", amount="10",
                  effectiveAt=_iso(end))
    assert (late["__typename"], early["__typename"]) == ("ToppedUp", "ToppedUp")
    # 23:59:59.999999 in Shanghai is 15:59:59.999999 UTC: still the day; the next tick is the next day.
    assert api.data(TRANSACTION, {"id": late["transactionId"]})["transaction"]["effectiveAt"].startswith(
        f"{day.isoformat()}T15:59:59.999999")
    wallet = chart.wallet("U1")
    assert (_posted(api, wallet, end - TICK), _posted(api, wallet, end), _posted(api, wallet)) == (100, 110, 110)
    assert calendar.business_date(end - TICK) == day and calendar.business_date(end) == day + timedelta(days=1)
    # The same key and time again is a replay; another time under the key is a conflict.
    again = _call(api, TOP_UP, idempotencyKey="t-late", customerId="U1", bank="B1", amount="100",
                  effectiveAt=_iso(end - TICK))
    assert again["replayed"] is True
    moved = _call(api, TOP_UP, idempotencyKey="t-late", customerId="U1", bank="B1", amount="100",
                  effectiveAt=_iso(end))
    assert moved["code"] == "IDEMPOTENCY_CONFLICT"


def test_dated_refusals_are_typed_and_write_nothing(api: Any, conn: Conn) -> None:
    api.data(ONBOARD, {"id": "U1"}, role="admin")
    _call(api, TOP_UP, idempotencyKey="t0", customerId="U1", bank="B1", amount="1")
    closed_until = calendar.day_start(calendar.today() - timedelta(days=10))
    assert api.data(CLOSE, {"until": _iso(closed_until)})["closePeriod"]["__typename"] == "BooksClosed"
    before = _count(conn)
    now = datetime.now(UTC)
    for effective_at, typename in ((now + timedelta(minutes=6), "ValidationError"),   # ahead of now
                                   (now + timedelta(days=1), "ValidationError"),
                                   (closed_until, "PeriodClosed"),                    # in the closed period
                                   (closed_until - timedelta(days=3000), "PeriodClosed")):
        refused = _call(api, TOP_UP, idempotencyKey=f"t-{effective_at.timestamp()}", customerId="U1", bank="B1",
                        amount="5", effectiveAt=_iso(effective_at))
        assert refused["__typename"] == typename, refused
        if typename == "ValidationError":
            assert refused["field"] == "effectiveAt"
    assert _call(api, TOP_UP, idempotencyKey="t-after-close", customerId="U1", bank="B1", amount="5",
                 effectiveAt=_iso(closed_until + TICK))["__typename"] == "ToppedUp"
    # The calendar's ends, a missing offset, garbage: refused with the request, nothing run.
    for text in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "2026-11-01T00:00:00",
                 "2026-13-01T00:00:00Z", "x" * 100, "2026-11-01T00:00:00+24:00"):
        response = api.http(TOP_UP, {"input": {"idempotencyKey": "t-bad", "customerId": "U1", "bank": "B1",
                                                "amount": "5", "effectiveAt": text}}, role="operator")
        assert response.status_code in (200, 400), response.text
        errors = response.json()["errors"]
        assert errors and all(e.get("extensions", {}).get("code") != "INTERNAL" for e in errors), errors
    assert _count(conn) == before + 1
    assert _posted(api, chart.wallet("U1")) == 6


# Fund subscriptions and redemptions --------------------------------------------------------------

def test_a_subscription_earns_the_income_of_its_business_day(api: Any, conn: Conn) -> None:
    assert api.data(CREATE_FUND)["createFund"]["__typename"] == "FundCreated"
    api.data(ONBOARD, {"id": "U1"}, role="admin")
    day = calendar.today() - timedelta(days=2)
    end = calendar.day_end(day)
    _call(api, TOP_UP, idempotencyKey="fund-U1", customerId="U1", bank="B1", amount="10000000",
          effectiveAt=_iso(calendar.day_start(day - timedelta(days=1))))
    in_day = _call(api, SUBSCRIBE, idempotencyKey="s-in", customerId="U1", fundId="YEB", amount="1000000",
                   effectiveAt=_iso(end - TICK))
    next_day = _call(api, SUBSCRIBE, idempotencyKey="s-next", customerId="U1", fundId="YEB", amount="3000000",
                     effectiveAt=_iso(end))
    assert (in_day["__typename"], next_day["__typename"]) == ("FundSubscribed", "FundSubscribed")
    holding = next_day["holding"]
    assert holding["accounts"] == [{"role": "HOLDING", "code": "liabilities:fund_holdings:YEB:U1"}]
    assert _posted(api, holding["accounts"][0]["code"]) == 4000000
    # The day's income counts the balance at its end: 1,000,000 x 1.5 / 10,000 = 150, not 600.
    published = _call(api, PUBLISH, fundId="YEB", date=day.isoformat(), incomePer10k="1.5")
    assert (published["__typename"], published["income"]["amount"]) == ("FundIncomePublished", "150")
    # Once published, the day takes no more movements; the next day's first instant does.
    before = _count(conn)
    for query, key in ((SUBSCRIBE, "s-late"), (REDEEM, "r-late")):
        refused = _call(api, query, idempotencyKey=key, customerId="U1", fundId="YEB", amount="1",
                        effectiveAt=_iso(end - TICK))
        assert (refused["__typename"], refused["code"]) == ("FundDayDistributed", "FUND_DAY_DISTRIBUTED")
    assert _count(conn) == before
    # A retry of a movement made before the publication is still answered as a replay.
    assert _call(api, SUBSCRIBE, idempotencyKey="s-in", customerId="U1", fundId="YEB", amount="1000000",
                 effectiveAt=_iso(end - TICK))["replayed"] is True
    assert _call(api, REDEEM, idempotencyKey="r-next", customerId="U1", fundId="YEB", amount="1",
                 effectiveAt=_iso(end))["__typename"] == "FundRedeemed"
    ahead = _call(api, SUBSCRIBE, idempotencyKey="s-ahead", customerId="U1", fundId="YEB", amount="1",
                  effectiveAt=_iso(datetime.now(UTC) + timedelta(hours=1)))
    assert (ahead["__typename"], ahead.get("field")) == ("ValidationError", "effectiveAt"), ahead
    _books_clean(conn)


# Factoring payments -------------------------------------------------------------------------------

def _invoice_and_advance(api: Any, no: str, advanced_on: date, due: date | None = None) -> dict[str, Any]:
    recorded = _call(api, RECORD, idempotencyKey=f"inv-{no}", supplierId="S1", invoiceNo=no, amount="1250000",
                     dueDate=(due or calendar.today() + timedelta(days=30)).isoformat(),
                     issuedOn=(advanced_on - timedelta(days=1)).isoformat())
    assert recorded["__typename"] == "PurchaseInvoiceRecorded", recorded
    made = _call(api, ADVANCE_ON, idempotencyKey=f"adv-{no}", supplierId="S1", invoiceNo=no, advanceRate="0.8",
                 dailyFeeRate="0.001", advancedOn=advanced_on.isoformat())
    assert made["__typename"] == "AdvanceMade", made
    return made["advance"]  # type: ignore[no-any-return]


def test_an_early_repayment_pays_the_fee_through_its_business_day(api: Any, conn: Conn) -> None:
    advanced_on = calendar.today() - timedelta(days=10)
    first = _invoice_and_advance(api, "INV-1", advanced_on)
    second = _invoice_and_advance(api, "INV-2", advanced_on)
    assert first["principal"]["amount"] == "1000000"  # 1,000 fen of fee a day
    assert first["accounts"] == [{"role": "PRINCIPAL", "code": f"assets:factoring:advances:{first['id']}"},
                                 {"role": "FEES", "code": f"assets:factoring:fees:{first['id']}"}]
    repay_day = advanced_on + timedelta(days=3)
    end = calendar.day_end(repay_day)
    late = _call(api, REPAY, idempotencyKey="rp-1", advanceId=first["id"], amount="500000", effectiveAt=_iso(end - TICK))
    early = _call(api, REPAY, idempotencyKey="rp-2", advanceId=second["id"], amount="500000", effectiveAt=_iso(end))
    assert (int(late["fee"]["amount"]), int(early["fee"]["amount"])) == (3000, 4000)
    assert (int(late["principal"]["amount"]), int(early["principal"]["amount"])) == (497000, 496000)
    # Fees accrued through a later day: a repayment dated before it is refused, one on it is taken.
    accrue_day = advanced_on + timedelta(days=6)
    assert _call(api, ACCRUE, date=accrue_day.isoformat())["__typename"] == "FactoringFeesAccrued"
    before = _count(conn)
    refused = _call(api, REPAY, idempotencyKey="rp-3", advanceId=first["id"], amount="1000",
                    effectiveAt=_iso(calendar.day_start(accrue_day) - TICK))
    assert (refused["__typename"], refused["code"]) == ("FeeAccruedPastDay", "FEE_ACCRUED_PAST_DAY")
    before_advance = _call(api, REPAY, idempotencyKey="rp-4", advanceId=first["id"], amount="1000",
                           effectiveAt=_iso(calendar.day_start(advanced_on) - TICK))
    assert (before_advance["__typename"], before_advance["field"]) == ("ValidationError", "effectiveAt")
    assert _count(conn) == before
    taken = _call(api, REPAY, idempotencyKey="rp-5", advanceId=first["id"], amount="1000",
                  effectiveAt=_iso(calendar.day_start(accrue_day)))
    assert taken["__typename"] == "AdvanceRepaid"
    _books_clean(conn)


def test_an_invoice_payment_pays_the_fee_through_its_business_day(api: Any, conn: Conn) -> None:
    advanced_on = calendar.today() - timedelta(days=10)
    _invoice_and_advance(api, "INV-1", advanced_on)
    _invoice_and_advance(api, "INV-2", advanced_on)
    pay_day = advanced_on + timedelta(days=5)
    end = calendar.day_end(pay_day)
    late = _call(api, SETTLE, idempotencyKey="pay-1", supplierId="S1", invoiceNo="INV-1", amount="100000",
                 effectiveAt=_iso(end - TICK))
    early = _call(api, SETTLE, idempotencyKey="pay-2", supplierId="S1", invoiceNo="INV-2", amount="100000",
                  effectiveAt=_iso(end))
    assert (int(late["fee"]["amount"]), int(early["fee"]["amount"])) == (5000, 6000)
    effective = [api.data(TRANSACTION, {"id": i})["transaction"]["effectiveAt"] for i in late["transactionIds"]]
    assert all(calendar.business_date(datetime.fromisoformat(e)) == pay_day for e in effective)
    before = _count(conn)
    refused = _call(api, SETTLE, idempotencyKey="pay-3", supplierId="S1", invoiceNo="INV-1", amount="1000",
                    effectiveAt=_iso(calendar.day_start(pay_day) - TICK))
    assert (refused["__typename"], refused["code"]) == ("FeeAccruedPastDay", "FEE_ACCRUED_PAST_DAY")
    before_issue = _call(api, SETTLE, idempotencyKey="pay-4", supplierId="S1", invoiceNo="INV-1", amount="1000",
                         effectiveAt=_iso(calendar.day_start(advanced_on - timedelta(days=1)) - TICK))
    assert (before_issue["__typename"], before_issue["field"]) == ("ValidationError", "effectiveAt")
    ahead = _call(api, SETTLE, idempotencyKey="pay-5", supplierId="S1", invoiceNo="INV-1", amount="1000",
                  effectiveAt=_iso(datetime.now(UTC) + timedelta(hours=2)))
    assert (ahead["__typename"], ahead.get("field")) == ("ValidationError", "effectiveAt"), ahead
    assert _count(conn) == before
    assert _call(api, SETTLE, idempotencyKey="pay-1", supplierId="S1", invoiceNo="INV-1", amount="100000",
                 effectiveAt=_iso(end - TICK))["replayed"] is True
    conflict = _call(api, SETTLE, idempotencyKey="pay-1", supplierId="S1", invoiceNo="INV-1", amount="100000")
    assert conflict["code"] == "IDEMPOTENCY_CONFLICT", conflict
    _books_clean(conn)


def test_a_default_dates_by_the_business_day_after_the_due_date(api: Any, conn: Conn) -> None:
    due = calendar.today() - timedelta(days=2)
    advance = _invoice_and_advance(api, "INV-1", due - timedelta(days=10), due=due)
    before = _count(conn)
    on_due_day = _call(api, DEFAULT, idempotencyKey="d-1", advanceId=advance["id"],
                       effectiveAt=_iso(calendar.day_end(due) - TICK))
    assert (on_due_day["__typename"], on_due_day["code"]) == ("AdvanceNotOverdue", "ADVANCE_NOT_OVERDUE")
    assert _count(conn) == before
    defaulted = _call(api, DEFAULT, idempotencyKey="d-2", advanceId=advance["id"],
                      effectiveAt=_iso(calendar.day_end(due)))
    # Fee for the 11 days from the advance to the first day after the due date, at 1,000 a day.
    assert (defaulted["__typename"], defaulted["feeToRecourse"]["amount"],
            defaulted["principalToRecourse"]["amount"]) == ("AdvanceDefaulted", "11000", "1000000")
    _books_clean(conn)


def test_a_backdated_subscription_waits_for_an_income_pass_under_way(db_url: str, conn: Conn) -> None:
    """The pass holds the fund's lock from recording the figure to the end of its distribution; a
    movement dated in a past day shares that lock, so it sees the figure once the pass commits and
    is refused, instead of slipping into a day whose balances were already read."""
    import threading

    from ledger.products import fund
    from ledger.products.onboarding import onboard_customer
    from ledger.products.payments import top_up

    fund.create_fund(conn, "YEB", "Yu'ebao")
    onboard_customer(conn, "U1")
    top_up(conn, idempotency_key="t", customer_id="U1", bank="B1", amount_fen=1000)
    day = calendar.today() - timedelta(days=1)
    fund_row = fund.get_fund(conn, "YEB").id
    outcome: list[str] = []
    with psycopg.connect(db_url) as pass_conn:
        pass_conn.execute("select pg_advisory_xact_lock(%s, %s)", (fund.income_lock_class, fund_row))
        pass_conn.execute("insert into ledger.fund_incomes (fund_id, income_date, income_per_10k) values ('YEB', %s, 1)",
                          (day,))

        def subscribe() -> None:
            with psycopg.connect(db_url, autocommit=True) as own:
                try:
                    fund.subscribe(own, idempotency_key="s", customer_id="U1", fund_id="YEB", amount_fen=10,
                                   effective_at=calendar.day_end(day) - TICK)
                    outcome.append("subscribed")
                except fund.FundDayDistributed:
                    outcome.append("refused")

        worker = threading.Thread(target=subscribe)
        worker.start()
        waiting = None
        for _ in range(200):
            waiting = conn.execute("""select count(*) from pg_locks
                                       where locktype = 'advisory' and not granted and objid = %s""",
                                   (fund_row,)).fetchone()
            if waiting and waiting[0]:
                break
            threading.Event().wait(0.05)
        assert waiting and waiting[0] == 1, "the backdated subscription did not wait for the pass"
        assert outcome == []
        pass_conn.commit()
        worker.join(timeout=30)
    assert outcome == ["refused"]
    assert conn.execute("select count(*) from ledger.transactions where idempotency_key = 's'").fetchone() == (0,)
