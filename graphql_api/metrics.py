"""Prometheus metrics at `GET /metrics` (text format), one registry per app.

What is counted: GraphQL operations by type, name and outcome (`ok`, the error code a client
got, typed or in `errors`, with `INTERNAL` for the unexpected), their latency, transactions the
post gatherer committed, its batch sizes, and the database pool (read from psycopg_pool's
statistics at each scrape).

No token: like /healthz it holds no ledger data (counts, operation names), and a scraper on the
operators' network usually has none; keep the port off the public network or block /metrics at
the proxy. Operation names are the clients' own words, so only the first `operation_names_max`
distinct well-formed names get their own series; the rest count as `other`.

Each process counts for itself: with `serve --workers N` a scrape sees the one worker that
answered it. Scrape each process on its own port (`serve --workers 1` per process) when the
numbers must add up; docs/operations.md says more.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from graphql_api.context import AppState, app_state

__all__ = ["METRICS_ROUTES", "Metrics", "metrics_of"]

operation_names_max = 200
series_cached_max = 4_096
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200)
_CALL_BUCKETS = (1, 10, 100, 250, 500, 1000)


class Metrics:
    def __init__(self, state: AppState) -> None:
        self.registry = CollectorRegistry()
        self.operations = Counter(
            "ledger_graphql_operations", "GraphQL operations by type, name and outcome (ok or an error code)",
            ["type", "name", "outcome"], registry=self.registry)
        self.latency = Histogram(
            "ledger_graphql_operation_seconds", "Time from parsing an operation to its answer",
            ["type"], buckets=_LATENCY_BUCKETS_S, registry=self.registry)
        self.transactions_posted = Counter(
            "ledger_transactions_posted", "Transactions postTransaction(s) committed (replayed: an idempotent retry)",
            ["replayed"], registry=self.registry)
        self.batch_size = Histogram(
            "ledger_gather_batch_size", "Post requests per gathered batch sent to the database",
            buckets=_BATCH_BUCKETS, registry=self.registry)
        self.post_call_size = Histogram(
            "ledger_post_transactions_call_size", "Transactions per postTransactions call",
            buckets=_CALL_BUCKETS, registry=self.registry)
        self.registry.register(_PoolCollector(state))
        self._names: set[str] = set()
        # (type, name as sent, outcome) -> the series it counts in: looking a series up by its
        # labels costs a lock and a tuple per call, and every operation counts in two.
        self._series: dict[tuple[str, str | None, str], tuple[Any, Any]] = {}

    def operation_name(self, name: str | None) -> str:
        if not name:
            return "anonymous"
        if not _NAME.match(name):
            return "other"
        if name not in self._names:
            if len(self._names) >= operation_names_max:
                return "other"
            self._names.add(name)
        return name

    def observe_operation(self, kind: str, name: str | None, outcome: str, seconds: float) -> None:
        key = (kind, name, outcome)
        series = self._series.get(key)
        if series is None:
            series = (self.operations.labels(kind, self.operation_name(name), outcome), self.latency.labels(kind))
            if len(self._series) < series_cached_max:  # names are the clients' own words: bounded
                self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def observe_batch(self, size: int, outcomes: list[Any]) -> None:
        self.batch_size.observe(size)
        self._count_posted(outcomes)

    def observe_post_call(self, size: int, outcomes: list[Any]) -> None:
        """A postTransactions call of `size` transactions (`outcomes` empty when it wrote nothing)."""
        self.post_call_size.observe(size)
        self._count_posted(outcomes)

    def _count_posted(self, outcomes: list[Any]) -> None:
        for outcome in outcomes:
            replayed = getattr(outcome, "replayed", None)
            if replayed is not None:
                self.transactions_posted.labels("true" if replayed else "false").inc()


class _PoolCollector(Collector):
    """The pool as it is at scrape time."""

    def __init__(self, state: AppState) -> None:
        self._state = state

    def collect(self) -> Iterator[Metric]:
        stats = self._state.pool.get_stats()
        for name, key, help_text in [
            ("ledger_db_pool_size", "pool_size", "Connections the pool holds (in use or idle)"),
            ("ledger_db_pool_available", "pool_available", "Idle connections ready for a request"),
            ("ledger_db_pool_waiting", "requests_waiting", "Requests waiting for a connection"),
            ("ledger_db_pool_max", "pool_max", "The most connections the pool may open"),
        ]:
            yield GaugeMetricFamily(name, help_text, value=float(stats.get(key, 0)))


def metrics_of(state: AppState) -> Metrics:
    found: Metrics | None = state.extras.get("metrics")
    if found is None:
        found = state.extras["metrics"] = Metrics(state)
    return found


async def metrics_endpoint(request: Request) -> Response:
    return Response(generate_latest(metrics_of(app_state(request)).registry), media_type=CONTENT_TYPE_LATEST)


METRICS_ROUTES: list[BaseRoute] = [Route("/metrics", metrics_endpoint, methods=["GET"])]
