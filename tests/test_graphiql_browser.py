"""GraphiQL in a real browser, on a machine with no internet: Debian's chromium, driven by
Playwright, loads the page from a real `ledger-core serve`, puts a token in the headers editor,
runs a balance query and sees the answer; every request it made went to this server.

chromium is a system package (`apt-get install -y chromium`; .ci/run installs it): this test
fails, never skips, without it. Playwright's own browser download is never used.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from book import WALLET_U1, open_book, top_up
from ledger.tokens import create_token

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(__file__).parent / "screenshots"  # gitignored
CLI = [sys.executable, "-m", "ledger_cli.main"]


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(db_url: str) -> Iterator[str]:
    """A `ledger-core serve` on a free loopback port; yields its base URL."""
    port = free_port()
    server = subprocess.Popen([*CLI, "serve", "--port", str(port)], env={**os.environ, "DATABASE_URL": db_url},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _set_editor(page: object, selector: str, text: str) -> None:
    # GraphiQL's editors are CodeMirror 5 instances, reachable from their element.
    page.evaluate("([s, t]) => document.querySelector(s).CodeMirror.setValue(t)", [selector, text])  # type: ignore[attr-defined]


@pytest.mark.timeout(180)
def test_graphiql_runs_a_query_with_assets_from_the_app_only(db_url, conn, served, tmp_path):
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `apt-get update && apt-get install -y chromium` "
                    "(.ci/run does this before the tests)")
    from playwright.sync_api import sync_playwright

    open_book(conn)
    top_up(conn, WALLET_U1, 12_345, "browser:top-up")
    token = create_token(conn, "admin").token

    requested: list[str] = []
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.goto(f"{served}/graphql")
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=60_000)
            page.get_by_role("button", name="Headers").click()
            _set_editor(page, ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror",
                        f'{{"Authorization": "Bearer {token}"}}')
            _set_editor(page, ".graphiql-query-editor .CodeMirror",
                        f'{{ account(code: "{WALLET_U1}") {{ balance {{ available {{ formatted }} }} }} }}')
            page.click(".graphiql-execute-button")
            page.wait_for_function(
                "() => (document.querySelector('.graphiql-response') || {}).innerText?.includes('123.45 CNY')",
                timeout=30_000)
            answer = page.inner_text(".graphiql-response")
            page.screenshot(path=str(SCREENSHOTS / "graphiql.png"))
        finally:
            browser.close()

    assert "123.45 CNY" in answer and "errors" not in answer
    assert requested, "the browser made no request"
    strays = [url for url in requested
              if not (url.startswith("http://127.0.0.1:") or url.startswith("ws://127.0.0.1:") or url.startswith("data:"))]
    assert strays == [], f"requests left the machine: {strays}"
    assert any("/graphiql-assets/graphiql.min.js" in url for url in requested)
