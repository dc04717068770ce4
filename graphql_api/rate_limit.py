"""Per-token request rate limits: an in-process token bucket per API token.

Each token's bucket holds at most `burst` requests and refills at `per_s` requests a second; a
request finding it empty is refused with RATE_LIMITED and how long until one request is allowed
again. The buckets live in one server process: with `serve --workers N` each worker counts on
its own, so a token may get up to N times the rate in all.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger.errors import RateLimited

__all__ = ["TokenBuckets"]

buckets_max = 100_000  # beyond this many tokens seen, the oldest-refilled buckets are forgotten


@dataclass
class _Bucket:
    tokens: float
    refilled_at_s: float


@dataclass
class TokenBuckets:
    per_s: int = 50
    burst: int = 100
    # Seconds on a clock that never goes back; a test drives its own, so that what it checks does
    # not depend on how fast a loaded machine answers.
    clock_s: Callable[[], float] = time.monotonic
    _buckets: dict[int, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, token_id: int) -> None:
        """Spend one request of the token's allowance, or raise RateLimited."""
        now_s = self.clock_s()
        with self._lock:
            bucket = self._buckets.get(token_id)
            if bucket is None:
                if len(self._buckets) >= buckets_max:
                    self._buckets.clear()  # a full bucket for everyone: generous, never wrong
                bucket = self._buckets[token_id] = _Bucket(float(self.burst), now_s)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now_s - bucket.refilled_at_s) * self.per_s)
            bucket.refilled_at_s = now_s
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return
            retry_after_s = max(1, math.ceil((1.0 - bucket.tokens) / self.per_s)) if self.per_s > 0 else 60
        raise RateLimited(f"too many requests for this token (at most {self.per_s} a second, bursts of "
                          f"{self.burst}); retry after {retry_after_s} s", retry_after_s=retry_after_s)
