"""Onboarding and payments end to end over HTTP, against the domain page's worked numbers."""

import threading
import time
from datetime import timedelta

from ledger import calendar
from ledger.audit import verify
from ledger.journal import trial_balance

PAYMENT_FIELDS = """id customerId merchantId status feeRate refundFeeProRata holdId captureTransactionId
    authorized { amount } captured { amount } refunded { amount } fee { amount } feeRefunded { amount }
    chargedBack { amount } refundable { amount currency }"""

STEP = """__typename ... on PaymentStepDone { replayed transactionId payment { %s } }
    ... on LedgerError { code message }""" % PAYMENT_FIELDS


def _mutation(name, input_type):
    return f"mutation($input: {input_type}!) {{ {name}(input: $input) {{ {STEP} }} }}"


AUTHORIZE = _mutation("authorizePayment", "AuthorizePaymentInput")
CAPTURE = _mutation("capturePayment", "CapturePaymentInput")
VOID = _mutation("voidPayment", "VoidPaymentInput")
REFUND = _mutation("refundPayment", "RefundPaymentInput")
CHARGEBACK = _mutation("chargeback", "ChargebackInput")
ONBOARD_CUSTOMER = """mutation($input: OnboardCustomerInput!) { onboardCustomer(input: $input) {
    __typename ... on CustomerOnboarded { partyId created accounts { code holderId minBalance } }
    ... on LedgerError { code message } } }"""
ONBOARD_MERCHANT = """mutation($input: OnboardMerchantInput!) { onboardMerchant(input: $input) {
    __typename ... on MerchantOnboarded { partyId created feeRate refundFeeProRata accounts { code holderId } }
    ... on LedgerError { code message } } }"""
ONBOARD_SUPPLIER = """mutation($input: OnboardSupplierInput!) { onboardSupplier(input: $input) {
    __typename ... on SupplierOnboarded { partyId created accounts { code holderId minBalance } }
    ... on LedgerError { code message } } }"""
TOP_UP = """mutation($input: TopUpInput!) { topUp(input: $input) {
    __typename ... on ToppedUp { transactionId replayed amount { amount } } ... on LedgerError { code message } } }"""
SETTLE_TOP_UPS = """mutation($input: SettleTopUpsInput!) { settleTopUps(input: $input) {
    __typename ... on TopUpsSettled { transactionId replayed amount { amount } }
    ... on LedgerError { code message } } }"""
SETTLE_MERCHANT = """mutation($input: SettleMerchantInput!) { settleMerchant(input: $input) {
    __typename ... on MerchantSettled { transactionId replayed paidOut { amount } chargebacksRecovered { amount } }
    ... on LedgerError { code message } } }"""
WRITE_OFF = """mutation($input: WriteOffChargebackInput!) { writeOffChargeback(input: $input) {
    __typename ... on ChargebackWrittenOff { transactionId amount { amount } } ... on LedgerError { code message } } }"""
SWEEP = """mutation($input: SweepClientMoneyInput!) { sweepClientMoney(input: $input) {
    __typename ... on ClientMoneySwept { transactionId replayed amount { amount } effectiveAt
        clientMoney { difference { amount } } }
    ... on LedgerError { code message } } }"""
CLIENT_MONEY = """query($asOf: DateTime) { clientMoney(asOf: $asOf) { asOf reserves { amount } wallets { amount }
    merchantPayables { amount } supplierPayables { amount } fundSubscriptionsOwed { amount } liabilities { amount }
    difference { amount } } }"""


def _do(api, query, role="operator", **input):
    data = api.data(query, {"input": input}, role=role)
    return next(iter(data.values()))


def _amounts(payment):
    return {k: payment[k]["amount"] for k in ("authorized", "captured", "refunded", "fee", "feeRefunded",
                                              "chargedBack", "refundable")}


def _shop(api):
    assert _do(api, ONBOARD_CUSTOMER, customerId="U1")["created"] is True
    merchant = _do(api, ONBOARD_MERCHANT, merchantId="M1", feeRate="0.006")
    assert (merchant["feeRate"], merchant["refundFeeProRata"]) == ("0.006", True)
    topped = _do(api, TOP_UP, idempotencyKey="top-1", customerId="U1", bank="icbc", amount="100000")
    assert topped["__typename"] == "ToppedUp" and topped["amount"]["amount"] == "100000"
    settled = _do(api, SETTLE_TOP_UPS, bank="icbc")
    assert settled["amount"]["amount"] == "100000"


def _authorize(api, key="auth-1", amount="29900", **extra):
    result = _do(api, AUTHORIZE, idempotencyKey=key, customerId="U1", merchantId="M1", amount=amount, **extra)
    assert result["__typename"] == "PaymentAuthorized", result
    return result["payment"]


def _books_ok(conn):
    lines = trial_balance(conn)
    assert sum(x.debit_balance for x in lines) == sum(x.credit_balance for x in lines)
    assert verify(conn).ok


