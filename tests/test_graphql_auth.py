"""Bearer tokens and roles at every boundary: 401 without a valid token; holders see only their
own accounts (others behave as if they did not exist); auditors read but do not post;
operators post; admins also create accounts and close periods (see test_graphql_mutations)."""

from __future__ import annotations

from book import BANK, MERCHANT_M1, WALLET_U1, WALLET_U2, open_book, spend, top_up

from ledger.posting import post
from ledger.tokens import revoke_token

QUERY = '{ account(code: "liabilities:wallets:U1") { code } }'


def test_no_token_bad_token_and_revoked_token_get_401(api, conn):
    open_book(conn)
    assert api.http(QUERY, token="").status_code == 401
    response = api.http(QUERY, token="lct_not-a-real-token")
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    other_scheme = api.client.post("/graphql", json={"query": QUERY}, headers={"Authorization": "Basic abc"})
    assert other_scheme.status_code == 401
    token = api.token("auditor")
    revoke_token(conn, token, reason="leaked")
    assert api.http(QUERY, token=token).status_code == 401
    assert api.http(QUERY, role="operator").status_code == 200


def test_graphiql_page_and_healthz_need_no_token(api):
    page = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    assert api.client.get("/graphql?query={__typename}").status_code == 401
    assert api.client.get("/healthz").json() == {"status": "ok"}


def test_holder_sees_only_its_own_accounts(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 1000, "u1")
    top_up(conn, WALLET_U2, 2000, "u2")
    mine = api.data('{ account(code: "liabilities:wallets:U1") { code balance { posted { amount } } } }',
                    role="holder", holder="U1")
    assert mine["account"] == {"code": WALLET_U1, "balance": {"posted": {"amount": "1000"}}}
    other = api.data('{ account(code: "liabilities:wallets:U2") { code } }', role="holder", holder="U1")
    assert other["account"] is None
    platform = api.data('{ account(code: "assets:bank:icbc") { code } }', role="holder", holder="U1")
    assert platform["account"] is None
    listed = api.data("{ accounts { edges { node { code } } } }", role="holder", holder="U1")["accounts"]["edges"]
    assert [e["node"]["code"] for e in listed] == [WALLET_U1]
    assert api.data('{ accounts(holderId: "U2") { edges { node { code } } } }', role="holder",
                    holder="U1")["accounts"]["edges"] == []
    statement = api.errors("""{ statement(accountCode: "liabilities:wallets:U2", from: "2020-01-01T00:00:00Z",
        to: "2030-01-01T00:00:00Z") { closing { amount } } }""", role="holder", holder="U1")
    assert statement[0]["extensions"]["code"] == "ACCOUNT_NOT_FOUND"


def test_holder_sees_only_its_legs_of_a_transaction(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 1000, "u1")
    (paid,) = post(conn, [spend(WALLET_U1, 300, "pay")])
    u2_tx = top_up(conn, WALLET_U2, 1000, "u2")
    query = """query($id: ID!) { transaction(id: $id) { id entries { account { code } amount { amount } } } }"""
    as_payer = api.data(query, {"id": str(paid.transaction_id)}, role="holder", holder="U1")["transaction"]
    assert [e["account"]["code"] for e in as_payer["entries"]] == [WALLET_U1]
    as_merchant = api.data(query, {"id": str(paid.transaction_id)}, role="holder", holder="M1")["transaction"]
    assert [e["account"]["code"] for e in as_merchant["entries"]] == [MERCHANT_M1]
    assert api.data(query, {"id": str(u2_tx)}, role="holder", holder="U1")["transaction"] is None
    everything = api.data(query, {"id": str(paid.transaction_id)}, role="auditor")["transaction"]
    assert len(everything["entries"]) == 2
    entries = api.data("""{ account(code: "liabilities:wallets:U1") { entries { edges { node {
        transaction { entries { account { code } } } } } } } }""", role="holder", holder="U1")
    codes = {e["account"]["code"] for edge in entries["account"]["entries"]["edges"]
             for e in edge["node"]["transaction"]["entries"]}
    assert codes == {WALLET_U1}


def test_holder_and_trial_balance_rollup(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 700, "t")
    for query, expected in (("{ trialBalance { balanced } }", {"trialBalance": {"balanced": True}}),
                            ('{ rollup(prefix: "liabilities") { amount } }', {"rollup": [{"amount": "700"}]})):
        errors = api.errors(query, role="holder", holder="U1")
        assert errors[0]["extensions"]["code"] == "FORBIDDEN"
        for role in ("auditor", "operator"):
            assert api.data(query, role=role) == expected


def test_auditor_reads_everything(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U2, 2000, "u2")
    data = api.data('{ account(code: "liabilities:wallets:U2") { balance { posted { amount } } } }', role="auditor")
    assert data["account"]["balance"]["posted"]["amount"] == "2000"
    assert BANK in {e["node"]["code"] for e in api.data("{ accounts { edges { node { code } } } }",
                                                         role="auditor")["accounts"]["edges"]}
