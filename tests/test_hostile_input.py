"""Whatever a client sends gets a typed refusal, never HTTP 500 or an INTERNAL error, and writes
nothing: documents too costly to validate, malformed bodies, strings the database cannot store,
times and days outside the accepted range, amounts with a trailing newline or past 64 bits, and values the
database itself refuses. Each class is sent over HTTP, as a query and as `postTransaction`."""

from __future__ import annotations

import base64
import json
from datetime import UTC
from typing import Any

import psycopg
import pytest
from book import BANK, WALLET_U1, open_book

from graphql_api.context import Limits
from ledger.errors import ValidationError, translate
from ledger.tokens import create_token

POST = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { __typename
  ... on PostedTransaction { transaction { id } }
  ... on LedgerError { code message } ... on ValidationError { field } } }"""

ACCOUNT = "query($code: String!) { account(code: $code) { code } }"


def transfer(**changes: Any) -> dict[str, Any]:
    body = {"idempotencyKey": "hostile-1", "kind": "wallet.top_up", "description": "top-up", "entries": [
        {"accountCode": BANK, "side": "DEBIT", "amount": "100"},
        {"accountCode": WALLET_U1, "side": "CREDIT", "amount": "100"}]}
    body.update(changes)
    return {"input": body}


def legs(debit: str = BANK, credit: str = WALLET_U1, amount: str = "100") -> list[dict[str, str]]:
    return [{"accountCode": debit, "side": "DEBIT", "amount": amount},
            {"accountCode": credit, "side": "CREDIT", "amount": amount}]


def transactions(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("select count(*) from ledger.transactions").fetchone()
    assert row is not None
    return int(row[0])


def send(api: Any, body: str | bytes, content_type: str = "application/json") -> Any:
    return api.client.post("/graphql", content=body,
                           headers={"Authorization": f"Bearer {api.token()}", "Content-Type": content_type})


def refusal(response: Any) -> dict[str, Any]:
    """The one typed refusal in `response`: a 4xx or a GraphQL error or error result, not INTERNAL."""
    assert response.status_code < 500, response.text
    assert "INTERNAL" not in response.text, response.text
    body = response.json()
    if body.get("errors"):
        error = body["errors"][0]
        assert error["extensions"]["code"], body
        return {"code": error["extensions"]["code"], "message": error["message"],
                "field": error["extensions"].get("field", "")}
    assert response.status_code == 200
    (result,) = body["data"].values()
    assert result["__typename"] not in ("PostedTransaction", "Reconciliation"), body
    return {"code": result["code"], "message": result["message"], "field": result.get("field", "")}


def refused_post(api: Any, conn: psycopg.Connection[Any], variables: dict[str, Any]) -> dict[str, Any]:
    before = transactions(conn)
    found = refusal(send(api, json.dumps({"query": POST, "variables": variables})))
    assert transactions(conn) == before, "a refused request wrote nothing"
    return found


def refused_query(api: Any, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return refusal(send(api, json.dumps({"query": query, "variables": variables or {}})))


# Validation cost ---------------------------------------------------------------------------------

def test_a_document_too_costly_to_validate_is_refused_before_validation(api, conn):
    open_book(conn)
    repeated = "{ " + " ".join("trialBalance { balanced }" for _ in range(280)) + " }"
    inline = "{ " + " ".join("... on Query { trialBalance { balanced } }" for _ in range(120)) + " }"
    fragments = " ".join(f"fragment F{i} on Query {{ {' '.join(['trialBalance { balanced }'] * 8)} }}"
                         for i in range(20))
    spread = "{ " + " ".join(f"...F{i}" for i in range(20)) + " } " + fragments
    nested = "{ trialBalance { " + " ".join("lines { accountCode }" for _ in range(100)) + " } }"
    # four fields, each selecting four more at one path: sixteen there, compared pairwise
    product = "{ " + " ".join("trialBalance { " + "lines { accountCode } " * 4 + "}" for _ in range(4)) + " }"
    wide = "{ " + " ".join(f"a{i}: trialBalance(asOf: null) {{ balanced }}" for i in range(30)) + " }"
    many_fields = "{ trialBalance { " + " ".join(
        f"l{i}: lines {{ accountCode debit {{ amount currency }} credit {{ amount currency }} }}"
        for i in range(28)) + " } }"
    for query, limit in [(repeated, "duplicateSelectionsMax"), (inline, "duplicateSelectionsMax"),
                         (spread, "duplicateSelectionsMax"), (nested, "duplicateSelectionsMax"),
                         (product, "duplicateSelectionsMax")]:
        error = api.errors(query)[0]
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": limit}, (query[:80], error)
        assert "trialBalance" in error["message"] or "lines" in error["message"]
    # refused before validation: the unknown field is never reported
    (only,) = api.errors("{ noSuchField " + repeated[1:])
    assert only["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert api.data(wide)["a0"]["balanced"] is True
    assert api.data(many_fields)["trialBalance"]["l0"] is not None
    mutation = "mutation { " + " ".join(
        'postTransaction(input: {idempotencyKey: "k", kind: "k", entries: []}) { __typename }'
        for _ in range(40)) + " }"
    before = transactions(conn)
    assert api.errors(mutation)[0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert transactions(conn) == before


def test_fields_and_selections_per_path_have_limits(api):
    limits = Limits()
    level = " ".join(f"f{i}" for i in range(limits.selections_per_level_max - 1))
    many_fields = "{ " + " ".join(f"x{i} {{ {level} }}" for i in range(limits.fields_max // len(level.split()) + 1)) + " }"
    wide = "{ trialBalance { " + " ".join(f"f{i}" for i in range(limits.selections_per_level_max + 1)) + " } }"
    doubling = "{ ...F0 } " + " ".join(f"fragment F{i} on Query {{ a: trialBalance {{ ...F{i + 1} }} "
                                       f"b: trialBalance {{ ...F{i + 1} }} }}" for i in range(20))
    cycle = "{ ...F } fragment F on Query { trialBalance { ...F } }"
    for query, limit in [(many_fields, "fieldsMax"), (wide, "selectionsPerLevelMax"), (doubling, "fieldsMax"),
                         (cycle, "fieldsMax")]:
        error = api.errors(query)[0]
        assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": limit}, error
    # unknown fields: only refused by validation, which these documents never reached
    assert api.errors("{ f0 }")[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_the_tour_still_passes(api, conn):
    open_book(conn)
    api.data(f"""{{ account(code: "{WALLET_U1}") {{ name holderId
        balance {{ posted {{ formatted }} pending {{ formatted }} available {{ amount formatted }} }} }} }}""")
    api.data(f"""{{ statement(accountCode: "{WALLET_U1}", from: "2026-08-01T00:00:00+08:00",
            to: "2026-09-01T00:00:00+08:00", first: 3) {{
        opening {{ formatted }} closing {{ formatted }} totalDebits {{ formatted }} totalCredits {{ formatted }}
        entries {{ edges {{ node {{ entry {{ effectiveAt side amount {{ formatted }} transaction {{ description }} }}
                                 runningBalance {{ formatted }} }} }}
                  pageInfo {{ hasNextPage endCursor }} }} }} }}""")
    tour_post = """mutation($input: PostTransactionInput!) { postTransaction(input: $input) { __typename
      ... on PostedTransaction { replayed transaction { id entries { account { code } side amount { formatted } } } }
      ... on LedgerError { code message } } }"""
    posted = api.data(tour_post, transfer(), role="operator")["postTransaction"]
    assert posted["__typename"] == "PostedTransaction"
    mine = api.data(f'{{ mine: account(code: "{WALLET_U1}") {{ code }} theirs: account(code: "{BANK}") {{ code }} }}',
                    role="holder", holder="U1")
    assert mine == {"mine": {"code": WALLET_U1}, "theirs": None}


# Malformed bodies --------------------------------------------------------------------------------

def test_malformed_bodies_get_a_typed_400(api, conn):
    open_book(conn)
    query = json.dumps({"query": POST, "variables": transfer()})
    cases: list[tuple[str, str | bytes, str]] = [
        ("nested 2,000 deep", "[" * 2000 + "]" * 2000, "application/json"),
        ("nested in variables", '{"query": "{ __typename }", "variables": ' + '{"a": ' * 2000 + "1" + "}" * 2001,
         "application/json"),
        ("nested in metadata", json.dumps({"query": POST, "variables": transfer(metadata=_nested(40))}),
         "application/json"),
        ("invalid UTF-8", query.encode()[:40] + b"\xff\xfe" + query.encode()[40:], "application/json"),
        ("not JSON", "{", "application/json"),
        ("NaN", '{"query": "{ __typename }", "variables": {"a": NaN}}', "application/json"),
        ("a huge integer", '{"query": "{ __typename }", "variables": {"a": ' + "9" * 5000 + "}}", "application/json"),
        ("a list", "[" + query + "]", "application/json"),
        ("a string", '"{ __typename }"', "application/json"),
        ("a number", "1", "application/json"),
        ("null", "null", "application/json"),
        ("text/plain", query, "text/plain"),
        ("form", "query=%7B__typename%7D", "application/x-www-form-urlencoded"),
        ("multipart", "--x\r\n\r\n--x--", "multipart/form-data; boundary=x"),
        ("no content type", query, ""),
        ("variables a list", json.dumps({"query": POST, "variables": [transfer()]}), "application/json"),
        ("variables a string", json.dumps({"query": POST, "variables": "x"}), "application/json"),
        ("query a number", json.dumps({"query": 5}), "application/json"),
        ("extensions a list", json.dumps({"query": POST, "variables": transfer(), "extensions": []}),
         "application/json"),
    ]
    before = transactions(conn)
    for label, body, content_type in cases:
        response = send(api, body, content_type)
        assert 400 <= response.status_code < 500, (label, response.status_code, response.text)
        error = refusal(response)
        assert error["code"] == "BAD_REQUEST", (label, error)
    assert transactions(conn) == before
    response = api.client.get("/graphql", params={"query": "{ __typename }", "variables": "[1]"},
                              headers={"Authorization": f"Bearer {api.token()}"})
    assert response.status_code == 400 and refusal(response)["code"] == "BAD_REQUEST"
    assert api.data(POST, transfer(), role="operator")["postTransaction"]["__typename"] == "PostedTransaction"


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"n": value}
    return value


# Strings the database cannot store ---------------------------------------------------------------

@pytest.mark.parametrize("bad", ["\u0000", "\ud800"], ids=["NUL", "lone surrogate"])
def test_unstorable_characters_are_refused_wherever_they_are_sent(api, conn, bad):
    open_book(conn)
    posts = {
        "$input.idempotencyKey": transfer(idempotencyKey=f"k{bad}"),
        "$input.description": transfer(description=f"d{bad}"),
        "$input.kind": transfer(kind=f"wallet{bad}"),
        "$input.metadata": transfer(metadata={f"k{bad}": 1}),
        "$input.metadata.note": transfer(metadata={"note": f"v{bad}"}),
        "$input.metadata.deep[0]": transfer(metadata={"deep": [f"v{bad}"]}),
        "$input.entries[0].accountCode": transfer(entries=legs(debit=f"{BANK}{bad}")),
        "$input.entries[1].amount": transfer(entries=[*legs()[:1], {**legs()[1], "amount": f"1{bad}"}]),
        "$input.effectiveAt": transfer(effectiveAt=f"2026-01-01T00:00:00Z{bad}"),
    }
    for field, variables in posts.items():
        error = refused_post(api, conn, variables)
        assert error["code"] == "VALIDATION" and error["field"] == field, (field, error)
        assert "U+0000" in error["message"] or "U+D800" in error["message"]
    queries = [
        (ACCOUNT, {"code": f"{WALLET_U1}{bad}"}, "$code"),
        ("query($h: String) { accounts(holderId: $h) { edges { cursor } } }", {"h": f"U1{bad}"}, "$h"),
        ("query($p: String!) { rollup(prefix: $p) { amount } }", {"p": f"assets{bad}"}, "$p"),
        ("query($a: String) { accounts(after: $a) { edges { cursor } } }", {"a": f"x{bad}"}, "$a"),
        ("""mutation($input: ImportBankStatementInput!) { importBankStatement(input: $input) { __typename } }""",
         {"input": {"accountCode": BANK, "csv": f"date,reference,amount\n2026-01-01,r{bad},1.00\n"}},
         "$input.csv"),
        ("""mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename } }""",
         {"input": {"code": "liabilities:wallets:U9", "name": f"n{bad}", "type": "LIABILITY"}}, "$input.name"),
    ]
    for query, variables, field in queries:
        error = refused_query(api, query, variables)
        assert error == {"code": "VALIDATION", "field": field, "message": error["message"]}, (field, error)
    if bad == "\u0000":  # a literal can only hold NUL: the lexer refuses a lone surrogate itself
        for literal in ['"a\\u0000"', '"a\\u{0}"', '"""a\u0000"""']:
            error = refused_query(api, f"{{ account(code: {literal}) {{ code }} }}")
            assert error["code"] == "VALIDATION" and error["field"] == "code", error
        mutation = ('mutation { postTransaction(input: {idempotencyKey: "k", kind: "wallet.top_up", '
                    'metadata: {note: "a\\u0000"}, entries: []}) { __typename } }')
        before = transactions(conn)
        error = refused_query(api, mutation)
        assert error["code"] == "VALIDATION" and error["field"] == "input.metadata.note", error
        assert transactions(conn) == before
    else:
        error = refused_query(api, '{ account(code: "a\\ud800") { code } }')
        assert error["code"] == "GRAPHQL_PARSE_FAILED" and "Invalid Unicode" in error["message"]


def test_forged_cursors_are_refused(api, conn):
    open_book(conn)

    def cursor(position: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")

    cases = [
        ("query($a: String) { accounts(after: $a) { edges { cursor } } }", cursor({"code": "a\u0000"})),
        ("query($a: String) { accounts(after: $a) { edges { cursor } } }", cursor({"code": "a\ud800"})),
        ("query($a: String) { journal(after: $a) { edges { cursor } } }", cursor({"x": 2**70, "id": 1})),
        (f'query($a: String) {{ statement(accountCode: "{WALLET_U1}", from: "2026-01-01T00:00:00Z", '
         f'to: "2026-02-01T00:00:00Z", after: $a) {{ closing {{ amount }} }} }}',
         cursor({"at": 2**62, "id": 1, "balance": 0, "known": 2**62})),
        (f'query($a: String) {{ account(code: "{WALLET_U1}") {{ entries(after: $a) {{ edges {{ cursor }} }} }} }}',
         cursor({"at": -(2**62), "id": 1})),
    ]
    for query, after in cases:
        error = refused_query(api, query, {"a": after})
        assert error["code"] == "VALIDATION" and error["field"] == "after", (after, error)


# Times -------------------------------------------------------------------------------------------

def test_times_outside_the_accepted_range_are_refused(api, conn):
    open_book(conn)
    for text in ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "1969-12-31T23:59:59Z",
                 "9999-01-01T00:00:00Z", "2026-01-01T00:00:00+23:59", "2026-01-01T00:00:00-14:01",
                 "2026-01-01T00:00:00+05:00:30", "2026-01-01T00:00:00+05:00:00.5", "2026-01-01T00:00:00",
                 "2026-01-01T00:00:00Z\n"]:
        error = refused_post(api, conn, transfer(effectiveAt=text))
        assert error["code"] == "BAD_USER_INPUT" and "DateTime" in error["message"], (text, error)
        assert "effectiveAt" in error["message"] or "$input" in error["message"], (text, error)
        for query in [f'{{ trialBalance(asOf: "{text.strip()}") {{ balanced }} }}',
                      f'{{ statement(accountCode: "{WALLET_U1}", from: "{text.strip()}", '
                      f'to: "2026-02-01T00:00:00Z") {{ closing {{ amount }} }} }}']:
            if text.strip() != text:
                continue
            error = refused_query(api, query)
            assert error["code"] == "BAD_USER_INPUT" and "DateTime" in error["message"], (query, error)
    for text in ["1970-01-01T00:00:00Z", "2026-01-31T09:30:00-12:00", "2026-01-31T09:30:00+14:00"]:
        posted = api.data(POST, transfer(idempotencyKey=f"t-{text}", effectiveAt=text), role="operator")
        assert posted["postTransaction"]["__typename"] == "PostedTransaction", (text, posted)
    for text in ["1970-01-01T00:00:00Z", "9998-12-31T23:59:59+14:00", "9998-12-31T11:59:59-12:00"]:
        assert api.data(f'{{ trialBalance(asOf: "{text}") {{ balanced }} }}')["trialBalance"]["balanced"] is True


def test_bank_statement_dates_at_the_ends_of_the_calendar_are_refused(api, conn):
    open_book(conn)
    imported = """mutation($input: ImportBankStatementInput!) { importBankStatement(input: $input) { __typename
      ... on LedgerError { code message } } }"""
    for day in ["0001-01-01", "9999-12-31", "1969-12-31"]:
        csv = f"date,reference,amount\n{day},r1,1.00\n"
        error = refused_query(api, imported, {"input": {"accountCode": BANK, "csv": csv}})
        assert error["code"] == "BANK_FILE_INVALID" and day in error["message"], (day, error)


def test_days_at_the_ends_of_the_calendar_are_refused_typed(api, conn):
    """A Date is YYYY-MM-DD from 1970-01-01 to 9998-12-31: 0001-01-01 starts in year 0 in UTC and
    the day after 9999-12-31 does not exist, so either once reached the business calendar as an
    overflow (INTERNAL, or HTTP 500 from a statement file). Week dates and the basic form, which
    Python's parser takes, are refused too."""
    open_book(conn)
    assert api.data('mutation { onboardSupplier(input: {supplierId: "S1"}) { __typename } }', role="admin")
    assert api.data('mutation { createFund(input: {fundId: "F1", name: "f"}) { __typename } }', role="admin")
    record = """mutation($input: RecordPurchaseInvoiceInput!) { recordPurchaseInvoice(input: $input) { __typename
      ... on LedgerError { code message } } }"""
    publish = """mutation($input: PublishFundIncomeInput!) { publishFundIncome(input: $input) { __typename
      ... on LedgerError { code message } } }"""
    before = transactions(conn)
    for day in ["0001-01-01", "9999-12-31", "1969-12-31", "2026-W01-1", "20260101", "2026-01-01\n", "2026-02-30"]:
        invoice = {"idempotencyKey": f"r-{day}", "supplierId": "S1", "invoiceNo": "I1", "amount": "1000",
                   "dueDate": "2026-12-31", "issuedOn": day}
        for query, variables, field in [(record, {"input": invoice}, "issuedOn"),
                                        (publish, {"input": {"fundId": "F1", "date": day, "incomePer10k": "1.5"}}, "date"),
                                        ("query($on: Date) { creditSettings(on: $on) { on } }", {"on": day}, "$on")]:
            error = refused_query(api, query, variables)
            assert error["code"] == "BAD_USER_INPUT" and "Date" in error["message"], (day, error)
            assert field in error["message"], (day, field, error)
    literal = refused_query(api, '{ creditSettings(on: "9999-12-31") { on } }')
    assert literal["code"] == "BAD_USER_INPUT" and "9998-12-31" in literal["message"], literal
    assert transactions(conn) == before
    assert conn.execute("select count(*) from ledger.fund_incomes").fetchone() == (0,)
    assert api.data('{ creditSettings(on: "9998-12-31") { on } }')["creditSettings"]["on"] == "9998-12-31"
    token = {"Authorization": f"Bearer {api.token()}"}
    for query, field in [("from=0001-01-01&to=2026-01-01", "from"), ("from=2026-01-01&to=9999-12-31", "to")]:
        for fmt in ("csv", "json", "pdf"):
            response = api.client.get(f"/statements/{BANK}.{fmt}?{query}", headers=token)
            assert response.status_code == 400, (query, response.status_code, response.text)
            assert response.json()["error"]["code"] == "VALIDATION" and response.json()["error"]["field"] == field


