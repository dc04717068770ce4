"""Concurrent reads gathered across requests into one database trip.

A request's DataLoader batches the keys of that one request. Under load many requests each ask
for one account by code at the same moment, and each would still cost a thread hop to the pool
and a statement. The loaders registered here (`gather_reads`) send their keys to the app's
`ReadGatherer` for that loader instead: while `inflight_max` trips of it are at the database,
keys queue, and the next trip takes all that are queued (up to `keys_max`). Alone, a request
goes straight through.

Read after write: a trip's statement starts after every request in it queued its keys, and a
request never joins a trip already under way, so each sees everything committed before it
asked (a post answered before the read was sent is in the answer). Nothing is cached.

Errors stay per request: a trip that fails for any reason but the database being unreachable
is run again for each request on its own, so a key only one request sent fails that request.
A trip whose connection broke is run once more when every request in it only reads (as
`RequestContext.run` does for a query); a mutation's read is not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from ledger.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from graphql_api.context import AppState

__all__ = ["ReadGatherer", "gather_reads", "read_gatherer", "inflight_max", "keys_max"]

Batch = Callable[[psycopg.Connection[Any], list[Any]], Mapping[Any, Any]]
B = TypeVar("B", bound=Batch)

inflight_max = 2  # trips of one loader at the database at once
keys_max = 500  # keys in one trip (one statement's array)

_GATHERED: set[Batch] = set()


def gather_reads(batch: B) -> B:
    """Register a loader `batch(conn, keys) -> {key: value}` whose answer for a key does not
    depend on who asks or on the other keys, so requests may share its trips."""
    _GATHERED.add(batch)
    return batch


class _Waiter:
    __slots__ = ("keys", "future", "reads_only")

    def __init__(self, keys: list[Any], future: asyncio.Future[Mapping[Any, Any]], reads_only: bool) -> None:
        self.keys = keys
        self.future = future
        self.reads_only = reads_only


class ReadGatherer:
    """The trips of one loader for one app (one event loop: no lock)."""

    def __init__(self, state: AppState, batch: Batch) -> None:
        self._state = state
        self._batch = batch
        self._queue: list[_Waiter] = []
        self._inflight = 0
        self.trips = 0  # statements sent, for tests and the benchmark

    async def load(self, keys: list[Any], *, reads_only: bool) -> Mapping[Any, Any]:
        """`{key: value}` for (at least) `keys`, read by a trip that started after this call."""
        waiter = _Waiter(keys, asyncio.get_running_loop().create_future(), reads_only)
        self._queue.append(waiter)
        if self._inflight < inflight_max:
            self._inflight += 1
            asyncio.ensure_future(self._drain())
        return await waiter.future

    def _take(self) -> list[_Waiter]:
        taken, count = 0, 0
        for waiter in self._queue:
            if taken and count + len(waiter.keys) > keys_max:
                break
            taken += 1
            count += len(waiter.keys)
        trip, self._queue = self._queue[:taken], self._queue[taken:]
        return trip

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let the requests of this same loop turn join the trip
            while self._queue:
                trip = self._take()
                try:
                    await self._send(trip)
                except asyncio.CancelledError:
                    for waiter in trip:
                        waiter.future.cancel()
                    raise
        finally:
            self._inflight -= 1

    async def _send(self, trip: list[_Waiter]) -> None:
        keys = list(dict.fromkeys(key for waiter in trip for key in waiter.keys))
        self.trips += 1
        try:
            values = await self._state.run(self._batch, keys,
                                           retry_lost_connection=all(w.reads_only for w in trip))
        except DatabaseUnavailable as exc:  # the same for every request of the trip
            for waiter in trip:
                if not waiter.future.done():
                    waiter.future.set_exception(exc)
            return
        except Exception as exc:  # noqa: BLE001 - whose key it was is not known: each on its own
            if len(trip) == 1:
                if not trip[0].future.done():
                    trip[0].future.set_exception(exc)
                return
            await asyncio.gather(*(self._alone(waiter) for waiter in trip))
            return
        for waiter in trip:
            if not waiter.future.done():
                waiter.future.set_result(values)

    async def _alone(self, waiter: _Waiter) -> None:
        self.trips += 1
        try:
            values = await self._state.run(self._batch, waiter.keys, retry_lost_connection=waiter.reads_only)
        except Exception as exc:  # noqa: BLE001 - this request's own error
            if not waiter.future.done():
                waiter.future.set_exception(exc)
            return
        if not waiter.future.done():
            waiter.future.set_result(values)


def read_gatherer(state: AppState, batch: Batch) -> ReadGatherer | None:
    """The app's gatherer for `batch`, or None when it is not registered."""
    if batch not in _GATHERED:
        return None
    gatherers: dict[Batch, ReadGatherer] = state.extras.setdefault("read_gatherers", {})
    found = gatherers.get(batch)
    if found is None:
        found = gatherers[batch] = ReadGatherer(state, batch)
    return found
