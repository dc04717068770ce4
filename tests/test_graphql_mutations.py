"""Every mutation over HTTP: its success, its replay, and every error type it can return."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from book import BANK, CAPPED, MERCHANT_M1, USD_BANK, WALLET_U1, WALLET_U2, open_book, top_up

from ledger.account_lifecycle import set_status
from ledger.accounts import AccountStatus
from ledger.periods import close_period

ERROR = "... on LedgerError { __typename code message } ... on ValidationError { field }"

POST = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { __typename
  ... on PostedTransaction { replayed transaction { id idempotencyKey kind description effectiveAt metadata
        entries { side amount { amount currency } layer account { code } balanceAfter { amount } } } }
  %s } }""" % ERROR

HOLD = """mutation($input: CreateHoldInput!) { createHold(input: $input) { __typename
  ... on HoldCreated { replayed hold { id status amount { amount } expiresAt transaction { id } } } %s } }""" % ERROR

POST_HOLD = """mutation($input: PostHoldInput!) { postHold(input: $input) { __typename
  ... on HoldPosted { replayed hold { id status } transaction { id entries { side amount { amount } layer } } }
  %s } }""" % ERROR

VOID_HOLD = """mutation($input: VoidHoldInput!) { voidHold(input: $input) { __typename
  ... on HoldVoided { replayed hold { id status } transaction { id } } %s } }""" % ERROR

REVERSE = """mutation($input: ReverseTransactionInput!) { reverseTransaction(input: $input) { __typename
  ... on TransactionReversed { replayed transaction { id reverses { id reversedBy { id } }
      entries { side amount { amount } account { code } } } } %s } }""" % ERROR

CREATE = """mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename
  ... on AccountCreated { created account { id code type normalSide currency holderId status minBalance maxBalance
      metadata } } %s } }""" % ERROR

CLOSE = """mutation($until: DateTime!) { closePeriod(input: {until: $until}) { __typename
  ... on BooksClosed { closedUntil } %s } }""" % ERROR

BALANCE = """query($code: String!) { account(code: $code) { balance {
  posted { amount } pending { amount } available { amount } } } }"""


def transfer(key, legs, **extra):
    entries = [{"accountCode": code, "side": side, "amount": str(amount)} for code, side, amount in legs]
    return {"input": {"idempotencyKey": key, "kind": extra.pop("kind", "wallet.top_up"), "entries": entries, **extra}}


def post(api, key, legs, role="operator", holder=None, **extra):
    return api.data(POST, transfer(key, legs, **extra), role=role, holder=holder)["postTransaction"]


def balances(api, code):
    b = api.data(BALANCE, {"code": code})["account"]["balance"]
    return int(b["posted"]["amount"]), int(b["pending"]["amount"]), int(b["available"]["amount"])


def test_post_transaction_then_replay(api, conn):
    open_book(conn)
    legs = [(BANK, "DEBIT", 100000), (WALLET_U1, "CREDIT", 100000)]
    first = post(api, "top-up-1", legs, description="Top-up", metadata={"channel": "online"},
                 effectiveAt="2026-01-05T10:00:00+08:00")
    assert first["__typename"] == "PostedTransaction" and first["replayed"] is False
    tx = first["transaction"]
    assert (tx["idempotencyKey"], tx["kind"], tx["description"]) == ("top-up-1", "wallet.top_up", "Top-up")
    assert tx["metadata"] == {"channel": "online"}
    assert datetime.fromisoformat(tx["effectiveAt"]) == datetime(2026, 1, 5, 2, tzinfo=UTC)
    assert {(e["account"]["code"], e["side"], e["amount"]["amount"], e["layer"]) for e in tx["entries"]} == {
        (BANK, "DEBIT", "100000", "POSTED"), (WALLET_U1, "CREDIT", "100000", "POSTED")}
    again = post(api, "top-up-1", legs, description="Top-up", metadata={"channel": "online"},
                 effectiveAt="2026-01-05T10:00:00+08:00")
    assert again["replayed"] is True and again["transaction"]["id"] == tx["id"]
    assert balances(api, WALLET_U1) == (100000, 100000, 100000)