def test_statement_file_dates_are_taken_as_written(api, conn):
    """A date parameter of a statement file with a newline, a space or a sign around it is refused
    400 VALIDATION naming the parameter (it was stripped and accepted); the same date written
    plainly is served."""
    open_book(conn)
    token = {"Authorization": f"Bearer {api.token()}"}
    plain = {"from": "2026-01-01", "to": "2026-02-01", "knownAt": "2026-02-01T00:00:00+08:00"}
    for name in ("from", "to", "knownAt"):
        day = plain[name][:10]
        for bad in [f"{day}%0A", f"%20{day}", f"%2B{day}", f"{day}%20", f"%09{day}", f"{day}%0D%0A"]:
            query = "&".join(f"{key}={bad if key == name else value.replace('+', '%2B')}"
                             for key, value in plain.items())
            for fmt in ("csv", "json", "pdf"):
                response = api.client.get(f"/statements/{BANK}.{fmt}?{query}", headers=token)
                assert response.status_code == 400, (query, response.status_code, response.text)
                assert response.json()["error"]["code"] == "VALIDATION", (query, response.text)
                assert response.json()["error"]["field"] == name, (query, response.text)
    for fmt in ("csv", "json", "pdf"):
        response = api.client.get(f"/statements/{BANK}.{fmt}", params=plain, headers=token)
        assert response.status_code == 200, (fmt, response.text)


