"""The explorer page over HTTP: served without a token, loading nothing from elsewhere, and every
GraphQL operation it sends is one an auditor may run (and a holder may not sign in with)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

from book import BANK, WALLET_U1, open_book, top_up

from graphql_api.explorer import ASSETS_DIR, QUERIES
from ledger.fonts import LEDGER_KAI


def _page(api):
    response = api.client.get("/explorer")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    return response


def test_page_needs_no_token_and_loads_only_its_own_files(api):
    response = _page(api)
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    html = response.text
    assert '<meta name="business-time-zone" content="Asia/Shanghai">' in html
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(not re.match(r"[a-z]+:|//", url) for url in sources), sources
    for url in sources:
        asset = api.client.get(f"/{url}")
        assert asset.status_code == 200 and asset.content, url
    script = (ASSETS_DIR / "explorer.js").read_text()
    styles = (ASSETS_DIR / "explorer.css").read_text()
    assert not re.search(r"https?://", script + styles)
    assert "innerHTML" not in script          # server text goes into the page as text only
    font = api.client.get("/explorer-assets/LedgerKai-Regular.ttf")
    assert font.status_code == 200 and font.content == LEDGER_KAI.read_bytes()
    for hostile in ("/explorer-assets/../explorer.py", "/explorer-assets/..%2fexplorer.py", "/explorer-assets/%00",
                    "/explorer-assets/%ff", "/explorer-assets/explorer.js/..", "/explorer-assets/" + "a" * 5000):
        assert api.client.get(hostile).status_code == 404, hostile
    assert api.client.post("/explorer").status_code == 405
    assert api.client.get("/explorer?x=%00%ff").status_code == 200       # the page reads no parameter


def test_the_page_carries_exactly_the_queries_it_sends(api):
    embedded = re.search(r'<script id="queries" type="application/json">(.*?)</script>', _page(api).text, re.S)
    assert embedded and json.loads(embedded.group(1)) == QUERIES
    script = (ASSETS_DIR / "explorer.js").read_text()
    sent = set(re.findall(r'graphql\("(\w+)"', script))
    assert sent == set(QUERIES), sent ^ set(QUERIES)
    for name, document in QUERIES.items():
        assert re.match(rf"query {name}\b", document), name


def test_every_query_runs_for_an_auditor_and_sign_in_refuses_a_holder(api, conn):
    open_book(conn)
    top_up(conn, WALLET_U1, 1_234_567, "explorer:top-up")
    start, end = datetime(2020, 1, 1, tzinfo=UTC).isoformat(), datetime(2100, 1, 1, tzinfo=UTC).isoformat()
    variables = {
        "ExplorerSignIn": {}, "ExplorerAccounts": {"after": None},
        "ExplorerAccount": {"code": WALLET_U1, "asOf": "2099-12-31T15:59:59.999999Z"},
        "ExplorerStatement": {"code": WALLET_U1, "from": start, "to": end, "after": None, "knownAt": None},
        "ExplorerTrialBalance": {"asOf": None}, "ExplorerJournal": {"after": None},
    }
    assert set(variables) == set(QUERIES)
    answers = {name: api.data(QUERIES[name], variables[name], role="auditor") for name in QUERIES}
    assert answers["ExplorerAccount"]["account"]["now"]["posted"]["formatted"] == "12,345.67 CNY"
    lines = answers["ExplorerStatement"]["statement"]["entries"]["edges"]
    assert [edge["node"]["runningBalance"]["formatted"] for edge in lines] == ["12,345.67 CNY"]
    assert {line["accountCode"] for line in answers["ExplorerTrialBalance"]["trialBalance"]["lines"]} >= {BANK, WALLET_U1}
    assert answers["ExplorerJournal"]["journal"]["edges"][0]["node"]["entries"]
    refused = api.errors(QUERIES["ExplorerSignIn"], {}, role="holder", holder="U1")
    assert refused[0]["extensions"]["code"] == "FORBIDDEN"
