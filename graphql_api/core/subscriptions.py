"""`balanceChanged`: balances pushed when they move, driven by PostgreSQL LISTEN/NOTIFY.

`ledger.post_batch` notifies channel `ledger_balances` once per batch with the ids of the
accounts it touched. One listener connection per app fans the notifications out to the
subscriptions; a subscriber that falls behind sees the latest balance, not every step (changes
coalesce), so a slow client cannot make the server buffer without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

import psycopg
import strawberry
from strawberry.types import Info

from graphql_api.context import AppState, context_of
from graphql_api.core import loaders
from graphql_api.core.types import Balance, load_account
from graphql_api.ws_sessions import TokenRevoked
from ledger.errors import AccountNotFound, DatabaseUnavailable, LedgerError

__all__ = ["BalanceListener", "CoreSubscription", "channel", "subscriptions_max"]

channel = "ledger_balances"
subscriptions_max = 10_000
reconnect_delay_min_s = 0.2
reconnect_delay_max_s = 10.0
log = logging.getLogger("graphql_api.subscriptions")


class Backoff:
    """Delays that double from `reconnect_delay_min_s` up to `reconnect_delay_max_s`."""

    def __init__(self) -> None:
        self._delay_s = reconnect_delay_min_s

    def next_delay_s(self) -> float:
        delay_s = self._delay_s
        self._delay_s = min(reconnect_delay_max_s, self._delay_s * 2)
        return delay_s

    def reset(self) -> None:
        self._delay_s = reconnect_delay_min_s


class TooManySubscriptions(LedgerError):
    code = "TOO_MANY_SUBSCRIPTIONS"


class BalanceListener:
    """LISTENs on one connection and wakes the subscribers of the accounts named."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._subscribers: dict[int, set[asyncio.Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def subscribe(self, account_id: int) -> asyncio.Event:
        if sum(len(s) for s in self._subscribers.values()) >= subscriptions_max:
            raise TooManySubscriptions(f"the server has {subscriptions_max} subscriptions open; try again later")
        event = asyncio.Event()
        self._subscribers.setdefault(account_id, set()).add(event)
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = asyncio.ensure_future(self._listen())
        await self._ready.wait()
        return event

    def unsubscribe(self, account_id: int, event: asyncio.Event) -> None:
        events = self._subscribers.get(account_id)
        if events is not None:
            events.discard(event)
            if not events:
                del self._subscribers[account_id]

    async def _listen(self) -> None:
        backoff = Backoff()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._url, autocommit=True) as conn:
                    await conn.execute(f"listen {channel}")
                    backoff.reset()
                    self._ready.set()
                    # Whatever moved while we were (re)connecting: wake everyone to re-read.
                    self._wake_all()
                    async for notify in conn.notifies():
                        self._wake(notify.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the listener must outlive a database restart
                delay_s = backoff.next_delay_s()
                log.warning("balance listener lost its connection (%s); reconnecting in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)

    def _wake(self, payload: str) -> None:
        for part in payload.split(","):
            if part.isdigit():
                for event in self._subscribers.get(int(part), ()):
                    event.set()

    def _wake_all(self) -> None:
        for events in self._subscribers.values():
            for event in events:
                event.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def listener_of(state: AppState) -> BalanceListener:
    found: BalanceListener | None = state.extras.get("balance_listener")
    if found is None:
        found = state.extras["balance_listener"] = BalanceListener(state.database_url)
    return found


@strawberry.type
class CoreSubscription:
    @strawberry.subscription(description="The account's balance now, then again each time it changes.")
    async def balance_changed(self, info: Info, account_code: str) -> AsyncGenerator[Balance, None]:
        account = await load_account(info, account_code)
        if account is None:
            raise AccountNotFound(f"no account with code {account_code}", account=account_code)
        context = context_of(info)
        listener = listener_of(context.state)
        event = await listener.subscribe(account.id)
        try:
            outage = Backoff()
            while True:
                event.clear()
                try:
                    if not await context.still_authorised():
                        raise TokenRevoked("the token was revoked or has expired")
                    found = await context.run(loaders.balances_by_account, [account.id])
                except DatabaseUnavailable:
                    # The database is restarting: the subscription stays, and pushes the balance
                    # once it is back (the listener's reconnect wakes it too).
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), outage.next_delay_s())
                    continue
                outage.reset()
                yield Balance.of(found[account.id])
                await event.wait()
        finally:
            listener.unsubscribe(account.id, event)