def test_the_core_bounds_times_the_same_way(conn):
    from datetime import datetime, timedelta, timezone

    from ledger.periods import close_period
    from ledger.posting import Leg, Side, Transfer, post_one

    open_book(conn)
    before = transactions(conn)
    for when in [datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
                 datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))),
                 datetime(1969, 12, 31, tzinfo=UTC),
                 datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=5, microseconds=500_000))),
                 datetime(2026, 1, 1)]:
        with pytest.raises(ValidationError) as refused:
            post_one(conn, Transfer("core-t", "wallet.top_up", [Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)],
                                    effective_at=when))
        assert refused.value.field == "effectiveAt"
        with pytest.raises(ValidationError):
            close_period(conn, when)
    assert transactions(conn) == before


def test_the_core_refuses_days_outside_the_range_without_overflowing():
    from datetime import date

    from ledger import calendar
    from ledger.instants import day_max, day_min

    for call in [lambda: calendar.day_start(date(1, 1, 1)), lambda: calendar.day_end(date(9999, 12, 31)),
                 lambda: calendar.day_bounds(date(1969, 12, 31)), lambda: calendar.days_bounds(day_min, date(9999, 12, 31))]:
        with pytest.raises(ValidationError):
            call()
    with pytest.raises(ValidationError) as refused:
        calendar.parse_instant("0001-01-01", field="from")
    assert refused.value.field == "from"
    start, end = calendar.days_bounds(day_min, day_max)
    assert start.date() == day_min and end.date() == date(9999, 1, 1)