def test_onboarding_is_idempotent_and_sets_holders(api):
    first = _do(api, ONBOARD_CUSTOMER, customerId="U1")
    assert first["accounts"] == [{"code": "liabilities:wallets:U1", "holderId": "U1", "minBalance": "0"}]
    assert _do(api, ONBOARD_CUSTOMER, customerId="U1")["created"] is False
    supplier = _do(api, ONBOARD_SUPPLIER, supplierId="S1")
    assert supplier["accounts"] == [{"code": "liabilities:suppliers:S1", "holderId": "S1", "minBalance": "0"}]
    merchant = _do(api, ONBOARD_MERCHANT, merchantId="M1", feeRate="0.006", refundFeeProRata=False)
    assert [a["code"] for a in merchant["accounts"]] == ["liabilities:merchants:M1",
                                                        "assets:chargeback_receivables:M1"]
    bad = _do(api, ONBOARD_MERCHANT, merchantId="M2", feeRate="six per mille")
    assert (bad["__typename"], bad["code"]) == ("ValidationError", "VALIDATION")
    assert _do(api, ONBOARD_CUSTOMER, role="auditor", customerId="U2")["__typename"] == "Forbidden"
    # The holder token sees its own wallet.
    seen = api.data("{ accounts { edges { node { code } } } }", role="holder", holder="U1")
    assert [e["node"]["code"] for e in seen["accounts"]["edges"]] == ["liabilities:wallets:U1"]


def test_payment_lifecycle_worked_numbers(api, conn):
    _shop(api)
    payment = _authorize(api)
    assert payment["status"] == "AUTHORIZED" and payment["authorized"]["amount"] == "29900"
    captured = _do(api, CAPTURE, idempotencyKey="cap-1", paymentId=payment["id"])
    assert captured["__typename"] == "PaymentCaptured" and captured["payment"]["status"] == "CAPTURED"
    assert _amounts(captured["payment"])["fee"] == "179"  # 0.6% of 29900 = 179.4 -> 179
    again = _do(api, CAPTURE, idempotencyKey="cap-1", paymentId=payment["id"])
    assert again["replayed"] is True and again["transactionId"] == captured["transactionId"]

    refunded = _do(api, REFUND, idempotencyKey="ref-1", paymentId=payment["id"], amount="9900")
    assert refunded["payment"]["status"] == "PARTIALLY_REFUNDED"
    assert _amounts(refunded["payment"]) == {"authorized": "29900", "captured": "29900", "refunded": "9900",
                                             "fee": "179", "feeRefunded": "59", "chargedBack": "0",
                                             "refundable": "20000"}
    too_much = _do(api, REFUND, idempotencyKey="ref-2", paymentId=payment["id"], amount="20001")
    assert (too_much["__typename"], too_much["code"]) == ("RefundExceedsCaptured", "REFUND_EXCEEDS_CAPTURED")

    # Settle, charge back, recover from the next settlement, write off the rest.
    early = _do(api, CHARGEBACK, idempotencyKey="cb-0", paymentId=payment["id"], amount="100")
    assert early["__typename"] == "ChargebackNotAllowed"
    settled = _do(api, SETTLE_MERCHANT, idempotencyKey="set-1", merchantId="M1", bank="icbc")
    assert settled["paidOut"]["amount"] == str(29900 - 179 - 9900 + 59)
    cb = _do(api, CHARGEBACK, idempotencyKey="cb-1", paymentId=payment["id"], amount="5000")
    assert cb["__typename"] == "PaymentChargedBack" and cb["payment"]["chargedBack"]["amount"] == "5000"
    second = _authorize(api, key="auth-2", amount="3000")
    _do(api, CAPTURE, idempotencyKey="cap-2", paymentId=second["id"])  # fee 18
    netted = _do(api, SETTLE_MERCHANT, idempotencyKey="set-2", merchantId="M1", bank="icbc")
    assert (netted["paidOut"]["amount"], netted["chargebacksRecovered"]["amount"]) == ("0", "2982")
    written = _do(api, WRITE_OFF, idempotencyKey="wo-1", merchantId="M1")
    assert written["amount"]["amount"] == str(5000 - 2982)

    # Queries: by id, by party, and what a holder may see.
    one = api.data("query($id: ID!) { payment(id: $id) { %s } }" % PAYMENT_FIELDS, {"id": payment["id"]})
    assert one["payment"]["refunded"]["amount"] == "9900"
    assert api.data("query($id: ID!) { payment(id: $id) { id } }", {"id": payment["id"]},
                    role="holder", holder="U1")["payment"]["id"] == payment["id"]
    assert api.data("query($id: ID!) { payment(id: $id) { id } }", {"id": payment["id"]},
                    role="holder", holder="U2")["payment"] is None
    listed = api.data("""{ payments(merchantId: "M1", first: 1) { edges { cursor node { id status } }
        pageInfo { hasNextPage endCursor } } }""")["payments"]
    assert [e["node"]["id"] for e in listed["edges"]] == [second["id"]] and listed["pageInfo"]["hasNextPage"]
    rest = api.data("""query($after: String) { payments(customerId: "U1", after: $after) {
        edges { node { id } } pageInfo { hasNextPage } } }""", {"after": listed["pageInfo"]["endCursor"]})
    assert [e["node"]["id"] for e in rest["payments"]["edges"]] == [payment["id"]]
    assert api.data("{ payments { edges { node { id } } } }", role="holder", holder="U2")["payments"]["edges"] == []
    _books_ok(conn)


