"""One caller's list of requests posted through the engine's batch path, in two ways:

- `post_all`: all or nothing, in one database transaction. A refusal is a `BatchRefused` naming
  the index (0-based, in the caller's list) of the request at fault and that request's own error;
  nothing is written, not even the refusal under its key (ledger.refusals), so every key of a
  refused batch stays as it was.
- `post_each`: every request gets its own result or its own error, in order; refusals are final
  for their keys exactly as for a request posted alone.

Idempotency keys behave as if the requests were sent one after another: a key that appears again
later in the same list is answered by the engine as a later request with that key would be (the
same request is a replay of the first, a different one an IdempotencyConflict). The engine takes
each key once per call, so the list is posted in waves: first every key's first occurrence, then
every key's second, and so on (one wave, one round trip, in the usual case of distinct keys).

Each request is checked and encoded on its own first (`ledger.posting.encode`), so a malformed one
is named by its index without a round trip. The engine names the first request a batch is refused
for; `post_each` gives that one its error and posts the rest again, like the gathered path
(ledger/gather.py). That is one round trip per refusal over what is left, so past
`refusals_before_chunks` refusals the rest goes in chunks of `chunk_size`, which bounds a list
of many refusals to about one round trip per request. A refusal that names no request (a lock
or statement timeout, a lost connection) is every unposted request's answer: nothing of them was
written and each may be sent again.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ledger.errors import LedgerError, TotalsPast64Bits
from ledger.posting import Posted, Request, encode, post_encoded, retries_max

__all__ = ["BatchRefused", "post_all", "post_each", "refusals_before_chunks", "chunk_size"]

refusals_before_chunks = 8
chunk_size = 50
_POSITION = re.compile(r"^request \d+( leg \d+)?:?\s*")


class BatchRefused(LedgerError):
    """An all-or-nothing batch was refused because of one request: `index` (0-based) names it,
    `error` is its own error. Nothing was written."""

    code = "BATCH_REFUSED"

    def __init__(self, index: int, error: LedgerError) -> None:
        super().__init__(f"nothing was posted: {error.message}", index=index, error_code=error.code)
        self.index = index
        self.error = error
        self.retryable = error.retryable  # type: ignore[misc]


def at_index(error: LedgerError, index: int) -> LedgerError:
    """The error, its message and details speaking of the request's index in the caller's list
    (the engine's own "request N" counts from 1 within one round trip)."""
    match = _POSITION.match(error.message)
    leg = match.group(1) if match and match.group(1) else ""
    rest = error.message[match.end():] if match else error.message
    error.message = f"transactions[{index}]{leg}: {rest}"
    error.args = (error.message,)
    error.details = {**{k: v for k, v in error.details.items() if k != "request"}, "index": index}
    return error


def _waves(keys: Sequence[str]) -> list[list[int]]:
    """Indexes by occurrence: every key's first, then every key's second, ..."""
    seen: dict[str, int] = {}
    waves: list[list[int]] = []
    for index, key in enumerate(keys):
        rank = seen.get(key, 0)
        seen[key] = rank + 1
        if rank == len(waves):
            waves.append([])
        waves[rank].append(index)
    return waves


def _culprit(error: LedgerError, members: Sequence[int]) -> int | None:
    """Which of `members` (the indexes one round trip posted, in order) the error names."""
    position = error.details.get("request")
    if isinstance(position, int) and 1 <= position <= len(members):
        return members[position - 1]
    return members[0] if len(members) == 1 else None


def post_all(conn: psycopg.Connection[Any], requests: Sequence[Request]) -> list[Posted]:
    """All or nothing; one result per request, in order; BatchRefused names the request at fault.
    An error naming no request (a timeout, a lost connection) is raised as it is."""
    encoded: list[dict[str, Any]] = []
    for index, request in enumerate(requests):
        try:
            encoded.append(encode(request))
        except LedgerError as exc:
            raise BatchRefused(index, at_index(exc, index)) from exc
    waves = _waves([body["key"] for body in encoded])
    standalone = conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if len(waves) == 1 and standalone:
        return _post_wave(conn, encoded, waves[0], [None] * len(encoded))  # one statement, its own retries
    for attempt in range(retries_max + 1):
        results: list[Posted | None] = [None] * len(encoded)
        try:
            with conn.transaction():
                for wave in waves:
                    _post_wave(conn, encoded, wave, results)
            return results  # type: ignore[return-value]
        except (pg_errors.SerializationFailure, pg_errors.DeadlockDetected):
            if not standalone or attempt == retries_max:
                raise
    raise AssertionError("unreachable")


def _post_wave(conn: psycopg.Connection[Any], encoded: Sequence[dict[str, Any]], wave: Sequence[int],
               results: list[Posted | None]) -> list[Posted]:
    try:
        posted = post_encoded(conn, [encoded[i] for i in wave], record_refusal=False)
    except LedgerError as exc:
        index = _culprit(exc, wave)
        if index is None:
            raise
        raise BatchRefused(index, at_index(exc, index)) from exc
    for index, one in zip(wave, posted, strict=True):
        results[index] = one
    return posted


def post_each(conn: psycopg.Connection[Any], requests: Sequence[Request]) -> list[Posted | LedgerError]:
    """Each request on its own: one result or error per request, in order."""
    outcomes: list[Posted | LedgerError | None] = [None] * len(requests)
    encoded: dict[int, dict[str, Any]] = {}
    for index, request in enumerate(requests):
        try:
            encoded[index] = encode(request)
        except LedgerError as exc:
            outcomes[index] = at_index(exc, index)
    for wave in _waves_of(encoded):
        _post_each_wave(conn, encoded, wave, outcomes)
    assert all(outcome is not None for outcome in outcomes)
    return outcomes  # type: ignore[return-value]


def _waves_of(encoded: dict[int, dict[str, Any]]) -> list[list[int]]:
    indexes = sorted(encoded)
    return [[indexes[i] for i in wave] for wave in _waves([encoded[i]["key"] for i in indexes])]


def _post_each_wave(conn: psycopg.Connection[Any], encoded: dict[int, dict[str, Any]], wave: list[int],
                    outcomes: list[Posted | LedgerError | None]) -> None:
    refusals = 0
    groups = [wave]
    while groups:
        pending = groups.pop(0)
        try:
            for index, posted in zip(pending, post_encoded(conn, [encoded[i] for i in pending]), strict=True):
                outcomes[index] = posted
            continue
        except LedgerError as exc:
            culprit = _culprit(exc, pending)
            if culprit is None and isinstance(exc, TotalsPast64Bits):
                # Only the sum overflows, not the request at fault: halves until one is alone.
                half = len(pending) // 2
                groups[:0] = [pending[:half], pending[half:]]
                continue
            if culprit is None:
                for index in [*pending, *(i for group in groups for i in group)]:
                    outcomes[index] = at_index(_copy(exc), index)
                return
            outcomes[culprit] = at_index(exc, culprit)
            rest = [index for index in pending if index != culprit]
        refusals += 1
        if refusals == refusals_before_chunks:
            rest = [index for group in [rest, *groups] for index in group]
            groups = [rest[i:i + chunk_size] for i in range(0, len(rest), chunk_size)]
        elif rest:
            groups.insert(0, rest)


def _copy(error: LedgerError) -> LedgerError:
    """A fresh error of the same kind for each request one refusal answers."""
    copy = type(error).__new__(type(error))
    copy.__dict__.update(error.__dict__)
    copy.details = dict(error.details)
    copy.args = error.args
    return copy