def test_the_core_refuses_unstorable_text_itself(conn):
    from ledger.accounts import AccountType, NewAccount, create_account
    from ledger.posting import Leg, Side, Transfer, post_one

    open_book(conn)
    before = transactions(conn)
    for bad in ["\u0000", "\ud800"]:
        for account, field in [(NewAccount("assets:x", f"n{bad}", AccountType.ASSET, "CNY"), "name"),
                               (NewAccount("assets:x", "n", AccountType.ASSET, "CNY", holder_id=f"h{bad}"), "holderId")]:
            with pytest.raises(ValidationError) as refused:
                create_account(conn, account)
            assert refused.value.field == field
        for changes, field in [({"idempotency_key": f"k{bad}"}, "idempotencyKey"),
                               ({"description": f"d{bad}"}, "description"),
                               ({"metadata": {"note": f"m{bad}"}}, "input")]:
            request = Transfer(**{"idempotency_key": "k", "kind": "wallet.top_up", "legs": [
                Leg(BANK, Side.DEBIT, 1), Leg(WALLET_U1, Side.CREDIT, 1)], **changes})
            with pytest.raises(ValidationError) as refused:
                post_one(conn, request)
            assert refused.value.field == field, (changes, refused.value)
    assert transactions(conn) == before


# Patterns and amounts ----------------------------------------------------------------------------

