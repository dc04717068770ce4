"""Gathering concurrent posting mutations into one `post()` batch.

Each mutation hands its request to the app's `PostGatherer` and awaits its own result. While
`inflight_max` batches are at the database, new requests queue; the next batch takes all queued
(up to `batch_size_max`), so under load many mutations share one round trip and one commit,
and alone a mutation goes straight through.

A batch is all or nothing, so one bad request would fail the others: `ledger.gather.post_gathered`
gives the culprit its error and posts the rest again (one by one when the culprit is unknown).
Two requests with the same idempotency key never share a batch (the second waits for the next),
so a client's retry racing its original is a replay, not a conflict inside one batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import psycopg

from graphql_api.context import AppState
from graphql_api.metrics import metrics_of
from ledger.gather import post_gathered
from ledger.journal import Transaction, get_transactions
from ledger.posting import Request

__all__ = ["Posted", "PostGatherer", "gatherer_of", "batch_size_max", "inflight_max"]

batch_size_max = 200
inflight_max = 2  # batches at the database at once; more mostly contend on the same account locks


@dataclass(frozen=True)
class Posted:
    """The core's result, with the transaction row read in the same trip."""

    transaction_id: int
    replayed: bool
    transaction: Transaction | None = None


class PostGatherer:
    def __init__(self, state: AppState) -> None:
        self._state = state
        self._queue: list[tuple[Request, asyncio.Future[Posted]]] = []
        self._inflight = 0
        self.batches = 0  # how many post() batches were sent (for tests and the benchmark)

    async def post(self, request: Request) -> Posted:
        future: asyncio.Future[Posted] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._inflight < inflight_max:
            self._inflight += 1
            asyncio.ensure_future(self._drain())
        return await future

    def _take(self) -> list[tuple[Request, asyncio.Future[Posted]]]:
        batch: list[tuple[Request, asyncio.Future[Posted]]] = []
        rest: list[tuple[Request, asyncio.Future[Posted]]] = []
        keys: set[str] = set()
        for item in self._queue:
            key = item[0].idempotency_key
            if len(batch) < batch_size_max and key not in keys:
                keys.add(key)
                batch.append(item)
            else:
                rest.append(item)
        self._queue = rest
        return batch

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let requests arriving in this same loop turn join the batch
            while self._queue:
                batch = self._take()
                self.batches += 1
                try:
                    outcomes: list[Any] = await self._state.run(_post_gathered, [request for request, _ in batch])
                except asyncio.CancelledError:
                    for _, future in batch:
                        future.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 - each waiter gets the failure
                    outcomes = [exc] * len(batch)
                metrics_of(self._state).observe_batch(len(batch), outcomes)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._inflight -= 1


def _post_gathered(conn: psycopg.Connection[Any], requests: list[Request]) -> list[Posted | Exception]:
    outcomes = post_gathered(conn, requests)
    # The callers show the transactions they posted: fetch them all in this same trip.
    ids = [o.transaction_id for o in outcomes if not isinstance(o, Exception)]
    try:
        rows = get_transactions(conn, ids) if ids else {}
    except psycopg.Error:
        # The postings are committed: a failed read-back must not answer them as failed (the
        # resolver reads each row again on its own).
        rows = {}
    return [o if isinstance(o, Exception) else Posted(o.transaction_id, o.replayed, rows.get(o.transaction_id))
            for o in outcomes]


def gatherer_of(state: AppState) -> PostGatherer:
    found: PostGatherer | None = state.extras.get("post_gatherer")
    if found is None:
        found = state.extras["post_gatherer"] = PostGatherer(state)
    return found
