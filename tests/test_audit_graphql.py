"""The audit area over HTTP: journal, auditDigest, importBankStatement, reconciliation(id),
statementDifferences and GET /statements/{code}.csv."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from ledger import calendar
from ledger.accounts import AccountType, NewAccount, Side, create_account
from ledger.checkpoints import verify_digest
from ledger.posting import Leg, Transfer, post

BANK = "assets:reserves:icbc"
WALLET = "liabilities:wallets:u1"
OTHER = "liabilities:wallets:u2"

JOURNAL = """query($after: String, $first: Int) {
  journal(after: $after, first: $first) {
    edges { cursor createdXact node { id idempotencyKey entries { side amount { amount } account { code } } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

IMPORT = """mutation($input: ImportBankStatementInput!) {
  importBankStatement(input: $input) {
    __typename
    ... on Reconciliation { id alreadyImported difference { amount } bankTotal { amount } ledgerTotal { amount }
                            matched { rule bankLine { line reference } entry { transactionId transaction { kind } } }
                            unmatchedBankLines { bankLine { line amount { amount } } note }
                            unmatchedLedgerEntries { transactionId amount { amount } } }
    ... on BankStatementInvalid { code message line }
    ... on LedgerError { code message }
  }
}"""


def _at(day: int) -> datetime:
    return datetime(2026, 10, day, 4, tzinfo=UTC)


def _book(conn):
    create_account(conn, NewAccount(BANK, "ICBC", AccountType.ASSET, "CNY"))
    create_account(conn, NewAccount(WALLET, "U1", AccountType.LIABILITY, "CNY", holder_id="u1"))
    create_account(conn, NewAccount(OTHER, "U2", AccountType.LIABILITY, "CNY", holder_id="u2"))
    return [p.transaction_id for p in post(conn, [
        Transfer("t1", "wallet.top_up", [Leg(BANK, Side.DEBIT, 10_000), Leg(WALLET, Side.CREDIT, 10_000)],
                 effective_at=_at(2), metadata={"bank_reference": "B-1"}),
        Transfer("t2", "wallet.top_up", [Leg(BANK, Side.DEBIT, 2_345), Leg(OTHER, Side.CREDIT, 2_345)],
                 effective_at=_at(3)),
        Transfer("t3", "wallet.withdraw", [Leg(WALLET, Side.DEBIT, 999), Leg(BANK, Side.CREDIT, 999)],
                 effective_at=_at(5), description="cash out"),
    ])]


def test_journal_follows_every_transaction(api, conn):
    ids = _book(conn)
    seen, after = [], None
    while True:
        page = api.data(JOURNAL, {"after": after, "first": 2}, role="auditor")["journal"]
        seen += page["edges"]
        after = page["pageInfo"]["endCursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
    assert [int(e["node"]["id"]) for e in seen] == ids
    assert seen[0]["node"]["entries"][0]["amount"]["amount"] == "10000"
    assert {e["account"]["code"] for e in seen[2]["node"]["entries"]} == {WALLET, BANK}
    assert seen[0]["createdXact"].isdigit()
    empty = api.data(JOURNAL, {"after": after, "first": 2}, role="auditor")["journal"]
    assert empty["edges"] == [] and empty["pageInfo"]["endCursor"] == after
    errors = api.errors(JOURNAL, {"first": 2}, role="holder", holder="u1")
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    errors = api.errors(JOURNAL, {"after": "junk"}, role="auditor")
    assert errors[0]["extensions"]["code"] == "VALIDATION"


def test_audit_digest_verifies(api, conn):
    _book(conn)
    digest = api.data("{ auditDigest { digest position accounts entries takenAt } }", role="auditor")["auditDigest"]
    assert digest["digest"].startswith(f"v2:{digest['position']}:")
    assert (digest["accounts"], digest["entries"]) == (3, "6")
    assert verify_digest(conn, digest["digest"], progress=None).ok
    errors = api.errors("{ auditDigest { digest } }", role="holder", holder="u1")
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"


def test_import_bank_statement_and_reconciliation(api, conn):
    ids = _book(conn)
    csv_text = "date,reference,amount\n2026-10-02,B-1,100.00\n2026-10-05,,-9.99\n2026-10-06,X,1.00\n"
    variables = {"input": {"accountCode": BANK, "csv": csv_text, "fileName": "oct.csv"}}
    run = api.data(IMPORT, variables, role="operator")["importBankStatement"]
    assert run["__typename"] == "Reconciliation" and not run["alreadyImported"]
    assert [(m["rule"], m["bankLine"]["line"], int(m["entry"]["transactionId"])) for m in run["matched"]] == \
        [("reference", 2, ids[0]), ("amount_date", 3, ids[2])]
    assert run["matched"][1]["entry"]["transaction"]["kind"] == "wallet.withdraw"
    assert [(u["bankLine"]["line"], u["bankLine"]["amount"]["amount"]) for u in run["unmatchedBankLines"]] == \
        [(4, "100")]
    assert [(int(u["transactionId"]), u["amount"]["amount"]) for u in run["unmatchedLedgerEntries"]] == \
        [(ids[1], "2345")]
    assert (run["bankTotal"]["amount"], run["ledgerTotal"]["amount"], run["difference"]["amount"]) == \
        ("9101", "11346", "-2245")
    again = api.data(IMPORT, variables, role="admin")["importBankStatement"]
    assert again["alreadyImported"] and again["id"] == run["id"]
    stored = api.data("query($id: ID!) { reconciliation(id: $id) { id account { code } matched { rule } "
                      "difference { amount } } }", {"id": run["id"]}, role="auditor")["reconciliation"]
    assert stored == {"id": run["id"], "account": {"code": BANK}, "matched": [{"rule": "reference"},
                      {"rule": "amount_date"}], "difference": {"amount": "-2245"}}
    assert api.data("{ reconciliation(id: \"999\") { id } }", role="auditor")["reconciliation"] is None


def test_import_bank_statement_errors(api, conn):
    _book(conn)
    bad = api.data(IMPORT, {"input": {"accountCode": BANK, "csv": "date,reference,amount\n2026-10-02,x,1.2.3\n"}},
                   role="operator")["importBankStatement"]
    assert bad["__typename"] == "BankStatementInvalid" and bad["line"] == 2 and "1.2.3" in bad["message"]
    refused = api.data(IMPORT, {"input": {"accountCode": BANK, "csv": "date,reference,amount\n"}},
                       role="auditor")["importBankStatement"]
    assert refused["__typename"] == "Forbidden"
    missing = api.data(IMPORT, {"input": {"accountCode": "assets:reserves:none", "csv": "x"}},
                       role="operator")["importBankStatement"]
    assert missing["__typename"] == "AccountNotFound"


STATEMENT = """query($code: String!, $from: DateTime!, $to: DateTime!, $knownAt: DateTime) {
  statement(accountCode: $code, from: $from, to: $to, knownAt: $knownAt, first: 100) {
    knownAt opening { amount } closing { amount } totalDebits { amount } totalCredits { amount }
    entries { edges { node { runningBalance { amount } entry { side amount { amount } } } } }
  }
}"""


def _csv(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_statement_csv_matches_graphql(api, conn):
    _book(conn)
    period = {"from": "2026-10-01T00:00:00+00:00", "to": "2026-11-01T00:00:00+00:00"}
    response = api.client.get(f"/statements/{WALLET}.csv", params={"from": "2026-10-01", "to": "2026-11-01"},
                              headers={"Authorization": f"Bearer {api.token('holder', 'u1')}"})
    rows = _csv(response)
    known_at = response.headers["x-statement-known-at"]
    statement = api.data(STATEMENT, {"code": WALLET, **period, "knownAt": known_at},
                         role="holder", holder="u1")["statement"]
    assert rows[0]["line"] == "opening" and rows[0]["balance_minor"] == statement["opening"]["amount"]
    entries = [r for r in rows if r["line"] == "entry"]
    assert [r["balance_minor"] for r in entries] == \
        [e["node"]["runningBalance"]["amount"] for e in statement["entries"]["edges"]]
    assert [r["debit_minor"] or r["credit_minor"] for r in entries] == \
        [e["node"]["entry"]["amount"]["amount"] for e in statement["entries"]["edges"]]
    closing, totals = rows[-2], rows[-1]
    assert closing["balance_minor"] == statement["closing"]["amount"] == "9001"
    assert (totals["debit_minor"], totals["credit_minor"]) == \
        (statement["totalDebits"]["amount"], statement["totalCredits"]["amount"])
    assert entries[0]["balance"] == "100.00" and closing["balance"] == "90.01"


def test_statement_csv_auth_and_errors(api, conn):
    _book(conn)
    params = {"from": "2026-10-01", "to": "2026-11-01"}
    assert api.client.get(f"/statements/{WALLET}.csv", params=params).status_code == 401
    bad_token = api.client.get(f"/statements/{WALLET}.csv", params=params, headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401
    holder = {"Authorization": f"Bearer {api.token('holder', 'u2')}"}
    assert api.client.get(f"/statements/{WALLET}.csv", params=params, headers=holder).status_code == 404
    assert api.client.get(f"/statements/{OTHER}.csv", params=params, headers=holder).status_code == 200
    auditor = {"Authorization": f"Bearer {api.token('auditor')}"}
    bad = api.client.get(f"/statements/{WALLET}.csv", params={"from": "soon", "to": "2026-11-01"}, headers=auditor)
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "from"
    assert api.client.get(f"/statements/{WALLET}.csv", params={"from": "2026-10-01"}, headers=auditor).status_code == 400
    assert api.client.get("/statements/liabilities:nobody.csv", params=params, headers=auditor).status_code == 404
    pdf = api.client.get(f"/statements/{WALLET}.pdf", params=params, headers=auditor)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-1.")
    body = api.client.get(f"/statements/{WALLET}.json", params=params, headers=auditor).json()
    assert body["closing"]["minor"] == "9001"


def test_statement_differences_lists_backdated_postings(api, conn):
    _book(conn)
    period = {"from": "2026-10-01T00:00:00+00:00", "to": "2026-11-01T00:00:00+00:00"}
    known_at = api.data(STATEMENT, {"code": WALLET, **period}, role="auditor")["statement"]["knownAt"]
    [late] = post(conn, [Transfer("late", "wallet.top_up", [Leg(BANK, Side.DEBIT, 50), Leg(WALLET, Side.CREDIT, 50)],
                                  effective_at=_at(4))])
    query = """query($code: String!, $from: DateTime!, $to: DateTime!, $knownAt: DateTime!) {
      statementDifferences(accountCode: $code, from: $from, to: $to, knownAt: $knownAt) {
        closingAsKnown { amount } closingNow { amount } changes { transactionId affects amount { amount } } } }"""
    diff = api.data(query, {"code": WALLET, **period, "knownAt": known_at}, role="holder", holder="u1")
    diff = diff["statementDifferences"]
    assert (diff["closingAsKnown"]["amount"], diff["closingNow"]["amount"]) == ("9001", "9051")
    assert diff["changes"] == [{"transactionId": str(late.transaction_id), "affects": "period",
                                "amount": {"amount": "50"}}]
    errors = api.errors(query, {"code": WALLET, **period, "knownAt": known_at}, role="holder", holder="u2")
    assert errors[0]["extensions"]["code"] == "ACCOUNT_NOT_FOUND"


def test_statement_route_dates_are_business_days(api, conn, monkeypatch):
    monkeypatch.delenv(calendar.time_zone_variable, raising=False)
    _book(conn)
    midnight = calendar.day_start(date(2026, 10, 10))  # 2026-10-09T16:00:00Z
    legs = [Leg(BANK, Side.DEBIT, 7), Leg(WALLET, Side.CREDIT, 7)]
    post(conn, [Transfer("last", "wallet.move", legs, effective_at=midnight - timedelta(microseconds=1)),
                Transfer("first", "wallet.move", legs, effective_at=midnight)])
    auditor = {"Authorization": f"Bearer {api.token('auditor')}"}
    rows = _csv(api.client.get(f"/statements/{WALLET}.csv", params={"from": "2026-10-10", "to": "2026-10-11"},
                               headers=auditor))
    assert (rows[0]["effective_date"], rows[0]["effective_at"]) == ("2026-10-10", "2026-10-09T16:00:00Z")
    assert rows[0]["balance_minor"] == str(10_000 - 999 + 7)
    assert [(r["effective_date"], r["credit_minor"]) for r in rows if r["line"] == "entry"] == [("2026-10-10", "7")]
