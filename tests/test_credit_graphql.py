"""Consumer credit through GraphQL: purchases within the line, instalments, bank loans, late fees,
allocation order, partial and early repayment, write-off and recovery; the books balance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ledger import calendar
from ledger.accounts import Side
from ledger.audit import verify
from ledger.journal import trial_balance
from ledger.posting import Leg, Transfer, post
from ledger.products import chart
from ledger.products.onboarding import onboard_customer, onboard_merchant

LOAN_FIELDS = """
  id kind customerId status daysPastDue bucket openedAt
  principal { amount }
  overdue { amount }
  allowance { amount }
  outstanding { lateFees { amount } fees { amount } interest { amount } principal { amount } total { amount } }
  schedule { number dueDate principal { amount } fee { amount } interest { amount } total { amount }
             paid { amount } status }
"""

PURCHASE = """mutation($i: PurchaseOnCreditInput!) { purchaseOnCredit(input: $i) {
  __typename ... on PurchasedOnCredit { replayed loan { %s } } ... on LedgerError { code message } } }""" % LOAN_FIELDS

CONVERT = """mutation($i: ConvertToInstalmentsInput!) { convertToInstalments(input: $i) {
  __typename ... on LoanConverted { loan { %s } } ... on LedgerError { code message } } }""" % LOAN_FIELDS

ORIGINATE = """mutation($i: OriginateLoanInput!) { originateLoan(input: $i) {
  __typename ... on LoanOriginated { loan { %s } } ... on LedgerError { code message } } }""" % LOAN_FIELDS

PAYMENT_FIELDS = """__typename
  ... on LoanPayment { replayed amount { amount } transaction { id }
        allocation { lateFees { amount } fees { amount } interest { amount } principal { amount } }
        loan { %s } }
  ... on LedgerError { code message }""" % LOAN_FIELDS

REPAY = "mutation($i: RepayLoanInput!) { repayLoan(input: $i) { %s } }" % PAYMENT_FIELDS
PAY_OFF = "mutation($i: PayOffLoanInput!) { payOffLoan(input: $i) { %s } }" % PAYMENT_FIELDS
RECOVER = "mutation($i: RecoverLoanInput!) { recoverLoan(input: $i) { %s } }" % PAYMENT_FIELDS

RUN_DAY = """mutation($i: RunCreditDayInput!) { runCreditDay(input: $i) {
  __typename ... on CreditDaysRun { days { date bills lateFees provisions writeOffs } }
  ... on LedgerError { code message } } }"""

LOAN = "query($id: ID!) { loan(id: $id) { %s } }" % LOAN_FIELDS


def _amount(money: dict) -> int:
    return int(money["amount"])


def _setup(conn, api, *, limit: int = 1_000_000, wallet: int = 500_000) -> None:
    chart.ensure_platform_accounts(conn)
    onboard_customer(conn, "U1")
    onboard_merchant(conn, "M1", "0.006")
    post(conn, [Transfer("topup-U1", "wallet.top_up", [
        Leg(chart.OWN_FUNDS, Side.DEBIT, wallet), Leg(chart.wallet("U1"), Side.CREDIT, wallet)])])
    data = api.data("""mutation($i: OpenCreditLineInput!) { openCreditLine(input: $i) {
        ... on CreditLineOpened { creditLine { limit { amount } available { amount } } } } }""",
                    {"i": {"customerId": "U1", "limit": str(limit)}})
    assert _amount(data["openCreditLine"]["creditLine"]["available"]) == limit


def _days_ago(days: int) -> str:
    """10:00 in Shanghai `days` ago (or a minute ago, if that is earlier today than 10:00)."""
    moment = calendar.day_start(calendar.today() - timedelta(days=days)) + timedelta(hours=10)
    return min(moment, datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def _purchase(api, key: str, amount: int, days_ago: int) -> dict:
    result = api.data(PURCHASE, {"i": {"idempotencyKey": key, "customerId": "U1", "merchantId": "M1",
                                       "amount": str(amount), "purchasedAt": _days_ago(days_ago)}})["purchaseOnCredit"]
    assert result["__typename"] == "PurchasedOnCredit", result
    return result["loan"]


def _run_days(api, days_back: int) -> list[dict]:
    today = calendar.today()
    result = api.data(RUN_DAY, {"i": {"date": today.isoformat(),
                                      "fromDate": (today - timedelta(days=days_back)).isoformat()}})["runCreditDay"]
    assert result["__typename"] == "CreditDaysRun", result
    return result["days"]


def _loan(api, loan_id: str, **auth) -> dict:
    return api.data(LOAN, {"id": loan_id}, **auth)["loan"]


def _assert_books(conn) -> None:
    lines = trial_balance(conn)
    assert sum(line.debit_balance for line in lines) == sum(line.credit_balance for line in lines)
    report = verify(conn, progress=None)
    assert report.ok, report.problems


def test_purchase_within_limit_and_conversion(conn, api):
    _setup(conn, api, limit=150000)
    loan = _purchase(api, "p1", 100000, 0)
    assert loan["kind"] == "PURCHASE" and loan["status"] == "ACTIVE" and loan["bucket"] == "CURRENT"
    bought = calendar.business_date(datetime.fromisoformat(loan["openedAt"]))
    assert [i["dueDate"] for i in loan["schedule"]] == [(bought + timedelta(days=30)).isoformat()]
    over = api.data(PURCHASE, {"i": {"idempotencyKey": "p2", "customerId": "U1", "merchantId": "M1",
                                     "amount": "50001", "purchasedAt": _days_ago(0)}})["purchaseOnCredit"]
    assert over["__typename"] == "CreditLimitExceeded" and over["code"] == "CREDIT_LIMIT_EXCEEDED"
    converted = api.data(CONVERT, {"i": {"idempotencyKey": "c1", "loanId": loan["id"], "instalments": 3,
                                         "monthlyFeeRate": "0.005"}})["convertToInstalments"]
    assert converted["__typename"] == "LoanConverted"
    schedule = converted["loan"]["schedule"]
    assert [_amount(i["total"]) for i in schedule] == [33833, 33833, 33834]
    assert [_amount(i["fee"]) for i in schedule] == [500, 500, 500]
    assert [i["status"] for i in schedule] == ["UPCOMING"] * 3
    refused = api.data(CONVERT, {"i": {"idempotencyKey": "c2", "loanId": loan["id"], "instalments": 6,
                                       "monthlyFeeRate": "0.005"}})["convertToInstalments"]
    assert refused["__typename"] == "ConversionRefused"
    line = api.data('{ creditLine(customerId: "U1") { used { amount } available { amount } } }')["creditLine"]
    assert (_amount(line["used"]), _amount(line["available"])) == (100000, 50000)


def test_originate_annuity_loan(conn, api):
    _setup(conn, api)
    result = api.data(ORIGINATE, {"i": {"idempotencyKey": "o1", "customerId": "U1", "principal": "10000",
                                        "monthlyRate": "0.01", "months": 6, "method": "ANNUITY",
                                        "startDate": calendar.today().isoformat()}})["originateLoan"]
    assert result["__typename"] == "LoanOriginated"
    schedule = result["loan"]["schedule"]
    assert [_amount(i["total"]) for i in schedule] == [1725] * 5 + [1728]
    assert sum(_amount(i["interest"]) for i in schedule) == 353


def test_rates_are_taken_as_written(conn, api):
    """A rate with whitespace around it, or past 18 decimal places, is refused naming the field, and
    no loan or plan is written; the rate the client meant is then accepted."""
    _setup(conn, api)
    with_field = "... on LedgerError { code message } ... on ValidationError { field }"
    originate = ORIGINATE.replace("... on LedgerError { code message }", with_field)
    convert = CONVERT.replace("... on LedgerError { code message }", with_field)
    terms = {"idempotencyKey": "o1", "customerId": "U1", "principal": "10000", "monthlyRate": "0.01", "months": 6,
             "method": "ANNUITY", "startDate": calendar.today().isoformat()}
    loans = conn.execute("select count(*) from ledger.loans").fetchone()
    for field, rate in [("monthlyRate", " 0.01"), ("monthlyRate", "0.01\n"), ("monthlyRate", "1e-999999999"),
                        ("monthlyRate", "0.0100000000000000000000000001"), ("lateFeeRatePerDay", "0.0005 ")]:
        refused = api.data(originate, {"i": {**terms, field: rate}})["originateLoan"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field), (rate, refused)
    assert conn.execute("select count(*) from ledger.loans").fetchone() == loans
    loan = _purchase(api, "p1", 1000, 0)
    plans = conn.execute("select count(*) from ledger.loan_plans").fetchone()
    for rate in ["0.005\n", "\t0.005", "0." + "0" * 17 + "01"]:
        refused = api.data(convert, {"i": {"idempotencyKey": "c1", "loanId": loan["id"], "instalments": 3,
                                           "monthlyFeeRate": rate}})["convertToInstalments"]
        assert (refused["__typename"], refused["field"]) == ("ValidationError", "monthlyFeeRate"), (rate, refused)
    assert conn.execute("select count(*) from ledger.loan_plans").fetchone() == plans
    assert api.data(originate, {"i": {**terms, "monthlyRate": "1E-2"}})["originateLoan"]["__typename"] == \
        "LoanOriginated"


def test_late_fees_through_graphql(conn, api):
    _setup(conn, api)
    loan = _purchase(api, "p1", 33333, 35)
    days = _run_days(api, 10)
    assert sum(d["lateFees"] for d in days) == 5
    again = _run_days(api, 10)
    assert all(d["bills"] == d["lateFees"] == d["provisions"] == d["writeOffs"] == 0 for d in again)
    view = _loan(api, loan["id"])
    # 33333 x 0.05% a day = 16.6665 -> 17 fen, five days overdue.
    assert _amount(view["outstanding"]["lateFees"]) == 85
    assert view["daysPastDue"] == 5 and view["bucket"] == "DPD_1_30"
    assert _amount(view["overdue"]) == 33333
    assert view["schedule"][0]["status"] == "OVERDUE"
    assert _amount(view["allowance"]) == 3342  # 10% of 33418, half-up
    _assert_books(conn)


def test_allocation_order_partial_repayment_and_overpayment(conn, api):
    _setup(conn, api)
    loan = _purchase(api, "p1", 90000, 40)
    api.data(CONVERT, {"i": {"idempotencyKey": "c1", "loanId": loan["id"], "instalments": 3,
                             "monthlyFeeRate": "0.01", "convertedAt": _days_ago(40)}})
    _run_days(api, 12)
    view = _loan(api, loan["id"])
    late = _amount(view["outstanding"]["lateFees"])
    assert late > 0 and _amount(view["outstanding"]["fees"]) == 900
    partial = api.data(REPAY, {"i": {"idempotencyKey": "r1", "loanId": loan["id"],
                                     "amount": str(late + 300)}})["repayLoan"]
    assert partial["__typename"] == "LoanPayment"
    allocation = {k: _amount(v) for k, v in partial["allocation"].items()}
    assert allocation == {"lateFees": late, "fees": 300, "interest": 0, "principal": 0}
    assert partial["loan"]["schedule"][0]["status"] == "OVERDUE"
    rest = api.data(REPAY, {"i": {"idempotencyKey": "r2", "loanId": loan["id"], "amount": "30600"}})["repayLoan"]
    assert {k: _amount(v) for k, v in rest["allocation"].items()} == {
        "lateFees": 0, "fees": 600, "interest": 0, "principal": 30000}
    after = rest["loan"]
    assert after["daysPastDue"] == 0 and after["bucket"] == "CURRENT"
    assert after["schedule"][0]["status"] == "PAID" and _amount(after["schedule"][0]["paid"]) == 30900
    replay = api.data(REPAY, {"i": {"idempotencyKey": "r2", "loanId": loan["id"], "amount": "30600"}})["repayLoan"]
    assert replay["replayed"] is True
    over = api.data(REPAY, {"i": {"idempotencyKey": "r3", "loanId": loan["id"], "amount": "60001"}})["repayLoan"]
    assert over["__typename"] == "Overpayment" and over["code"] == "OVERPAYMENT"
    _assert_books(conn)


def test_early_payoff_through_graphql(conn, api):
    _setup(conn, api)
    loan = _purchase(api, "p1", 100000, 5)
    api.data(CONVERT, {"i": {"idempotencyKey": "c1", "loanId": loan["id"], "instalments": 3,
                             "monthlyFeeRate": "0.005"}})
    quote = api.data("""query($id: ID!) { payoffQuote(loanId: $id) {
        total { amount } remainingFees { amount } outstanding { principal { amount } } } }""",
                     {"id": loan["id"]})["payoffQuote"]
    assert _amount(quote["total"]) == 101500 and _amount(quote["remainingFees"]) == 1500
    changed = api.data(PAY_OFF, {"i": {"idempotencyKey": "off", "loanId": loan["id"],
                                       "expectedAmount": "100000"}})["payOffLoan"]
    assert changed["__typename"] == "QuoteChanged"
    paid = api.data(PAY_OFF, {"i": {"idempotencyKey": "off", "loanId": loan["id"],
                                    "expectedAmount": "101500"}})["payOffLoan"]
    assert paid["__typename"] == "LoanPayment" and _amount(paid["amount"]) == 101500
    assert paid["loan"]["status"] == "PAID_OFF" and _amount(paid["loan"]["outstanding"]["total"]) == 0
    assert [i["status"] for i in paid["loan"]["schedule"]] == ["PAID"] * 3
    closed = api.data(REPAY, {"i": {"idempotencyKey": "r9", "loanId": loan["id"], "amount": "1"}})["repayLoan"]
    assert closed["__typename"] == "LoanClosed"
    _assert_books(conn)


def test_write_off_and_recovery_through_graphql(conn, api):
    _setup(conn, api)
    loan = _purchase(api, "p1", 10000, 30 + 182)
    early = api.data(RECOVER, {"i": {"idempotencyKey": "rec0", "loanId": loan["id"], "amount": "1"}})["recoverLoan"]
    assert early["__typename"] == "LoanNotWrittenOff"
    days = _run_days(api, 185)
    assert sum(d["writeOffs"] for d in days) == 1
    view = _loan(api, loan["id"])
    assert view["status"] == "WRITTEN_OFF" and view["bucket"] == "WRITE_OFF"
    assert _amount(view["outstanding"]["total"]) == 0
    assert {i["status"] for i in view["schedule"]} == {"WRITTEN_OFF"}
    written_off = api.data("""{ loans(customerId: "U1", bucket: WRITE_OFF) { edges { node { id } } } }""")
    assert [e["node"]["id"] for e in written_off["loans"]["edges"]] == [loan["id"]]
    too_much = api.data(RECOVER, {"i": {"idempotencyKey": "rec1", "loanId": loan["id"],
                                        "amount": "10451"}})["recoverLoan"]
    assert too_much["__typename"] == "Overpayment"
    recovered = api.data(RECOVER, {"i": {"idempotencyKey": "rec1", "loanId": loan["id"],
                                         "amount": "6000"}})["recoverLoan"]
    assert recovered["__typename"] == "LoanPayment" and _amount(recovered["loan"]["allowance"]) == 6000
    _assert_books(conn)


def test_loans_connection_buckets_and_holder_visibility(conn, api):
    _setup(conn, api)
    onboard_customer(conn, "U2")
    current = _purchase(api, "p1", 1000, 0)
    late = _purchase(api, "p2", 1000, 45)
    _run_days(api, 20)
    page = api.data("""{ loans(customerId: "U1", first: 1) { edges { cursor node { id bucket } }
                                                             pageInfo { hasNextPage endCursor } } }""")["loans"]
    assert [e["node"]["id"] for e in page["edges"]] == [current["id"]] and page["pageInfo"]["hasNextPage"]
    second = api.data("""query($a: String) { loans(customerId: "U1", first: 5, after: $a) {
                           edges { node { id bucket daysPastDue } } } }""", {"a": page["pageInfo"]["endCursor"]})
    assert [(e["node"]["id"], e["node"]["bucket"], e["node"]["daysPastDue"])
            for e in second["loans"]["edges"]] == [(late["id"], "DPD_1_30", 15)]
    overdue = api.data('{ loans(bucket: DPD_1_30) { edges { node { id } } } }')["loans"]["edges"]
    assert [e["node"]["id"] for e in overdue] == [late["id"]]
    assert _loan(api, late["id"], role="holder", holder="U1")["id"] == late["id"]
    assert _loan(api, late["id"], role="holder", holder="U2") is None
    mine = api.data("{ loans { edges { node { id } } } }", role="holder", holder="U2")["loans"]["edges"]
    assert mine == []
    theirs = api.data('{ loans(customerId: "U1") { edges { node { id } } } }', role="holder", holder="U2")
    assert theirs["loans"]["edges"] == []
    refused = api.data(REPAY, {"i": {"idempotencyKey": "h1", "loanId": late["id"], "amount": "1"}},
                       role="holder", holder="U1")["repayLoan"]
    assert refused["__typename"] == "Forbidden"
    _assert_books(conn)


def test_mixed_book_balances(conn, api):
    _setup(conn, api)
    bnpl = _purchase(api, "p1", 50000, 100)
    api.data(CONVERT, {"i": {"idempotencyKey": "c1", "loanId": bnpl["id"], "instalments": 6,
                             "monthlyFeeRate": "0.006", "convertedAt": _days_ago(100)}})
    api.data(ORIGINATE, {"i": {"idempotencyKey": "o1", "customerId": "U1", "principal": "200000",
                               "monthlyRate": "0.008", "months": 12, "method": "EQUAL_PRINCIPAL",
                               "startDate": (calendar.today() - timedelta(days=95)).isoformat()}})
    _run_days(api, 60)
    api.data(REPAY, {"i": {"idempotencyKey": "r1", "loanId": bnpl["id"], "amount": "12345"}})
    _run_days(api, 3)
    _assert_books(conn)
