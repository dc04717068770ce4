"""The auditor's page at `GET /explorer`: plain HTML, JavaScript and CSS served by this app, with
nothing from a CDN (the files are under `graphql_api/static/explorer/`, the one font is the
project's own, ledger/fonts/).

The page holds no data and is served without a token. The auditor signs in with a bearer token,
which the page keeps in the tab's sessionStorage (gone when the tab closes) and sends as
`Authorization: Bearer` with every GraphQL query and file download. It reads only through the
GraphQL operations in `QUERIES` (each one an auditor may run; tests/test_explorer.py runs them
all with an auditor token) and the statement export routes (graphql_api/audit/routes.py).

The business time zone (ledger/calendar.py) goes into the page, so the dates a person types are
business days and the times shown are wall-clock times there, as in the statement files.
"""

from __future__ import annotations

import hashlib
import html
import json
from pathlib import Path
from typing import Final

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ledger import calendar
from ledger.fonts import LEDGER_KAI

__all__ = ["EXPLORER_ROUTES", "QUERIES", "ASSETS_DIR", "statement_page_size"]

ASSETS_DIR: Final = Path(__file__).parent / "static" / "explorer"
# The page, with {placeholders} for str.format (its literal braces doubled).
_PAGE: Final = (Path(__file__).parent / "templates" / "explorer.html").read_text(encoding="utf-8")
_ASSETS_PATH: Final = "/explorer-assets"
statement_page_size = 25
journal_page_size = 20
accounts_page_size = 500

_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; font-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# Every GraphQL operation the page sends, by operation name; the page sends nothing else.
QUERIES: Final[dict[str, str]] = {
    # journal(first: 0) reads nothing but needs a reader's role: a token that passes may use the page.
    "ExplorerSignIn": "query ExplorerSignIn { journal(first: 0) { pageInfo { hasNextPage } } }",
    "ExplorerAccounts": f"""query ExplorerAccounts($after: String) {{
  accounts(first: {accounts_page_size}, after: $after) {{
    edges {{ node {{ code name currency }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}""",
    "ExplorerAccount": """query ExplorerAccount($code: String!, $asOf: DateTime) {
  account(code: $code) {
    code name type currency normalSide holderId status
    now: balance { posted { formatted } pending { formatted } available { formatted } }
    asOf: balance(asOf: $asOf) { posted { formatted } }
  }
}""",
    "ExplorerStatement": f"""query ExplorerStatement($code: String!, $from: DateTime!, $to: DateTime!,
                         $after: String, $knownAt: DateTime) {{
  statement(accountCode: $code, from: $from, to: $to, first: {statement_page_size}, after: $after,
            knownAt: $knownAt) {{
    knownAt
    opening {{ formatted }} closing {{ formatted }}
    totalDebits {{ formatted }} totalCredits {{ formatted }}
    entries {{
      edges {{ cursor node {{
        runningBalance {{ formatted }}
        entry {{ side amount {{ formatted }} effectiveAt transaction {{ id kind description }} }}
      }} }}
      pageInfo {{ hasNextPage endCursor }}
    }}
  }}
}}""",
    "ExplorerTrialBalance": """query ExplorerTrialBalance($asOf: DateTime) {
  trialBalance(asOf: $asOf) {
    asOf balanced
    lines { accountCode account { name } debit { amount formatted } credit { amount formatted } }
    totals { currency debits { formatted } credits { formatted } balanced }
  }
}""",
    "ExplorerJournal": f"""query ExplorerJournal($after: String) {{
  journal(first: {journal_page_size}, after: $after) {{
    edges {{ cursor node {{
      id kind description effectiveAt recordedAt
      entries {{ side amount {{ formatted }} account {{ code name }} }}
    }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}""",
}


def _version(path: Path) -> str:
    # In the asset URLs, so a browser never runs a new page against an old script.
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


async def explorer_page(request: Request) -> Response:
    page = _PAGE.format(
        zone=html.escape(calendar.business_time_zone().key),
        # Script text is not HTML-decoded: only "</" could end it early.
        queries=json.dumps(QUERIES).replace("</", "<\\/"),
        css=f"{_ASSETS_PATH.lstrip('/')}/explorer.css?v={_version(ASSETS_DIR / 'explorer.css')}",
        js=f"{_ASSETS_PATH.lstrip('/')}/explorer.js?v={_version(ASSETS_DIR / 'explorer.js')}",
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": _CONTENT_SECURITY_POLICY,
                                       "Cache-Control": "no-cache", "Referrer-Policy": "no-referrer"})


async def explorer_font(request: Request) -> Response:
    return FileResponse(LEDGER_KAI, media_type="font/ttf", headers={"Cache-Control": "public, max-age=86400"})


EXPLORER_ROUTES: list[BaseRoute] = [
    Route("/explorer", explorer_page, methods=["GET"]),
    Route(f"{_ASSETS_PATH}/LedgerKai-Regular.ttf", explorer_font, methods=["GET"]),
    Mount(_ASSETS_PATH, app=StaticFiles(directory=ASSETS_DIR), name="explorer-assets"),
]
