"""A webhook receiver for tests: a real HTTP server on a local socket, in a thread, that can be
told to fail the next requests (an HTTP status, or hanging past the sender's timeout), be stopped
(the sender meets a refused connection) and started again on the same port. It checks every
request's signature as a receiver should (ledger/webhooks/signing.py) and keeps what it got.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ledger.webhooks.signing import SIGNATURE_HEADER, verify

__all__ = ["Receiver", "Received"]


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    signed: bool          # the signature verified, within the replay window
    answered: int | None  # the status it was answered with (None: it was left hanging)
    request_line: str

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


class Receiver:
    def __init__(self, secret: str, port: int = 0) -> None:
        self.secret = secret
        self.received: list[Received] = []
        self._plan: list[int | str] = []  # per coming request: a status to answer, or "hang"
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = port  # 0: any free port
        self.hang_s = 1.0
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/ledger?src=test"

    def fail_next(self, *plan: int | str) -> None:
        """The next requests are answered with these statuses ("hang": no answer for `hang_s`;
        "trickle": a 200 whose headers take `hang_s` to arrive, a byte every 50 ms)."""
        with self._lock:
            self._plan.extend(plan)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                signed = verify(receiver.secret, headers.get(SIGNATURE_HEADER.lower(), ""), body, now_s=time.time())
                with receiver._lock:
                    step = receiver._plan.pop(0) if receiver._plan else 204
                if step == "trickle":  # a status, then a header a byte at a time, each within the timeout
                    receiver._keep(Received(headers, body, signed, None, self.requestline))
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    for _ in range(int(receiver.hang_s / 0.05)):
                        self.wfile.write(b"a")
                        self.wfile.flush()
                        time.sleep(0.05)
                    self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")
                    return
                if step == "hang":
                    receiver._keep(Received(headers, body, signed, None, self.requestline))
                    time.sleep(receiver.hang_s)
                    return
                assert isinstance(step, int)
                receiver._keep(Received(headers, body, signed, step, self.requestline))
                self.send_response(step)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening: the sender's connections are refused until `start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def _keep(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def delivered(self) -> list[Received]:
        """The requests it answered 2xx, in the order they came."""
        with self._lock:
            return [r for r in self.received if r.answered is not None and 200 <= r.answered < 300]

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[Received]:
        """Wait until `count` requests were answered 2xx (a test's guard, not a measured time)."""
        deadline = time.monotonic() + timeout_s
        while len(self.delivered()) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.delivered()

    def wait_for_transactions(self, ids: list[int], timeout_s: float = 30.0) -> list[Received]:
        """Wait until each transaction in `ids` was answered 2xx at least once (a test's guard,
        not a measured time). Where an event may come twice (at least once: a restart that cuts
        off the record of an attempt sends it again), a count of requests would be met early by
        the repeat; the transactions themselves are what was waited for."""
        deadline = time.monotonic() + timeout_s
        while not set(ids) <= {r.event["data"]["id"] for r in self.delivered()} and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.delivered()
