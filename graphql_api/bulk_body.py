"""The one kind of request allowed a body past `Limits.body_bytes_max`: a mutation that only calls
`postTransactions` (1,000 two-leg transfers in variables weigh about 250 kB), up to
`Limits.batch_body_bytes_max`.

Every other request keeps the small limit, so a large body costs work only when it is such a
batch, sent by a caller that may post. Deciding needs the caller and the body: a `POST /graphql`
whose `Content-Length` lies between the two limits, with the bearer token of an operator or an
admin (the token cache answers, as for every request), is read whole (never past the larger
limit), its JSON decoded and its document parsed (with the token limit). Anyone else gets the
small limit's 413 before a byte is read; a body sent without a length (chunked) keeps the small
limit too. graphql_api/app.py's `BodyLimit` applies this; the request then proceeds as usual,
re-reading the body from memory.
"""

from __future__ import annotations

import json

from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType, parse
from starlette.requests import HTTPConnection
from starlette.types import Message, Receive, Scope

from graphql_api.context import app_state, bearer_token
from graphql_api.core.transaction_post import POSTERS

__all__ = ["BULK_FIELDS", "may_send_bulk", "admits_bulk", "read_body", "replay"]

BULK_FIELDS = frozenset({"postTransactions"})


async def may_send_bulk(scope: Scope) -> bool:
    """Whether the request is a POST to /graphql by a caller whose role may post transactions."""
    if scope.get("method") != "POST" or scope.get("path") != "/graphql":
        return False
    connection = HTTPConnection(scope)
    token = bearer_token(connection)
    if token is None:
        return False
    try:
        principal = await app_state(connection).principal(token)
    except Exception:  # noqa: BLE001 - the database out of reach: the small limit, then the usual answers
        return False
    return principal is not None and principal.role in POSTERS


def admits_bulk(body: bytes, *, tokens_max: int) -> bool:
    """Whether `body` is a GraphQL request whose operation is a mutation selecting only
    `BULK_FIELDS` (aliases allowed, fragments not)."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):
        return False
    if not isinstance(request, dict) or not isinstance(request.get("query"), str):
        return False
    name = request.get("operationName")
    try:
        document = parse(request["query"], max_tokens=tokens_max)
    except GraphQLError:
        return False
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    chosen = [d for d in operations if not name or (d.name is not None and d.name.value == name)]
    if len(chosen) != 1 or chosen[0].operation is not OperationType.MUTATION:
        return False
    selections = chosen[0].selection_set.selections
    return bool(selections) and all(isinstance(s, FieldNode) and s.name.value in BULK_FIELDS for s in selections)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None when it runs past `limit` bytes or the client went away."""
    chunks: list[bytes] = []
    seen = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over `body` first, then whatever the client sends next (a disconnect)."""
    sent = False

    async def receive_again() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return receive_again