def test_post_transaction_errors(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 1000, "seed")
    cases = [
        ("InsufficientFunds", "INSUFFICIENT_FUNDS", [(WALLET_U1, "DEBIT", 1001), (MERCHANT_M1, "CREDIT", 1001)]),
        ("UnbalancedTransaction", "UNBALANCED", [(BANK, "DEBIT", 10), (WALLET_U1, "CREDIT", 9)]),
        ("AccountNotFound", "ACCOUNT_NOT_FOUND", [(BANK, "DEBIT", 10), ("liabilities:wallets:NOPE", "CREDIT", 10)]),
        ("CurrencyMismatch", "CURRENCY_MISMATCH", [(USD_BANK, "DEBIT", 10), (WALLET_U1, "CREDIT", 10)]),
        ("LimitExceeded", "LIMIT_EXCEEDED", [(BANK, "DEBIT", 1001), (CAPPED, "CREDIT", 1001)]),
        ("ValidationError", "VALIDATION", [(BANK, "DEBIT", 0), (WALLET_U1, "CREDIT", 0)]),
    ]
    for i, (typename, code, legs) in enumerate(cases):
        result = post(api, f"bad-{i}", legs)
        assert (result["__typename"], result["code"]) == (typename, code), result
        assert result["message"]
    invalid = api.data(POST, {"input": {**transfer("bad-kind", [(BANK, "DEBIT", 1), (WALLET_U1, "CREDIT", 1)])["input"],
                                        "kind": "Not A Kind"}}, role="operator")["postTransaction"]
    assert (invalid["__typename"], invalid["field"]) == ("ValidationError", "kind")


def test_idempotency_conflict(api, conn):
    open_book(conn)
    assert post(api, "k", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)])["__typename"] == "PostedTransaction"
    conflict = post(api, "k", [(BANK, "DEBIT", 6), (WALLET_U1, "CREDIT", 6)])
    assert (conflict["__typename"], conflict["code"]) == ("IdempotencyConflict", "IDEMPOTENCY_CONFLICT")


def test_frozen_account_and_closed_period(api, conn):
    open_book(conn)
    set_status(conn, WALLET_U2, AccountStatus.FROZEN, "KYC review")
    frozen = post(api, "f", [(BANK, "DEBIT", 5), (WALLET_U2, "CREDIT", 5)])
    assert (frozen["__typename"], frozen["code"]) == ("AccountFrozen", "ACCOUNT_FROZEN")
    close_period(conn, datetime.now(UTC) - timedelta(days=1))
    closed = post(api, "p", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)],
                  effectiveAt=(datetime.now(UTC) - timedelta(days=2)).isoformat())
    assert (closed["__typename"], closed["code"]) == ("PeriodClosed", "PERIOD_CLOSED")


def test_hold_lifecycle_and_the_issue_example(api, conn):
    """A wallet with 100000 credited and a 29900 outgoing hold shows 100000 / 70100 / 70100."""
    open_book(conn)
    top_up(conn, WALLET_U1, 100000, "seed")
    hold_input = transfer("auth-1", [(WALLET_U1, "DEBIT", 29900), (MERCHANT_M1, "CREDIT", 29900)],
                          kind="payment.authorize")
    created = api.data(HOLD, hold_input, role="operator")["createHold"]
    assert created["__typename"] == "HoldCreated" and created["replayed"] is False
    hold = created["hold"]
    assert (hold["status"], hold["amount"]["amount"]) == ("PENDING", "29900") and hold["expiresAt"]
    assert hold["transaction"]["id"] == hold["id"]
    assert balances(api, WALLET_U1) == (100000, 70100, 70100)
    assert api.data(HOLD, hold_input, role="operator")["createHold"]["replayed"] is True

    posted = api.data(POST_HOLD, {"input": {"idempotencyKey": "cap-1", "holdId": hold["id"], "amount": "19900"}},
                      role="operator")["postHold"]
    assert posted["__typename"] == "HoldPosted" and posted["hold"]["status"] == "POSTED"
    assert {(e["side"], e["amount"]["amount"]) for e in posted["transaction"]["entries"] if e["layer"] == "POSTED"} == {
        ("DEBIT", "19900"), ("CREDIT", "19900")}
    assert balances(api, WALLET_U1) == (80100, 80100, 80100)
    again = api.data(POST_HOLD, {"input": {"idempotencyKey": "cap-2", "holdId": hold["id"]}}, role="operator")["postHold"]
    assert (again["__typename"], again["code"]) == ("HoldNotPending", "HOLD_NOT_PENDING")


