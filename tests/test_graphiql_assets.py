"""GraphiQL's files are the pinned ones the README names, served by the app with long cache
headers; the page a browser gets names no other host and needs no token."""

from __future__ import annotations

import hashlib
import re

from graphql_api.graphiql import ASSET_VERSIONS, ASSETS_DIR


def test_assets_match_the_readme_checksums_and_versions():
    readme = (ASSETS_DIR / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)`[^|]*\| `([^`]+)` \| ([^ ]+) \| [^|]+\| `([0-9a-f]{64})` \|$", readme, re.M)
    assert {row[0] for row in rows} == {p.name for p in ASSETS_DIR.iterdir() if p.suffix in (".js", ".css")}
    for file_name, package, version, sha256 in rows:
        assert hashlib.sha256((ASSETS_DIR / file_name).read_bytes()).hexdigest() == sha256, file_name
        assert ASSET_VERSIONS[package] == version


def test_page_without_a_token_loads_only_local_assets(api):
    page = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(sources) == 4 and all(s.startswith("graphiql-assets/") for s in sources)
    assert "http://" not in page.text and "https://" not in page.text
    for source in sources:
        asset = api.client.get("/" + source)
        assert asset.status_code == 200 and len(asset.content) > 1000
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    # The endpoint itself still wants the token.
    assert api.client.post("/graphql", json={"query": "{ trialBalance { balanced } }"}).status_code == 401
