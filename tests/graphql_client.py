"""Calling the GraphQL API in tests: over HTTP with Starlette's TestClient, against the test
database, with a bearer token of the role asked for (tokens are made once per role and holder).

    def test_x(api):
        data = api.data("{ account(code: $c) { code } }", {"c": "..."}, role="holder", holder="U1")
        body = api.query("...", role="auditor")          # the whole response: data and errors
        response = api.http("...", token="bad")          # the raw httpx response

To count the statements a request costs, give the app a `StatementCounter`'s connection arguments:
`create_app(url, connection_kwargs=counter.connection_kwargs)`.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx
import psycopg
from starlette.testclient import TestClient

from ledger.tokens import create_token

__all__ = ["Api", "StatementCounter"]


class Api:
    def __init__(self, client: TestClient, db_url: str) -> None:
        self.client = client
        self.db_url = db_url
        self._tokens: dict[tuple[str, str | None], str] = {}

    @property
    def app(self) -> Any:
        return self.client.app

    def token(self, role: str = "admin", holder: str | None = None) -> str:
        key = (role, holder)
        if key not in self._tokens:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                self._tokens[key] = create_token(conn, role, holder).token
        return self._tokens[key]

    def http(self, query: str, variables: dict[str, Any] | None = None, *, role: str = "admin",
             holder: str | None = None, token: str | None = None) -> httpx.Response:
        token = token if token is not None else self.token(role, holder)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    def query(self, query: str, variables: dict[str, Any] | None = None, **auth: Any) -> dict[str, Any]:
        response = self.http(query, variables, **auth)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def data(self, query: str, variables: dict[str, Any] | None = None, **auth: Any) -> dict[str, Any]:
        """The response's data, asserting it has no errors."""
        body = self.query(query, variables, **auth)
        assert not body.get("errors"), body["errors"]
        return body["data"]  # type: ignore[no-any-return]

    def errors(self, query: str, variables: dict[str, Any] | None = None, **auth: Any) -> list[dict[str, Any]]:
        """The response's errors, asserting there are some."""
        body = self.query(query, variables, **auth)
        assert body.get("errors"), body
        return body["errors"]  # type: ignore[no-any-return]


class StatementCounter:
    """Counts the statements sent on connections made with `connection_kwargs` (from any thread)."""

    def __init__(self) -> None:
        self.count = 0
        lock = threading.Lock()
        counter = self

        class CountingCursor(psycopg.Cursor[Any]):
            def execute(self, *args: Any, **kwargs: Any) -> Any:
                with lock:
                    counter.count += 1
                return super().execute(*args, **kwargs)

        self.connection_kwargs: dict[str, Any] = {"cursor_factory": CountingCursor}