def test_a_trailing_newline_is_not_accepted(api, conn):
    open_book(conn)
    for variables, code, field in [(transfer(entries=legs(amount="12\n")), "BAD_USER_INPUT", ""),
                                   (transfer(kind="wallet.top_up\n"), "VALIDATION", "kind"),
                                   (transfer(entries=legs(credit=f"{WALLET_U1}\n")), "ACCOUNT_NOT_FOUND", "")]:
        error = refused_post(api, conn, variables)
        assert error["code"] == code and error["field"] == field, (variables, error)
    assert "MinorUnits" in refused_post(api, conn, transfer(entries=legs(amount="12\n")))["message"]
    create = """mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename
      ... on LedgerError { code } ... on ValidationError { field } } }"""
    created = api.data(create, {"input": {"code": "liabilities:wallets:U9\n", "name": "n", "type": "LIABILITY"}})
    assert created["createAccount"] == {"__typename": "ValidationError", "code": "VALIDATION", "field": "code"}
    error = refused_query(api, create, {"input": {"code": "liabilities:wallets:U9", "name": "n", "type": "LIABILITY",
                                                  "minBalance": "0\n"}})
    assert error["code"] == "BAD_USER_INPUT" and "MinorUnits" in error["message"], error


def test_a_holder_id_holds_no_control_character_or_line_break(api, conn):
    """A holder id is an identifier: accounts and tokens carry it, and the command line prints it in
    tab-separated lines, where a line break would split one record into two."""
    open_book(conn)
    accounts_before = conn.execute("select count(*) from ledger.accounts").fetchone()[0]
    holder_tokens = "select count(*) from ledger.api_tokens where role = 'holder'"
    tokens_before = conn.execute(holder_tokens).fetchone()[0]
    create = """mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename
      ... on LedgerError { code message } ... on ValidationError { field } } }"""
    for bad in ["U9\n", "U\r9", "U\t9", "U9\u2028", "\u0085U9"]:
        created = api.data(create, {"input": {"code": "liabilities:wallets:U9", "name": "n", "type": "LIABILITY",
                                              "holderId": bad}})["createAccount"]
        assert created["__typename"] == "ValidationError" and created["field"] == "holderId", (bad, created)
        with pytest.raises(ValidationError) as refused:
            create_token(conn, "holder", bad)
        assert refused.value.field == "holder"
    assert conn.execute("select count(*) from ledger.accounts").fetchone()[0] == accounts_before
    assert conn.execute(holder_tokens).fetchone()[0] == tokens_before
    # An id of other scripts, with spaces, is still an id.
    assert create_token(conn, "holder", "张敏 U9").holder_id == "张敏 U9"


