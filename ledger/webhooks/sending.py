"""One HTTP POST of one event to one endpoint, with a timeout, to an address just checked.

The timeout bounds the whole exchange, from connecting to the answer's status and headers: a
socket timeout alone bounds only each read, and a receiver answering a byte at a time could
hold the worker for hours. At the deadline the socket is shut down under the request. The
answer's body is not read. Redirects are not followed (a 3xx is a failure, like any answer
outside 2xx): the endpoint's URL is the one the admin gave. Name resolution is not bounded by
the timeout (the system resolver's own limits apply).
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass

from ledger.webhooks.targets import Target, TargetRefused, resolve

__all__ = ["Outcome", "post"]

error_length_max = 1000
USER_AGENT = "ledger-core-webhooks/1"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address given, whatever the host name resolves to by then."""

    def __init__(self, address: str, host: str, port: int, timeout_s: float) -> None:
        super().__init__(host, port, timeout=timeout_s)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, address: str, host: str, port: int, timeout_s: float) -> None:
        super().__init__(host, port, timeout=timeout_s, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def _short(text: str) -> str:
    return text.replace("\x00", " ")[:error_length_max]


def post(target: Target, body: bytes, headers: dict[str, str], *, timeout_ms: int,
         allow_private_targets: bool) -> Outcome:
    started = time.monotonic()

    def outcome(delivered: bool, status: int | None, error: str | None) -> Outcome:
        return Outcome(delivered, status, None if error is None else _short(error),
                       int((time.monotonic() - started) * 1000))

    try:
        addresses = resolve(target, allow_private_targets=allow_private_targets)
    except TargetRefused as exc:
        return outcome(False, None, f"refused: {exc}")
    address = addresses[0][1]
    timeout_s = timeout_ms / 1000
    connection: http.client.HTTPConnection
    if target.scheme == "https":
        connection = _PinnedHTTPS(address, target.host, target.port, timeout_s)
    else:
        connection = _PinnedHTTP(address, target.host, target.port, timeout_s)
    expired = threading.Event()

    def cut_short() -> None:
        expired.set()
        sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    deadline = threading.Timer(timeout_s, cut_short)
    deadline.daemon = True
    deadline.start()
    try:
        connection.request("POST", target.path_and_query, body=body, headers={
            **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "Content-Length": str(len(body))})
        status = connection.getresponse().status
    except TimeoutError:
        return outcome(False, None, f"timed out after {timeout_ms} ms")
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if expired.is_set():
            return outcome(False, None, f"timed out after {timeout_ms} ms")
        return outcome(False, None, f"{type(exc).__name__}: {exc}")
    finally:
        deadline.cancel()
        connection.close()
    if expired.is_set():
        return outcome(False, None, f"timed out after {timeout_ms} ms")
    if 200 <= status < 300:
        return outcome(True, status, None)
    return outcome(False, status, f"HTTP {status}")
