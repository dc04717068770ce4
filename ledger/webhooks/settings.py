"""The settings of webhook delivery, from the environment (docs/operations.md, "Webhooks").

    LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS  1/true: endpoints may be on loopback, private, link-local
                                          or otherwise non-public addresses (default: refused)
    LEDGER_WEBHOOK_TIMEOUT_MS             one delivery as a whole, connecting to the answer's headers
                                          (default 10000)
    LEDGER_WEBHOOK_RETRY_BASE_MS          the first retry's delay; it doubles per failed attempt
                                          (default 1000)
    LEDGER_WEBHOOK_RETRY_MAX_MS           the longest delay between attempts (default 600000)
    LEDGER_WEBHOOK_POLL_MS                how often the worker looks for new transactions when it
                                          has nothing to send (default 1000)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ledger.errors import ValidationError

__all__ = ["WebhookSettings", "ALLOW_PRIVATE_TARGETS_ENV"]

ALLOW_PRIVATE_TARGETS_ENV = "LEDGER_WEBHOOK_ALLOW_PRIVATE_TARGETS"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class WebhookSettings:
    allow_private_targets: bool = False
    timeout_ms: int = 10_000
    retry_base_ms: int = 1_000
    retry_max_ms: int = 600_000
    poll_ms: int = 1_000
    batch_size: int = 100  # transactions read from the feed at a time, per endpoint

    def retry_delay_ms(self, failed_attempts: int) -> int:
        """The wait after the `failed_attempts`-th failure in a row: doubling, never past the maximum."""
        exponent = min(max(failed_attempts - 1, 0), 40)
        return int(min(self.retry_max_ms, self.retry_base_ms * 2**exponent))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebhookSettings:
        env = os.environ if env is None else env
        return cls(
            allow_private_targets=_flag(env, ALLOW_PRIVATE_TARGETS_ENV),
            timeout_ms=_millis(env, "LEDGER_WEBHOOK_TIMEOUT_MS", cls.timeout_ms, 100, 120_000),
            retry_base_ms=_millis(env, "LEDGER_WEBHOOK_RETRY_BASE_MS", cls.retry_base_ms, 1, 3_600_000),
            retry_max_ms=_millis(env, "LEDGER_WEBHOOK_RETRY_MAX_MS", cls.retry_max_ms, 1, 86_400_000),
            poll_ms=_millis(env, "LEDGER_WEBHOOK_POLL_MS", cls.poll_ms, 10, 600_000),
        )


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValidationError(f"{name} must be 1 or 0 (true or false), got {value[:20]!r}", field=name)


def _millis(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise ValidationError(f"{name} must be a whole number of milliseconds from {low} to {high}, "
                              f"got {text[:20]!r}", field=name)
    return int(text)
