"""The signature on every delivery, and how a receiver checks it.

Each request carries

    Ledger-Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>

where the HMAC is keyed with the endpoint's secret (its UTF-8 bytes) over the bytes
`<t>.<body>`: the timestamp as written, a full stop, the request body exactly as received. A
receiver recomputes it, compares in constant time, and refuses a timestamp further than its
replay window (`replay_window_s`, five minutes) from its own clock; the event's `id` (also in
`Ledger-Webhook-Id`) lets it drop the duplicates that at-least-once delivery brings. Retries are
signed afresh, with the time of the retry.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["SIGNATURE_HEADER", "replay_window_s", "sign", "signature_header", "verify"]

SIGNATURE_HEADER = "Ledger-Webhook-Signature"
replay_window_s = 300
_HEADER = re.compile(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})")


def sign(secret: str, timestamp_s: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under the secret."""
    message = str(timestamp_s).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp_s: int, body: bytes) -> str:
    return f"t={timestamp_s},v1={sign(secret, timestamp_s, body)}"


def verify(secret: str, header: str, body: bytes, *, now_s: float, window_s: int = replay_window_s) -> bool:
    """What a receiver does: the header is well formed, its signature matches the body, and its
    timestamp lies within the replay window of the receiver's clock."""
    found = _HEADER.fullmatch(header.strip())
    if found is None:
        return False
    timestamp_s = int(found.group(1))
    if abs(now_s - timestamp_s) > window_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp_s, body), found.group(2))