@pytest.mark.parametrize("bad", ["\u202e", "\u2066", "\u2028", "\n", "\t", "\u0085"])
def test_a_name_or_description_prints_as_written(api, conn, bad):
    """Names and descriptions are printed on statements, PDFs and the auditor's page: a direction
    override would make "Refund \u202eyap" read as "Refund pay", a line break would split a line."""
    open_book(conn)
    assert refused_post(api, conn, transfer(description=f"Refund {bad}yap"))["field"] == "description"
    create = """mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename
      ... on ValidationError { field } } }"""
    created = api.data(create, {"input": {"code": "liabilities:wallets:U9", "name": f"Wallet{bad}", "type": "LIABILITY"}})
    assert created["createAccount"] == {"__typename": "ValidationError", "field": "name"}
    fund = api.data("""mutation($input: CreateFundInput!) { createFund(input: $input) { __typename
      ... on ValidationError { field } } }""", {"input": {"fundId": "F9", "name": f"Fund{bad}"}})
    assert fund["createFund"] == {"__typename": "ValidationError", "field": "name"}
    assert conn.execute("select count(*) from ledger.accounts where code like '%U9' or code like '%F9%'").fetchone()[0] == 0


def test_names_in_any_script_are_labels(api, conn):
    """The label rule refuses only what does not print as written: scripts, spaces and the plain
    direction marks (U+200E, U+200F) of right-to-left text pass."""
    open_book(conn)
    create = """mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename } }"""
    for number, name in enumerate(["张敏的钱包", "محفظة\u200f أحمد", "Café Noël"]):
        created = api.data(create, {"input": {"code": f"liabilities:wallets:L{number}", "name": name,
                                              "type": "LIABILITY"}})
        assert created["createAccount"]["__typename"] == "AccountCreated", (name, created)