def test_partial_capture_void_and_expiry(api, conn):
    _shop(api)
    payment = _authorize(api, amount="10000")
    part = _do(api, CAPTURE, idempotencyKey="cap", paymentId=payment["id"], amount="6000")["payment"]
    assert (part["captured"]["amount"], part["fee"]["amount"], part["status"]) == ("6000", "36", "CAPTURED")
    over = _authorize(api, key="auth-over", amount="500")
    refused = _do(api, CAPTURE, idempotencyKey="cap-over", paymentId=over["id"], amount="501")
    assert refused["__typename"] == "CaptureExceedsAuthorized"

    voided = _do(api, VOID, idempotencyKey="void", paymentId=over["id"])
    assert voided["payment"]["status"] == "VOIDED"
    after_void = _do(api, CAPTURE, idempotencyKey="cap-after-void", paymentId=over["id"])
    assert (after_void["__typename"], after_void["code"]) == ("HoldNotPending", "HOLD_NOT_PENDING")

    now = conn.execute("select clock_timestamp()").fetchone()[0]
    short = _authorize(api, key="auth-short", amount="700",
                       expiresAt=(now + timedelta(seconds=1.5)).isoformat())
    time.sleep(2)
    late = _do(api, CAPTURE, idempotencyKey="cap-late", paymentId=short["id"])
    assert (late["__typename"], late["code"]) == ("HoldExpired", "HOLD_EXPIRED")
    status = api.data("query($id: ID!) { payment(id: $id) { status } }", {"id": short["id"]})
    assert status["payment"]["status"] == "EXPIRED"

    unknown = _do(api, VOID, idempotencyKey="v-unknown", paymentId="999999")
    assert unknown["__typename"] == "PaymentNotFound"
    broke = _do(api, AUTHORIZE, idempotencyKey="auth-broke", customerId="U1", merchantId="M1", amount="1000000")
    assert broke["__typename"] == "InsufficientFunds"
    stranger = _do(api, AUTHORIZE, idempotencyKey="auth-x", customerId="U9", merchantId="M1", amount="1")
    assert (stranger["__typename"], stranger["code"]) == ("NotOnboarded", "NOT_ONBOARDED")
    _books_ok(conn)


def test_double_refund_race_over_http(api, conn):
    _shop(api)
    payment = _authorize(api)
    _do(api, CAPTURE, idempotencyKey="cap", paymentId=payment["id"])
    api.token("operator")  # made before the threads start, so they share it
    results = []
    barrier = threading.Barrier(2)

    def refund(key):
        barrier.wait()
        results.append(_do(api, REFUND, idempotencyKey=key, paymentId=payment["id"], amount="20000"))

    threads = [threading.Thread(target=refund, args=(f"race-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["__typename"] for r in results) == ["PaymentRefunded", "RefundExceedsCaptured"]
    final = api.data("query($id: ID!) { payment(id: $id) { refunded { amount } } }", {"id": payment["id"]})
    assert final["payment"]["refunded"]["amount"] == "20000"
    _books_ok(conn)


def test_client_money_after_a_mix_and_the_sweep(api, conn):
    _shop(api)
    _do(api, ONBOARD_SUPPLIER, supplierId="S1")
    payment = _authorize(api)
    _do(api, CAPTURE, idempotencyKey="cap", paymentId=payment["id"])
    _do(api, REFUND, idempotencyKey="ref", paymentId=payment["id"], amount="9900")
    _do(api, TOP_UP, idempotencyKey="top-2", customerId="U1", bank="abc", amount="5000")
    _do(api, SETTLE_MERCHANT, idempotencyKey="set", merchantId="M1", bank="icbc")
    _do(api, CHARGEBACK, idempotencyKey="cb", paymentId=payment["id"], amount="1000")
    before = api.data(CLIENT_MONEY, role="auditor")["clientMoney"]
    assert before["difference"]["amount"] == str(120 - 5000 - 1000)
    assert int(before["reserves"]["amount"]) - int(before["liabilities"]["amount"]) == 120 - 5000 - 1000

    today = calendar.today().isoformat()
    swept = _do(api, SWEEP, idempotencyKey="eod", bank="icbc", date=today)
    assert swept["__typename"] == "ClientMoneySwept", swept
    assert swept["amount"]["amount"] == "5880" and swept["clientMoney"]["difference"]["amount"] == "0"
    assert api.data(CLIENT_MONEY, role="auditor")["clientMoney"]["difference"]["amount"] == "0"
    assert _do(api, SWEEP, idempotencyKey="eod", bank="icbc", date=today)["replayed"] is True
    unknown_bank = _do(api, SWEEP, idempotencyKey="eod-x", bank="nowhere", date=today)
    assert unknown_bank["__typename"] == "BankNotFound"
    denied = api.query(CLIENT_MONEY, role="holder", holder="U1")
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    _books_ok(conn)