def test_void_hold(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 5000, "seed")
    hold = api.data(HOLD, transfer("auth", [(WALLET_U1, "DEBIT", 3000), (MERCHANT_M1, "CREDIT", 3000)],
                                   kind="payment.authorize"), role="operator")["createHold"]["hold"]
    assert balances(api, WALLET_U1)[2] == 2000
    voided = api.data(VOID_HOLD, {"input": {"idempotencyKey": "void", "holdId": hold["id"]}}, role="operator")["voidHold"]
    assert voided["__typename"] == "HoldVoided" and voided["hold"]["status"] == "VOIDED"
    assert api.data(VOID_HOLD, {"input": {"idempotencyKey": "void", "holdId": hold["id"]}},
                    role="operator")["voidHold"]["replayed"] is True
    assert balances(api, WALLET_U1) == (5000, 5000, 5000)
    missing = api.data(VOID_HOLD, {"input": {"idempotencyKey": "void-2", "holdId": "999999"}}, role="operator")["voidHold"]
    assert missing["code"] == "HOLD_NOT_FOUND"
    bad_id = api.data(VOID_HOLD, {"input": {"idempotencyKey": "void-3", "holdId": "abc"}}, role="operator")["voidHold"]
    assert (bad_id["__typename"], bad_id["field"]) == ("ValidationError", "holdId")
    short = api.data(HOLD, transfer("auth-big", [(WALLET_U1, "DEBIT", 6000), (MERCHANT_M1, "CREDIT", 6000)],
                                    kind="payment.authorize"), role="operator")["createHold"]
    assert short["__typename"] == "InsufficientFunds"


def test_reverse_transaction(api, conn):
    open_book(conn)
    original = top_up(conn, WALLET_U1, 700, "seed")
    variables = {"input": {"idempotencyKey": "rev", "transactionId": str(original), "description": "wrong wallet"}}
    reversed_ = api.data(REVERSE, variables, role="operator")["reverseTransaction"]
    assert reversed_["__typename"] == "TransactionReversed" and reversed_["replayed"] is False
    tx = reversed_["transaction"]
    assert tx["reverses"]["id"] == str(original) and tx["reverses"]["reversedBy"]["id"] == tx["id"]
    assert {(e["account"]["code"], e["side"]) for e in tx["entries"]} == {(WALLET_U1, "DEBIT"), (BANK, "CREDIT")}
    assert balances(api, WALLET_U1) == (0, 0, 0)
    twice = api.data(REVERSE, {"input": {"idempotencyKey": "rev-2", "transactionId": str(original)}},
                     role="operator")["reverseTransaction"]
    assert (twice["__typename"], twice["code"]) == ("AlreadyReversed", "ALREADY_REVERSED")
    missing = api.data(REVERSE, {"input": {"idempotencyKey": "rev-3", "transactionId": "424242"}},
                       role="operator")["reverseTransaction"]
    assert (missing["__typename"], missing["code"]) == ("TransactionNotFound", "TRANSACTION_NOT_FOUND")


