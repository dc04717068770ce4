"""GraphiQL from the app itself: the page a browser gets for `GET /graphql`, and its assets.

Strawberry's own page loads GraphiQL from a CDN, which a network with no internet never
reaches (the browser shows "Loading..." for ever). This page loads only the files committed
under `graphql_api/static/graphiql/` (their packages, versions and checksums are in the README
there), mounted at `/graphiql-assets`. The asset URLs carry the versions, so the files can be
cached for a year: an upgrade changes the URLs.

The page needs no token (it holds no data); the token goes in its headers editor as
`{"Authorization": "Bearer <token>"}`, and is sent with every query and, for subscriptions, as
the WebSocket's connection_init payload (which the app reads the token from).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["ASSETS_DIR", "ASSETS_PATH", "ASSET_VERSIONS", "assets_mount", "graphiql_page"]

ASSETS_DIR: Final = Path(__file__).parent / "static" / "graphiql"
ASSETS_PATH: Final = "/graphiql-assets"
# npm package -> version of the files in ASSETS_DIR (the README there says which file is whose).
ASSET_VERSIONS: Final = {"graphiql": "3.8.3", "react": "18.3.1", "react-dom": "18.3.1"}
asset_cache_s = 365 * 24 * 3600

# The browser may load nothing from anywhere but this server (inline script and styles are the
# page's own; fonts and icons are data: URLs inside graphiql.min.css).
_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'"
)


class _ImmutableFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = f"public, max-age={asset_cache_s}, immutable"
        return response


def assets_mount() -> Mount:
    return Mount(ASSETS_PATH, app=_ImmutableFiles(directory=ASSETS_DIR), name="graphiql-assets")


def _asset(file_name: str, package: str) -> str:
    # Relative to /graphql, so the page also works when the app is mounted under a prefix.
    return f"{ASSETS_PATH.lstrip('/')}/{file_name}?v={package}-{ASSET_VERSIONS[package]}"


def graphiql_page() -> HTMLResponse:
    html = _PAGE.format(
        css=_asset("graphiql.min.css", "graphiql"),
        react=_asset("react.production.min.js", "react"),
        react_dom=_asset("react-dom.production.min.js", "react-dom"),
        graphiql=_asset("graphiql.min.js", "graphiql"),
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": _CONTENT_SECURITY_POLICY,
                                       "Cache-Control": "no-cache"})


_PAGE: Final = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>ledger-core GraphiQL</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="{css}">
  <style>html, body, #graphiql {{ height: 100%; margin: 0; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script src="{react}"></script>
  <script src="{react_dom}"></script>
  <script src="{graphiql}"></script>
  <script>
    const url = window.location.origin + window.location.pathname;
    // Subscriptions go over a WebSocket on the same path; GraphiQL sends the headers editor's
    // contents (the Authorization) as its connection_init payload.
    const fetcher = GraphiQL.createFetcher({{ url, subscriptionUrl: url.replace(/^http/, "ws") }});
    ReactDOM.createRoot(document.getElementById("graphiql")).render(
      React.createElement(GraphiQL, {{
        fetcher,
        defaultHeaders: '{{\\n  "Authorization": "Bearer <token>"\\n}}',
        defaultEditorToolsVisibility: "headers",
        shouldPersistHeaders: false,
      }}),
    );
  </script>
</body>
</html>
"""
