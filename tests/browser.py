"""What the browser tests share: a real `ledger-core serve` on a free loopback port, and Debian's
chromium (a system package, `./dev test` installs it) driven by Playwright, which never downloads
a browser of its own here. Without chromium the browser tests fail, never skip."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
CLI = [sys.executable, "-m", "ledger_cli.main"]


def require_chromium() -> None:
    if shutil.which("chromium") is None and not Path(CHROMIUM).exists():
        pytest.fail("chromium is not installed: run `apt-get update && apt-get install -y chromium` "
                    "(./dev test does this before the tests)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(db_url: str, log_path: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """A `ledger-core serve` on a free loopback port until the block ends; yields its base URL."""
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen([*CLI, "serve", "--port", str(port)],
                                  env={**os.environ, "DATABASE_URL": db_url, **(env or {})},
                                  stdout=subprocess.DEVNULL, stderr=log)
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