def test_create_account(api):
    variables = {"input": {"code": "liabilities:wallets:U9", "name": "Wallet U9", "type": "LIABILITY",
                           "holderId": "U9", "minBalance": "0", "metadata": {"tier": "gold"}}}
    created = api.data(CREATE, variables)["createAccount"]
    assert created["__typename"] == "AccountCreated" and created["created"] is True
    account = created["account"]
    assert (account["type"], account["normalSide"], account["currency"], account["holderId"], account["status"],
            account["minBalance"], account["maxBalance"], account["metadata"]) == (
        "LIABILITY", "CREDIT", "CNY", "U9", "ACTIVE", "0", None, {"tier": "gold"})
    assert api.data(CREATE, variables)["createAccount"]["created"] is False
    variables["input"]["minBalance"] = "-100"
    clash = api.data(CREATE, variables)["createAccount"]
    assert (clash["__typename"], clash["field"]) == ("ValidationError", "code")
    bad = api.data(CREATE, {"input": {"code": "Not A Code", "name": "x", "type": "ASSET"}})["createAccount"]
    assert (bad["__typename"], bad["field"]) == ("ValidationError", "code")
    for role in ("operator", "auditor"):
        assert api.data(CREATE, variables, role=role)["createAccount"]["__typename"] == "Forbidden"
    assert api.data(CREATE, variables, role="holder", holder="U9")["createAccount"]["code"] == "FORBIDDEN"


def test_close_period(api, conn):
    open_book(conn)
    until = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    assert api.data(CLOSE, {"until": until.isoformat()}, role="operator")["closePeriod"]["__typename"] == "Forbidden"
    closed = api.data(CLOSE, {"until": until.isoformat()})["closePeriod"]
    assert closed["__typename"] == "BooksClosed" and datetime.fromisoformat(closed["closedUntil"]) == until
    again = api.data(CLOSE, {"until": until.isoformat()})["closePeriod"]
    assert (again["__typename"], again["code"]) == ("PeriodClosed", "PERIOD_CLOSED")
    future = api.data(CLOSE, {"until": (until + timedelta(days=30)).isoformat()})["closePeriod"]
    assert (future["__typename"], future["field"]) == ("ValidationError", "until")
    late = post(api, "late", [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)], effectiveAt=until.isoformat())
    assert late["__typename"] == "PeriodClosed"


def test_posting_roles(api, conn):
    open_book(conn)
    legs = [(BANK, "DEBIT", 5), (WALLET_U1, "CREDIT", 5)]
    assert post(api, "a", legs, role="auditor")["__typename"] == "Forbidden"
    assert post(api, "h", legs, role="holder", holder="U1")["__typename"] == "Forbidden"
    assert post(api, "o", legs, role="operator")["__typename"] == "PostedTransaction"
    assert post(api, "d", legs, role="admin")["__typename"] == "PostedTransaction"
    hold_input = transfer("hh", [(WALLET_U1, "DEBIT", 1), (MERCHANT_M1, "CREDIT", 1)], kind="payment.authorize")
    assert api.data(HOLD, hold_input, role="holder", holder="U1")["createHold"]["__typename"] == "Forbidden"
    assert api.data(HOLD, hold_input, role="auditor")["createHold"]["__typename"] == "Forbidden"
    assert api.data(REVERSE, {"input": {"idempotencyKey": "r", "transactionId": "1"}},
                    role="auditor")["reverseTransaction"]["__typename"] == "Forbidden"
    assert api.data(POST_HOLD, {"input": {"idempotencyKey": "x", "holdId": "1"}},
                    role="auditor")["postHold"]["__typename"] == "Forbidden"
    assert api.data(VOID_HOLD, {"input": {"idempotencyKey": "x", "holdId": "1"}},
                    role="holder", holder="U1")["voidHold"]["__typename"] == "Forbidden"
    assert api.data(VOID_HOLD, {"input": {"idempotencyKey": "x", "holdId": "1"}},
                    role="auditor")["voidHold"]["__typename"] == "Forbidden"