def test_the_core_refuses_a_trailing_newline_and_amounts_past_64_bits():
    from ledger.accounts import AccountType, NewAccount
    from ledger.money import parse_amount, parse_currency, parse_signed_amount

    for value in ["12\n", "9" * 20, "9" * 5000, str(2**63), "-" + str(2**63), "0100", "-0", "+1", "00"]:
        with pytest.raises(ValidationError):
            parse_signed_amount(value)
    with pytest.raises(ValidationError, match="out of range"):
        parse_signed_amount("9" * 20)
    assert parse_signed_amount("-100") == -100 and parse_signed_amount("0") == 0
    with pytest.raises(ValidationError):
        parse_amount(2**64)
    with pytest.raises(ValidationError):
        parse_currency("CNY\n")
    with pytest.raises(ValidationError) as refused:
        NewAccount(f"{WALLET_U1}\n", "n", AccountType.LIABILITY, "CNY").validated()
    assert refused.value.field == "code"
    assert parse_signed_amount(str(2**63 - 1)) == 2**63 - 1


def test_amounts_out_of_range_or_not_in_canonical_digits_are_refused(api, conn):
    open_book(conn)
    for amount in [str(2**63), "9" * 30, "-" + "9" * 19]:
        error = refused_post(api, conn, transfer(entries=legs(amount=amount)))
        assert "64 bits" in error["message"] or "MinorUnits" in error["message"], (amount, error)
    for amount in ["00000000000000000001", "0100", "+100", "-0"]:  # one spelling per amount: no leading zeros
        error = refused_post(api, conn, transfer(entries=legs(amount=amount)))
        assert error["code"] == "BAD_USER_INPUT" and "no leading zeros" in error["message"], (amount, error)
        assert "out of range" not in error["message"], (amount, error)
    error = refused_post(api, conn, transfer(entries=legs(amount="9" * 20)))
    assert "out of range" in error["message"], error
    limits = """mutation($input: CreateAccountInput!) { createAccount(input: $input) { __typename
      ... on AccountCreated { account { minBalance } } } }"""
    account = {"code": "liabilities:wallets:U9", "name": "n", "type": "LIABILITY"}
    for bad in ["-0", "-0100", "0100"]:
        error = refused_query(api, limits, {"input": {**account, "minBalance": bad}})
        assert error["code"] == "BAD_USER_INPUT" and "MinorUnits" in error["message"], (bad, error)
    created = api.data(limits, {"input": {**account, "minBalance": "-100"}})["createAccount"]  # a negative limit
    assert created["account"]["minBalance"] == "-100", created
    csv = "date,reference,amount_minor\n2026-01-01,r1," + "9" * 5000 + "\n"
    error = refused_query(api, "mutation($input: ImportBankStatementInput!) { importBankStatement(input: $input) { "
                               "__typename ... on LedgerError { code message } } }",
                          {"input": {"accountCode": BANK, "csv": csv}})
    assert error["code"] != "INTERNAL"


# Values the database refuses ---------------------------------------------------------------------

def test_every_data_error_of_the_database_is_a_validation_error(conn):
    statements = {
        "22001": "insert into too_long values ('abc')",
        "22003": "select 2147483647::int + 1",
        "22007": "select 'not a time'::timestamptz",
        "22008": "select '294277-01-01'::timestamptz",
        "22012": "select 1 / 0",
        "22P02": "select 'x'::int",
        "22P05": "select '\"\\u0000\"'::jsonb ->> 0",
        "22023": "select generate_series(1, 10, 0)",
        "22021": "select convert_from('\\xff'::bytea, 'UTF8')",
    }
    conn.execute("create temporary table too_long (v varchar(2))")
    for sqlstate, statement in statements.items():
        with pytest.raises(psycopg.Error) as raised:
            conn.execute(statement)
        assert raised.value.sqlstate.startswith("22"), (sqlstate, raised.value.sqlstate)
        error = translate(raised.value)
        assert isinstance(error, ValidationError), (sqlstate, raised.value)
        assert error.field and raised.value.diag.message_primary in error.message
    with pytest.raises(psycopg.DataError) as raised:
        conn.execute("select %s::text", ("a\x00",))
    assert isinstance(translate(raised.value), ValidationError)


def test_a_value_the_database_refuses_reaches_the_client_typed(api, conn, monkeypatch):
    from graphql_api.core import queries

    open_book(conn)

    def too_long(conn: psycopg.Connection[Any], *args: Any, **kwargs: Any) -> Any:
        conn.execute("create temporary table if not exists too_long (v varchar(2))")
        conn.execute("insert into too_long values ('abc')")

    monkeypatch.setattr(queries.core_balances, "rollup", too_long)
    error = refused_query(api, '{ rollup(prefix: "assets") { amount } }')
    assert error["code"] == "VALIDATION" and "too long" in error["message"], error


