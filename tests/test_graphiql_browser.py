"""GraphiQL in a real browser, on a machine with no internet: Debian's chromium, driven by
Playwright, loads the page from a real `ledger-core serve`, puts a token in the headers editor,
runs a balance query and sees the answer, then a balanceChanged subscription (over the page's
WebSocket) and sees a top-up pushed; every request it made went to this server.

chromium is a system package (`apt-get install -y chromium`; ./dev test installs it): this test
fails, never skips, without it. Playwright's own browser download is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from book import WALLET_U1, open_book, top_up
from browser import CHROMIUM, CHROMIUM_ARGS, require_chromium, serving

from ledger.tokens import create_token

SCREENSHOTS = Path(__file__).parent / "screenshots"  # gitignored


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A `ledger-core serve` on a free loopback port; yields its base URL (its log: tmp_path/serve.log)."""
    with serving(db_url, tmp_path / "serve.log") as base:
        yield base


def _set_editor(page: object, selector: str, text: str) -> None:
    # GraphiQL's editors are CodeMirror 5 instances, reachable from their element.
    page.evaluate("([s, t]) => document.querySelector(s).CodeMirror.setValue(t)", [selector, text])  # type: ignore[attr-defined]


@pytest.mark.timeout(180)
def test_graphiql_runs_a_query_with_assets_from_the_app_only(db_url, conn, served, tmp_path):
    require_chromium()
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
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

            # A subscription over the page's WebSocket (graphql-transport-ws, the token from the
            # headers editor in connection_init): a top-up is pushed to the result pane.
            sockets: list[str] = []
            page.on("websocket", lambda socket: sockets.append(socket.url))
            _set_editor(page, ".graphiql-query-editor .CodeMirror",
                        f'subscription {{ balanceChanged(accountCode: "{WALLET_U1}") {{ available {{ formatted }} }} }}')
            # GraphiQL tells a subscription from a query by the editor's parsed document, which it
            # updates a moment after a change (a person typing never outruns it).
            page.wait_for_timeout(1_500)
            page.click(".graphiql-execute-button")
            pushed = False
            for attempt in range(20):  # until the subscription is listening
                top_up(conn, WALLET_U1, 100, f"browser:push-{attempt}")
                try:
                    page.wait_for_function(
                        "() => /12[4-9]\\.45 CNY|13\\d\\.45 CNY|14[0-3]\\.45 CNY/.test("
                        "(document.querySelector('.graphiql-response') || {}).innerText || '')", timeout=1_000)
                    pushed = True
                    break
                except PlaywrightTimeout:
                    continue
            pushed_text = page.inner_text(".graphiql-response")
            page.screenshot(path=str(SCREENSHOTS / "graphiql-subscription.png"))
        finally:
            browser.close()

    assert "123.45 CNY" in answer and "errors" not in answer
    assert pushed, f"no balance was pushed to the page: {pushed_text}\n{(tmp_path / 'serve.log').read_text()}"
    assert sockets and all(url.startswith("ws://127.0.0.1:") for url in sockets)
    assert requested, "the browser made no request"
    strays = [url for url in requested
              if not (url.startswith("http://127.0.0.1:") or url.startswith("ws://127.0.0.1:") or url.startswith("data:"))]
    assert strays == [], f"requests left the machine: {strays}"
    assert any("/graphiql-assets/graphiql.min.js" in url for url in requested)