def test_a_subscription_sent_over_http_is_refused_for_the_websocket(api, conn):
    """Run as a query, a subscription's answer would be a stream: refused, not INTERNAL."""
    open_book(conn)
    found = refused_query(api, 'subscription { balanceChanged(accountCode: "liabilities:wallets:U1") '
                               "{ posted { amount } } }")
    assert found["code"] == "BAD_REQUEST" and "WebSocket" in found["message"]
    document = ('query Q { trialBalance { balanced } } '
                'subscription S { balanceChanged(accountCode: "x") { posted { amount } } }')
    named = refusal(send(api, json.dumps({"query": document, "operationName": "S"})))
    assert named["code"] == "BAD_REQUEST"
    # A query that merely mentions the word is answered.
    answered = send(api, json.dumps({"query": '{ account(code: "subscription") { code } }'}))
    assert answered.status_code == 200 and answered.json() == {"data": {"account": None}}


def test_a_document_of_several_operations_must_name_the_one_to_run(api, conn):
    """The GraphQL spec refuses to guess; strawberry alone would run the first operation."""
    open_book(conn)
    document = 'query A { trialBalance { balanced } } query B { account(code: "assets:x") { code } }'
    headers = {"Authorization": f"Bearer {api.token()}"}
    for response in (send(api, json.dumps({"query": document})),
                     api.client.get("/graphql", params={"query": document}, headers=headers)):
        refused = refusal(response)
        assert response.status_code == 400 and refused["code"] == "BAD_REQUEST", response.text
        assert "operationName" in refused["message"]
    named = send(api, json.dumps({"query": document, "operationName": "B"}))
    assert named.status_code == 200 and named.json() == {"data": {"account": None}}


def test_brackets_and_backslashes_inside_strings_are_only_text(api, conn):
    """The direct path counts brackets before walking a body for its depth, and looks for a \\u
    escape before walking it for unstorable strings: text that merely looks like either passes."""
    open_book(conn)
    description = "{[" * 100 + "\\u0000 is six characters here"
    body = api.data(POST, transfer(description=description, metadata={"note": "a\\ud800b", "k": "[" * 50}),
                    role="operator")["postTransaction"]
    assert body["__typename"] == "PostedTransaction"
    stored = conn.execute("select description, metadata->>'note' from ledger.transactions where idempotency_key = %s",
                          (transfer()["input"]["idempotencyKey"],)).fetchone()
    assert stored == (description, "a\\ud800b")


def test_totals_past_64_bits_are_refused_naming_them(api, conn):
    """Every amount fits in 64 bits, but a balance or running total past them was refused as 'a
    number is out of range: bigint out of range' on `amount`, and in a batch posted request by
    request it refused every request, the ones that fit alone too."""
    from book import WALLET_U2

    open_book(conn)
    half = str(2**62)
    batch = """mutation($input: PostTransactionsInput!) { postTransactions(input: $input) { __typename
      ... on TransactionsPosted { results { __typename ... on LedgerError { code message } } }
      ... on LedgerError { code message } } }"""
    two = [{"idempotencyKey": f"half-{n}", "kind": "wallet.top_up", "entries": legs(credit=WALLET_U2, amount=half)}
           for n in range(2)]
    results = api.data(batch, {"input": {"atomic": False, "transactions": two}})["postTransactions"]["results"]
    assert results[0]["__typename"] == "PostedTransaction", results
    assert results[1]["code"] == "VALIDATION" and "transactions[1]" in results[1]["message"], results
    assert "past 64 bits" in results[1]["message"], results
    top = str(2**63 - 1)  # the legs' sum on one account: past 64 bits though each amount fits
    for variables in [transfer(idempotencyKey="over-1", entries=legs(amount=half)),
                      transfer(idempotencyKey="over-2", entries=[*legs(amount=top), *legs(amount="1")])]:
        error = refused_post(api, conn, variables)
        assert error["code"] == "VALIDATION" and error["field"] == "entries", error
        assert "past 64 bits" in error["message"] and "bigint" not in error["message"], error
    refused = api.data(batch, {"input": {"atomic": True, "transactions": [
        {"idempotencyKey": "over-3", "kind": "wallet.top_up", "entries": legs(amount=half)}]}})["postTransactions"]
    assert refused["code"] in ("VALIDATION", "BATCH_REFUSED") and "past 64 bits" in refused["message"], refused
    assert transactions(conn) == 1
    # Not recorded under its key (a refusal that depends on the balances is not final): the key is free.
    again = api.data(POST, transfer(idempotencyKey="over-1"))["postTransaction"]
    assert again["__typename"] == "PostedTransaction", again
